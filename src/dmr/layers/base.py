"""What a layer is: anything with a ``name`` and ``classify(task, ctx) -> Verdict | None``.

A layer returns a :class:`~dmr.types.Verdict` (with its own confidence) or ``None`` to pass. The
router decides whether the confidence is enough; a layer never needs to know the thresholds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from dmr.types import Verdict

__all__ = ["Context", "Layer", "LayerUnavailable", "valid_unicode"]

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(slots=True)
class Context:
    """Per-call information shared by the hooks and layers of one decision.

    ``text`` is the analysed text (possibly truncated); ``length`` is the original length in
    characters. ``signals`` carries features a cheaper layer computed for the ones after it.
    """

    text: str
    length: int
    truncated: bool = False
    history: Sequence[Any] | None = None
    tenant_config: Mapping[str, Any] | None = None
    needs: frozenset[str] = frozenset()
    verdicts: list[Verdict] = field(default_factory=list)
    signals: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    deadline: float | None = None


@runtime_checkable
class Layer(Protocol):
    """The layer protocol. ``threshold`` (optional attribute) overrides the router's default."""

    name: str

    def classify(self, task: str, ctx: Context) -> Verdict | None: ...


class LayerUnavailable(Exception):
    """Raised by a layer that cannot run here (missing artefact, SDK or key): the router records
    the reason in the decision and moves on, except in strict mode."""


def valid_unicode(text: str) -> str:
    """``text`` with each lone surrogate (a code point no UTF-8 or tokenizer accepts, which a
    str can still hold) replaced by U+FFFD; ``text`` itself when it has none."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text
