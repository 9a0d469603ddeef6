"""Similarity-weighted neighbours: what the most similar logged prompts say about a new one.

For a prompt, take the ``k`` training prompts whose sentence embeddings are closest (cosine), and
average each model's target over them, weighted by similarity and shrunk towards the model's base
rate by one pseudo-row (so a model no neighbour scored gets its base rate, and a lone neighbour does
not decide alone). This is how the similarity-weighted routers of the RouteLLM paper read Arena
preferences, and it catches what a linear model of the features misses: a handful of near-duplicate
prompts that went the same way. It is one half of a blend, ``(1 − α) · logistic + α · neighbours``,
whose ``k`` and ``α`` the outcome model picks by inner cross-validation (:func:`choose_blend`), so on
data where neighbours say nothing it stays at ``α = 0`` and stores no embeddings.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["BLEND_GRID", "NEIGHBOUR_GRID", "NEIGHBOUR_ROWS", "choose_blend", "neighbour_estimate"]

NEIGHBOUR_GRID = (5, 10, 20, 40)
BLEND_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
# At most this many training prompts are searched and stored: a decision's search is linear in them.
NEIGHBOUR_ROWS = 20_000
# Weight of the base rate in a neighbour estimate, in rows of similarity 1.
PSEUDO_ROWS = 1.0
_CHUNK = 1024


def _top(query: np.ndarray, ref: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``ref`` of each query row's ``k`` most similar rows, most similar first, and
    their weights (cosine similarity floored at 0, plus a little so that ties count)."""
    k = min(k, len(ref))
    sims = np.asarray(query, dtype=np.float32) @ np.asarray(ref, dtype=np.float32).T
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < len(ref) else np.tile(np.arange(len(ref)), (len(query), 1))
    picked = np.take_along_axis(sims, top, axis=1)
    order = np.argsort(-picked, axis=1, kind="stable")
    top, picked = np.take_along_axis(top, order, axis=1), np.take_along_axis(picked, order, axis=1)
    return top, np.maximum(picked, 0.0).astype(np.float64) + 1e-6


def _estimate(top: np.ndarray, weights: np.ndarray, Y: np.ndarray, M: np.ndarray, base: np.ndarray) -> np.ndarray:
    w = weights[:, :, None] * M[top]
    return ((w * Y[top]).sum(axis=1) + PSEUDO_ROWS * base) / (w.sum(axis=1) + PSEUDO_ROWS)


def neighbour_estimate(query: np.ndarray, ref: np.ndarray, Y: np.ndarray, M: np.ndarray, k: int,
                       base: np.ndarray) -> np.ndarray:
    """``(n_query, n_models)``: each model's target averaged over each query's ``k`` nearest rows of
    ``ref`` (unit embeddings), where ``M`` marks the targets present, shrunk towards ``base``."""
    out = np.empty((len(query), Y.shape[1]))
    if not len(ref):
        out[:] = base
        return out
    for start in range(0, len(query), _CHUNK):
        top, weights = _top(query[start:start + _CHUNK], ref, k)
        out[start:start + _CHUNK] = _estimate(top, weights, Y, M, base)
    return out


# Rows scoring both the cheapest and the best model below which the blend is chosen by log loss.
MIN_RANKED_ROWS = 30


def _log_loss(p: np.ndarray, Y: np.ndarray, M: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return -float((M * (Y * np.log(p) + (1 - Y) * np.log(1 - p))).sum())


def _lost_gain(p: np.ndarray, Y: np.ndarray, M: np.ndarray) -> float:
    """The routing metric, negated so that lower is better: over the rows that score both the
    cheapest and the best model, the area under the curve of the gap recovered against the share of
    rows sent to the best model, when they go in order of ``p_best − p_cheapest``."""
    both = (M[:, 0] > 0) & (M[:, -1] > 0)
    gap = Y[both, -1] - Y[both, 0]
    order = np.argsort(-(p[both, -1] - p[both, 0]), kind="stable")
    recovered = np.cumsum(gap[order])
    return -float(recovered.mean())


def choose_blend(E: np.ndarray, Y: np.ndarray, M: np.ndarray, fold: np.ndarray, oof: np.ndarray, base: np.ndarray,
                 ks: Sequence[int] = NEIGHBOUR_GRID, alphas: Sequence[float] = BLEND_GRID) -> tuple[int, float, float]:
    """The ``(k, α, loss)`` whose blend of the out-of-fold logistic predictions ``oof`` with the
    neighbour estimates (each row's neighbours taken from the other inner folds, as ``oof`` was
    fitted) ranks the held-out rows best: by the routing metric (:func:`_lost_gain`) where at least
    :data:`MIN_RANKED_ROWS` rows score both the cheapest and the best model, else by log loss.
    A blend is kept only when it beats ``α = 0`` (no neighbours) on most inner folds and has the
    lowest total."""
    kmax = max(ks)
    nbr = {k: np.empty_like(oof) for k in ks}
    for f in np.unique(fold):
        test, train = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        if not len(train):
            for k in ks:
                nbr[k][test] = base
            continue
        for start in range(0, len(test), _CHUNK):
            rows = test[start:start + _CHUNK]
            top, weights = _top(E[rows], E[train], kmax)
            for k in ks:
                nbr[k][rows] = _estimate(train[top[:, :k]], weights[:, :k], Y, M, base)
    ranked = int(((M[:, 0] > 0) & (M[:, -1] > 0)).sum()) >= MIN_RANKED_ROWS
    score = _lost_gain if ranked else _log_loss
    groups = [np.flatnonzero(fold == f) for f in np.unique(fold)]

    def per_fold(p: np.ndarray) -> np.ndarray:
        return np.array([score(p[g], Y[g], M[g]) for g in groups])

    plain = per_fold(oof)
    best = (0, 0.0, float(plain.sum()))
    for k in ks:
        for alpha in alphas:
            if alpha:
                losses = per_fold((1 - alpha) * oof + alpha * nbr[k])
                # Kept only when better on most inner folds too: with a dozen blends to choose
                # from, the best total alone is often luck.
                if (losses < plain - 1e-9).sum() * 2 > len(groups) and losses.sum() < best[2]:
                    best = (k, float(alpha), float(losses.sum()))
    return best
