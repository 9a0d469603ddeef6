"""What an OpenAI-compatible model refused in a 400, read from the error's message.

Four refusals are common and name what to change: OpenAI's reasoning models refuse ``max_tokens``
("Use 'max_completion_tokens' instead") and sampling parameters other than the default
(``temperature``, ``top_p``); every model refuses a length limit above its own ("supports at
most 16384 completion tokens"); and servers of open models (vLLM, and OpenAI's older models) refuse
a length limit that does not fit in the context window beside the request's input ("maximum context
length is 8192 tokens and your request has 6000 input tokens"), which fits the *room* left, for
that request only. A caller that reads one can ask again with the request adapted (:func:`adapted`).
Any other 400 reads as no refusal: it is the caller's to report. An input that alone overflows the
context window (:func:`input_overflows`) is no refusal either: no change to the request fixes it,
but a model with a larger window may take it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["Refusal", "adapted", "input_overflows", "read_refusal"]

LENGTH_KEYS = ("max_tokens", "max_completion_tokens")
SAMPLING = ("temperature", "top_p")
_UNSUPPORTED = ("unsupported", "not supported", "does not support", "only the default")
_AT_MOST = re.compile(r"at most (\d+) (?:completion |output )?tokens")
_CONTEXT = re.compile(r"maximum context length is (\d+) tokens")
# vLLM: "your request has 6000 input tokens"; OpenAI's older wording: "(6000 in the messages, ...".
_INPUT = re.compile(r"(?:request has (\d+) input tokens|\((\d+) in the messages)")
# OpenAI: "However, your messages resulted in 9000 tokens" (no length limit asked for).
_RESULTED = re.compile(r"messages resulted in (\d+) tokens")
# Said of the input alone: llama.cpp ("request (5031 tokens) exceeds the available context size"),
# Anthropic-style gateways ("prompt is too long: 210000 tokens > 200000 maximum").
_OVERFLOW_PHRASES = ("exceeds the available context size", "prompt is too long", "input is too long")
# The error codes and types that say so: OpenAI's, llama.cpp's.
_OVERFLOW_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error"})


@dataclass(frozen=True)
class Refusal:
    """``rename_length``: send ``max_completion_tokens`` instead of ``max_tokens``; ``dropped``:
    sampling parameters to leave out; ``length_cap``: the largest length limit the model takes;
    ``room``: the largest that fits the refused request's input in the context window (a fact of
    that request, not of the model: :meth:`lasting` leaves it out)."""

    rename_length: bool = False
    dropped: frozenset[str] = frozenset()
    length_cap: int | None = None
    room: int | None = None

    def __bool__(self) -> bool:
        return self.rename_length or bool(self.dropped) or self.length_cap is not None or self.room is not None

    def lasting(self) -> Refusal:
        """What holds for every later request to the model: all but the room."""
        return Refusal(self.rename_length, self.dropped, self.length_cap)

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
    return Refusal(rename, dropped, cap or None, _room(text))


def input_overflows(message: str, type: Any = None, code: Any = None) -> bool:
    """Whether a provider's 400 says the request's input alone does not fit the model's context
    window (by its error ``code`` or ``type``, or its message)."""
    if code in _OVERFLOW_CODES or type in _OVERFLOW_CODES:
        return True
    text = str(message).lower()
    if any(phrase in text for phrase in _OVERFLOW_PHRASES):
        return True
    context = _CONTEXT.search(text)
    given = _INPUT.search(text) or _RESULTED.search(text)
    if context is None or given is None:
        return False
    return int(next(g for g in given.groups() if g)) >= int(context.group(1))


def _room(text: str) -> int | None:
    """The completion tokens left beside the input in the context window, when the message
    states both (and some are left: an input that alone overflows is not the limit's fault)."""
    context, given = _CONTEXT.search(text), _INPUT.search(text)
    if context is None or given is None:
        return None
    left = int(context.group(1)) - int(given.group(1) or given.group(2))
    return left if left > 0 else None


def adapted(body: Mapping[str, Any], refusal: Refusal) -> dict[str, Any]:
    """A copy of a chat-completions request body changed as ``refusal`` asks."""
    out = dict(body)
    if refusal.rename_length and "max_tokens" in out:
        limit = out.pop("max_tokens")
        out.setdefault("max_completion_tokens", limit)
    for name in refusal.dropped:
        out.pop(name, None)
    caps = [c for c in (refusal.length_cap, refusal.room) if c is not None]
    if caps:
        cap = min(caps)
        for key in LENGTH_KEYS:
            value = out.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > cap:
                out[key] = cap
    return out
