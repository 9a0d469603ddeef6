"""From a verdict to a tier: the tier matrix, and the difficulty bands that keep difficulty
monotone with tier.

The matrix maps (task type, complexity) to a tier and must never get cheaper as complexity grows.
The decision's ``difficulty`` is placed inside the band of its tier (with N tiers, tier k owns
``[k/N, (k+1)/N)``) at the position of the layer's own estimate, so a higher difficulty never
comes with a cheaper tier while tasks inside one tier stay ordered by how hard they look.
"""

from __future__ import annotations

from typing import Mapping

from dmr.errors import ConfigError
from dmr.types import ModelTier, TaskComplexity, TaskType

__all__ = ["DEFAULT_MATRIX", "TierMatrix", "band_difficulty"]

DEFAULT_MATRIX: Mapping[str, Mapping[str, str]] = {
    "reasoning":     {"simple": "low",    "standard": "medium", "complex": "high",   "research": "high"},
    "thinking":      {"simple": "low",    "standard": "medium", "complex": "high",   "research": "high"},
    "analyzing":     {"simple": "low",    "standard": "medium", "complex": "high",   "research": "high"},
    "code_creation": {"simple": "low",    "standard": "medium", "complex": "high",   "research": "high"},
    "math":          {"simple": "low",    "standard": "medium", "complex": "high",   "research": "high"},
    "doc_creation":  {"simple": "low",    "standard": "low",    "complex": "medium", "research": "high"},
    "translation":   {"simple": "low",    "standard": "low",    "complex": "medium", "research": "high"},
    "conversation":  {"simple": "low",    "standard": "low",    "complex": "medium", "research": "high"},
    "multimodal":    {"simple": "medium", "standard": "medium", "complex": "high",   "research": "high"},
}
# A task type registered at run time without its own row is routed like this row.
_FALLBACK_ROW = "reasoning"


class TierMatrix:
    """An immutable, validated tier matrix (the default merged with any overrides)."""

    def __init__(self, overrides: Mapping[str, Mapping[str, str]] | None = None) -> None:
        rows = {k: dict(v) for k, v in DEFAULT_MATRIX.items()}
        problems: list[tuple[str, str]] = []
        for type_name, row in (overrides or {}).items():
            if type_name not in TaskType:
                problems.append((f"tier_matrix.{type_name}", "unknown task type (register_task_type first)"))
                continue
            if not isinstance(row, Mapping):
                problems.append((f"tier_matrix.{type_name}", "must map complexities to tiers"))
                continue
            base = rows.setdefault(str(TaskType(type_name)), dict(DEFAULT_MATRIX[_FALLBACK_ROW]))
            for level, tier in row.items():
                if level not in TaskComplexity:
                    problems.append((f"tier_matrix.{type_name}.{level}", "unknown complexity"))
                    continue
                base[str(TaskComplexity(level))] = str(tier)
        levels = [str(t) for t in ModelTier.levels()]
        table: dict[tuple[str, str], ModelTier] = {}
        order = [str(c) for c in TaskComplexity]
        for type_name, row in rows.items():
            previous = -1
            for level in order:
                tier = row.get(level, DEFAULT_MATRIX[_FALLBACK_ROW][level])
                if str(tier).lower() not in levels:
                    problems.append((f"tier_matrix.{type_name}.{level}",
                                     f"tier {tier!r} is not among the tier levels in force {levels}"))
                    continue
                member = ModelTier(tier)
                if member.rank < previous:
                    problems.append((f"tier_matrix.{type_name}.{level}",
                                     "a harder complexity may not map to a cheaper tier"))
                previous = max(previous, member.rank)
                table[(type_name, level)] = member
        if problems:
            raise ConfigError("invalid tier matrix:\n" + "\n".join(f"  {p}: {m}" for p, m in problems), problems)
        self._table = table
        self.rows = {k: dict(v) for k, v in rows.items()}

    def tier(self, task_type: TaskType, complexity: TaskComplexity) -> ModelTier:
        # Members hash and compare as their string values, so they index the table directly.
        found = self._table.get((task_type, complexity))
        if found is None:
            found = self._table[(_FALLBACK_ROW, str(complexity))]
        return found


def band_difficulty(tier: ModelTier, raw: float) -> float:
    """Place a layer's raw 0..1 difficulty inside the band that ``tier`` owns."""
    count = len(ModelTier._levels)
    raw = 0.0 if raw != raw else min(max(raw, 0.0), 0.999)  # NaN-safe clamp
    return round((tier.rank + raw) / count, 4)
