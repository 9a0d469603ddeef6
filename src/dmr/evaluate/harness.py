"""Scoring a router on outcome data: the report behind ``dmr eval --outcomes`` and the quality benchmark.

Two models (weak, strong): each router's score is swept with :func:`dmr.evaluate.curves.curve`,
beside three reference routers — ``random`` (its expected curve, every prompt tied), ``length``
(longer prompt = harder) and ``oracle`` (the per-prompt gap between the two models' scores, which
only hindsight knows).

A pool of models: the prompts, ordered by difficulty, are cut into consecutive bands that go to
the models from cheapest to most expensive; every placement of the cuts on a grid of shares gives
a (cost, quality) point, and mixing two placements at random gives any point between them, so the
router's curve is the upper hull of those points. The report gives the cost saved against the best
single model at 95% of its quality.
"""

from __future__ import annotations

from itertools import combinations_with_replacement
from typing import Any, Callable, Mapping, Sequence

from dmr.datafiles import fold_of
from dmr.evaluate.curves import Curve, curve, length_scores, random_scores
from dmr.evaluate.outcomes import OutcomeRow

__all__ = ["METRICS", "compare", "cross_validated", "fold_of", "pool_report", "subset_report"]

METRICS = ("apgr", "cpt50", "cpt80", "cs95")
_CURVE_POINTS = 201


def _metrics(c: Curve) -> dict[str, float | None]:
    summary = c.summary()
    return {k: summary[k] for k in METRICS}


def _thin(c: Curve, points: int = _CURVE_POINTS) -> dict[str, list[float]]:
    """The curve's cut points, at most ``points`` of them (enough to draw it)."""
    shares, qualities = list(c.shares), list(c.qualities)
    if len(shares) > points:
        step = (len(shares) - 1) / (points - 1)
        keep = sorted({round(i * step) for i in range(points)})
        shares, qualities = [shares[i] for i in keep], [qualities[i] for i in keep]
    return {"shares": [round(x, 5) for x in shares], "qualities": [round(x, 5) for x in qualities]}


def subset_report(rows: Sequence[OutcomeRow], routers: Mapping[str, Sequence[float]], *, strong: str, weak: str,
                  prices: Mapping[str, float], name: str = "all", seed: int | None = None) -> dict[str, Any]:
    """Metrics of every router in ``routers`` (name → one score per row) and of the reference
    routers on ``rows``, with the curves of the given routers and of ``random``."""
    s = [r.outcomes[strong] for r in rows]
    w = [r.outcomes[weak] for r in rows]
    costs = {"cost_strong": prices[strong], "cost_weak": prices[weak]}
    every = dict(routers)
    every.setdefault("random", random_scores(len(rows), seed))
    every.setdefault("length", length_scores([r.prompt for r in rows]))
    every.setdefault("oracle", [a - b for a, b in zip(s, w)])
    curves = {label: curve(list(scores), s, w, **costs) for label, scores in every.items()}
    first = next(iter(curves.values()))
    return {
        "benchmark": name, "n": len(rows), "weak_quality": round(first.weak, 4), "strong_quality": round(first.strong, 4),
        "routers": {label: _metrics(c) for label, c in curves.items()},
        "curves": {label: _thin(c) for label, c in curves.items() if label in routers or label == "random"},
    }


def compare(rows: Sequence[OutcomeRow], scorers: Mapping[str, Callable[[list[OutcomeRow]], Sequence[float]]], *,
            strong: str, weak: str, prices: Mapping[str, float], by_benchmark: bool = True) -> list[dict[str, Any]]:
    """:func:`subset_report` on every benchmark of ``rows`` (or on all of them when there is one
    benchmark or ``by_benchmark`` is false). A scorer maps rows to one score per row."""
    groups: dict[str, list[OutcomeRow]] = {}
    for r in rows:
        groups.setdefault(r.benchmark or "all", []).append(r)
    if not by_benchmark or len(groups) == 1:
        groups = {next(iter(groups)) if len(groups) == 1 else "all": list(rows)}
    out = []
    for name, group in groups.items():
        scores = {label: list(fn(group)) for label, fn in scorers.items()}
        out.append(subset_report(group, scores, strong=strong, weak=weak, prices=prices, name=name))
    return out


