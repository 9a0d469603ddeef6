"""Cost against quality on outcome data, with the metrics RouteLLM defines.

A router gives every prompt a score (higher: needs the strong model more). Sending the top share
``f`` of prompts to the strong model and the rest to the weak one gives a quality ``q(f)``; prompts
with equal scores move together, and between two cuts a router may mix them at random, so the
curve is piecewise linear between the cuts.

- PGR(f) = (q(f) − q_weak) / (q_strong − q_weak)
- APGR: the area under PGR over f in [0, 1] (a random router scores 0.5)
- CPT(x): the smallest share of strong calls with PGR ≥ x
- CS@95: the cost saved against always-strong at the cheapest point whose quality reaches 95% of
  the strong model's (interpolated on the first segment that crosses it)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

__all__ = ["Curve", "curve", "length_scores", "random_scores"]


@dataclass(frozen=True)
class Curve:
    """The cut points of one router on one data set, and the metrics read off them."""

    shares: tuple[float, ...]      # share of prompts sent to the strong model at each cut
    qualities: tuple[float, ...]   # mean quality at each cut
    weak: float
    strong: float
    cost_weak: float
    cost_strong: float

    def pgr(self, quality: float) -> float:
        gap = self.strong - self.weak
        return (quality - self.weak) / gap if gap else 0.0

    @property
    def apgr(self) -> float | None:
        """The area under PGR; None when the two models score the same (there is no gap to recover)."""
        if self.strong == self.weak:
            return None
        area = 0.0
        points = list(zip(self.shares, self.qualities))
        for (f0, q0), (f1, q1) in zip(points, points[1:]):
            area += (f1 - f0) * (self.pgr(q0) + self.pgr(q1)) / 2
        return area

    def _first_share(self, reached: float, value: "callable") -> float | None:
        """The smallest share at which ``value(quality)`` reaches ``reached``, interpolated."""
        points = list(zip(self.shares, self.qualities))
        if value(points[0][1]) >= reached:
            return points[0][0]
        for (f0, q0), (f1, q1) in zip(points, points[1:]):
            v0, v1 = value(q0), value(q1)
            if v1 >= reached:
                return f0 + (f1 - f0) * ((reached - v0) / (v1 - v0) if v1 != v0 else 1.0)
        return None

    def cpt(self, pgr: float) -> float | None:
        """CPT(x): the smallest share of strong calls whose PGR reaches ``pgr`` (None without a gap)."""
        return None if self.strong == self.weak else self._first_share(pgr, self.pgr)

    def cost_saved_at(self, share_of_strong_quality: float = 0.95) -> float | None:
        """CS@x: cost saved against always-strong at the cheapest point reaching x · q_strong."""
        share = self._first_share(share_of_strong_quality * self.strong, lambda q: q)
        if share is None:
            return None
        cost = share * self.cost_strong + (1 - share) * self.cost_weak
        return 1 - cost / self.cost_strong if self.cost_strong else 0.0

    def summary(self) -> dict[str, float | None]:
        return {
            "apgr": _round(self.apgr),
            "cpt50": _round(self.cpt(0.5)),
            "cpt80": _round(self.cpt(0.8)),
            "cs95": _round(self.cost_saved_at(0.95)),
            "weak": round(self.weak, 4),
            "strong": round(self.strong, 4),
            "n": None,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def curve(scores: Sequence[float], strong: Sequence[float], weak: Sequence[float], *,
          cost_strong: float = 1.0, cost_weak: float = 0.0) -> Curve:
    """The cost–quality curve of ``scores`` given each prompt's strong and weak outcome."""
    n = len(scores)
    if not n or len(strong) != n or len(weak) != n:
        raise ValueError("scores, strong and weak outcomes need the same, non-zero length")
    order = sorted(range(n), key=lambda i: -scores[i])
    total = sum(weak)
    shares, qualities = [0.0], [total / n]
    i = 0
    while i < n:
        j = i
        while j < n and scores[order[j]] == scores[order[i]]:
            total += strong[order[j]] - weak[order[j]]
            j += 1
        shares.append(j / n)
        qualities.append(total / n)
        i = j
    return Curve(tuple(shares), tuple(qualities), sum(weak) / n, sum(strong) / n, cost_weak, cost_strong)


def random_scores(n: int, seed: int | None = None) -> list[float]:
    """The random router. Without ``seed``, its expected curve: every prompt tied, so the sweep
    mixes the two models at random in every proportion, the straight line from the weak model to
    the strong one (APGR exactly 0.5, CS@95 what random routing saves on average). With ``seed``,
    one random draw, whose curve wanders around that line (on 100 prompts, by ±0.1 of APGR)."""
    if seed is None:
        return [0.0] * n
    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]


def length_scores(prompts: Sequence[str]) -> list[float]:
    """The baseline that calls a longer prompt harder."""
    return [float(len(p)) for p in prompts]
