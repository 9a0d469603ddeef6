"""What an OpenAI-compatible model refused in a 400, read from the error's message.

Three refusals are common and name what to change: OpenAI's reasoning models refuse ``max_tokens``
("Use 'max_completion_tokens' instead") and sampling parameters other than the default
(``temperature``, ``top_p``), and every model refuses a length limit above its own ("supports at
most 16384 completion tokens"). A caller that reads one can ask again with the request adapted
(:func:`adapted`). Any other 400 reads as no refusal: it is the caller's to report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["Refusal", "adapted", "read_refusal"]

LENGTH_KEYS = ("max_tokens", "max_completion_tokens")
SAMPLING = ("temperature", "top_p")
_UNSUPPORTED = ("unsupported", "not supported", "does not support", "only the default")
_AT_MOST = re.compile(r"at most (\d+) (?:completion |output )?tokens")


@dataclass(frozen=True)
class Refusal:
    """``rename_length``: send ``max_completion_tokens`` instead of ``max_tokens``; ``dropped``:
    sampling parameters to leave out; ``length_cap``: the largest length limit the model takes."""

    rename_length: bool = False
    dropped: frozenset[str] = frozenset()
    length_cap: int | None = None

    def __bool__(self) -> bool:
        return self.rename_length or bool(self.dropped) or self.length_cap is not None

    def merged(self, other: Refusal) -> Refusal:
        """Everything either refusal asks for (the lower cap)."""
        caps = [c for c in (self.length_cap, other.length_cap) if c is not None]
        return Refusal(self.rename_length or other.rename_length, self.dropped | other.dropped,
                       min(caps) if caps else None)


def read_refusal(message: str) -> Refusal:
    """The refusal a provider's error message states, or an empty (false) one."""
    text = str(message).lower()
    unsupported = any(phrase in text for phrase in _UNSUPPORTED)
    rename = unsupported and "'max_tokens'" in text and "max_completion_tokens" in text
    dropped = frozenset(p for p in SAMPLING if unsupported and f"'{p}'" in text)
    found = _AT_MOST.search(text) if any(key in text for key in LENGTH_KEYS) else None
    cap = int(found.group(1)) if found else 0
    return Refusal(rename, dropped, cap or None)


def adapted(body: Mapping[str, Any], refusal: Refusal) -> dict[str, Any]:
    """A copy of a chat-completions request body changed as ``refusal`` asks."""
    out = dict(body)
    if refusal.rename_length and "max_tokens" in out:
        limit = out.pop("max_tokens")
        out.setdefault("max_completion_tokens", limit)
    for name in refusal.dropped:
        out.pop(name, None)
    if refusal.length_cap is not None:
        for key in LENGTH_KEYS:
            value = out.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > refusal.length_cap:
                out[key] = refusal.length_cap
    return out