def _hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The upper-left frontier of (cost, quality) points: cheapest first, quality rising, concave."""
    best: list[tuple[float, float]] = []
    for cost, quality in sorted(points, key=lambda p: (p[0], -p[1])):
        if best and quality <= best[-1][1]:
            continue
        while len(best) >= 2:
            (c0, q0), (c1, q1) = best[-2], best[-1]
            # drop the middle point when it lies on or below the chord
            if (q1 - q0) * (cost - c0) <= (quality - q0) * (c1 - c0):
                best.pop()
            else:
                break
        best.append((cost, quality))
    return best


def pool_report(rows: Sequence[OutcomeRow], difficulty: Sequence[float], models: Sequence[str],
                prices: Mapping[str, float], *, target: float = 0.95, steps: int | None = None) -> dict[str, Any]:
    """Route by difficulty bands to ``models`` ordered from cheapest to most expensive; the
    quality/cost frontier and the cost saved against the best single model at ``target`` of its
    quality."""
    import numpy as np

    models = sorted(models, key=lambda m: (prices[m], m))
    n, k = len(rows), len(models)
    if k < 2 or not n:
        raise ValueError("a pool needs at least two models and one row")
    order = np.argsort(np.asarray(difficulty, dtype=float), kind="stable")
    S = np.array([[r.outcomes[m] for m in models] for r in rows])[order]
    prefix = np.vstack([np.zeros(k), np.cumsum(S, axis=0)])  # prefix[i, j]: first i prompts on model j
    price = np.array([prices[m] for m in models])
    if steps is None:
        steps = 40 if k <= 3 else 20 if k == 4 else 10
    grid = sorted({round(i * n / steps) for i in range(steps + 1)})
    points, placements = [], {}
    for cuts in combinations_with_replacement(grid, k - 1):
        bounds = (0, *cuts, n)
        quality = sum(prefix[bounds[j + 1], j] - prefix[bounds[j], j] for j in range(k)) / n
        cost = sum((bounds[j + 1] - bounds[j]) * price[j] for j in range(k)) / n
        points.append((float(cost), float(quality)))
        placements[points[-1]] = [(bounds[j + 1] - bounds[j]) / n for j in range(k)]
    frontier = _hull(points)
    singles = {m: {"quality": round(float(S[:, j].mean()), 4), "cost": float(price[j])} for j, m in enumerate(models)}
    best = max(models, key=lambda m: (singles[m]["quality"], -singles[m]["cost"]))
    goal = target * float(S[:, models.index(best)].mean())
    saved = None
    for (c0, q0), (c1, q1) in zip([frontier[0]] + frontier, frontier):
        if q1 >= goal:
            cost = c1 if q1 == q0 or q0 >= goal else c0 + (c1 - c0) * (goal - q0) / (q1 - q0)
            saved = round(1 - cost / singles[best]["cost"], 4) if singles[best]["cost"] else 0.0
            break
    return {
        "models": list(models), "singles": singles, "best_single": best, "target_quality": round(goal, 4),
        "cost_saved": saved,
        "frontier": [{"cost": round(c, 6), "quality": round(q, 5), "shares": [round(x, 4) for x in placements[(c, q)]]}
                     for c, q in frontier],
    }


def cross_validated(rows: Sequence[OutcomeRow], fit_predict: Callable[[list[OutcomeRow], list[OutcomeRow]], Any], *,
                    folds: int = 5, on_fold: Callable[[int], None] | None = None, split: int = 0) -> list[float]:
    """Held-out scores: each fold (by :func:`fold_of`) scored by ``fit_predict(train, test)``
    trained on the other folds. A fold with nothing to train on or to score is skipped (scored 0).
    ``split`` picks one of many fixed ways to deal the rows into folds: 0 (the default) by the
    hash of ``id`` alone, ``n`` by the hash of ``"split<n>:" + id``; repeating the evaluation over
    several splits tells how much a figure owes to which rows landed together."""
    which = [fold_of(r.id if not split else f"split{split}:{r.id}", folds) for r in rows]
    out = [0.0] * len(rows)
    for f in range(folds):
        train = [r for r, g in zip(rows, which) if g != f]
        test_idx = [i for i, g in enumerate(which) if g == f]
        if test_idx and train:
            for i, value in zip(test_idx, fit_predict(train, [rows[i] for i in test_idx])):
                out[i] = float(value)
        if on_fold is not None:
            on_fold(f)
    return out
