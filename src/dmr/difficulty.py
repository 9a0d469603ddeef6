"""Difficulty: how much a task needs a stronger model, on one 0..1 scale shared by all layers.

A layer knows two things about a task: what kind it is and how far up its complexity scale it sits
(the *position*, 0 for "hi", 1 at the top of "research"). Complexity alone is not what a router
needs: a long essay on a familiar topic is complex, yet an economy model writes it about as well
as a flagship one, while a three-line probability puzzle is simple-looking and is where economy
models fail. So the difficulty is the position scaled by a **type gap**: how far economy models
typically fall behind flagship ones on that kind of task, 1 for the widest gap.

    difficulty = type_gap(task_type) * position

Layer 3 averages the gap over its calibrated type probabilities. The gaps below are a prior from
the published pattern across public benchmarks and leaderboards, not fitted to any data: small
models trail most on mathematics, then multi-step reasoning and code, least on conversation and
everyday writing. A task type registered at run time takes the gap given to
:func:`dmr.types.register_task_type`, else reasoning's, the row the tier matrix falls back to.

The tier matrix still picks the tier unless a quality target is set; the router places this
difficulty inside the band of the chosen tier (:func:`dmr.tiers.band_difficulty`), and
``Router(quality_target=…)`` reads it directly (:mod:`dmr.quality`), so there it decides the tier.
"""

from __future__ import annotations

import math
import threading
from types import MappingProxyType
from typing import Mapping

__all__ = ["TYPE_GAPS", "check_gap", "difficulty", "expected_difficulty", "set_type_gap", "type_gap", "unit"]

TYPE_GAPS: Mapping[str, float] = MappingProxyType({
    "math": 1.0,
    "reasoning": 0.85,
    "code_creation": 0.75,
    "analyzing": 0.45,
    "multimodal": 0.4,
    "thinking": 0.35,
    "translation": 0.3,
    "doc_creation": 0.15,
    "conversation": 0.1,
})
_FALLBACK = "reasoning"
_CUSTOM: dict[str, float] = {}
_LOCK = threading.Lock()


def unit(value: float) -> float:
    """Clamp to [0, 1]; NaN counts as the middle."""
    value = float(value)
    return 0.5 if value != value else min(max(value, 0.0), 1.0)


def check_gap(task_type: str, gap: object) -> float:
    """``gap`` as a float, or ValueError unless it is a number in [0, 1]."""
    if isinstance(gap, bool) or not isinstance(gap, (int, float)) or not math.isfinite(gap) or not 0 <= gap <= 1:
        raise ValueError(f"gap for task type {task_type!r} must be a number in [0, 1], got {gap!r}")
    return float(gap)


def set_type_gap(task_type: str, gap: float) -> None:
    """Give a task type its gap (0..1); :func:`dmr.types.register_task_type` calls this."""
    gap = check_gap(task_type, gap)
    with _LOCK:
        _CUSTOM[str(task_type)] = float(gap)


def type_gap(task_type: str) -> float:
    """The gap of a task type: its own, else the default table's, else reasoning's."""
    name = str(task_type)
    found = _CUSTOM.get(name)
    if found is None:
        found = TYPE_GAPS.get(name, TYPE_GAPS[_FALLBACK])
    return found


def difficulty(task_type: str, position: float) -> float:
    """The difficulty of a task of ``task_type`` at ``position`` (0..1) on the complexity scale."""
    return type_gap(task_type) * unit(position)


def expected_difficulty(type_probs: Mapping[str, float], position: float) -> float:
    """The difficulty under a distribution over task types (Layer 3's calibrated probabilities)."""
    total = sum(type_probs.values())
    if not total > 0:
        return difficulty(_FALLBACK, position)
    gap = sum(p * type_gap(t) for t, p in type_probs.items()) / total
    return gap * unit(position)
