"""Training and scoring the Layer 3 head's ``needs`` output: how strong a model a task needs.

Rows are capability-labelled tasks (``datasets/capability/*.jsonl``, defined in
``datasets/capability/README.md``): ``{"task": ..., "needs": 0..3}``. The head learns ``needs / 3`` as a
soft logistic target on its own features (:meth:`dmr.ml.head.NgramHead.fit_needs`); the penalty is
chosen by cross-validation on the training rows. The report scores a held-out split by rank
agreement (Spearman), by how well it separates tasks that need a strong model (``needs >= 2``) from
the rest (ROC AUC), and by mean absolute error on the 0..3 scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from dmr.errors import InputError
from dmr.ml.train import fold_of, is_heldout, l1_signals, read_rows

__all__ = ["NEEDS_L2_GRID", "fit_and_score", "load_capability", "needs_report", "predict_needs", "train_needs"]

NEEDS_L2_GRID = (1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 1e-3, 1e-2)
TOP = 3


def load_capability(paths: str | Path | Iterable[str | Path]) -> list[tuple[str, int]]:
    """``(task, needs)`` pairs from capability JSONL files (a file, a folder of ``*.jsonl``, or
    several). A bad line raises :class:`~dmr.errors.InputError` naming the file and line."""

    def parse(row: dict[str, Any]) -> tuple[str, int]:
        needs = row["needs"]
        if isinstance(needs, bool) or needs not in range(TOP + 1):
            raise ValueError(f"needs must be an integer 0..{TOP}, got {needs!r}")
        return row["task"], int(needs)

    out = read_rows(paths, parse)
    if not out:
        raise InputError("no capability rows found")
    return out


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=np.float64)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra @ ra) * (rb @ rb))
    return float(ra @ rb / denom) if denom > 0 else 0.0


def _auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return None
    ranks = _ranks(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos - 1) / 2) / (n_pos * n_neg))


def needs_report(predicted: Sequence[float], needs: Sequence[int]) -> dict[str, Any]:
    """Spearman, ROC AUC of ``needs >= 2`` and MAE (0..3 scale) of predictions in 0..1."""
    p, y = np.asarray(predicted, dtype=np.float64), np.asarray(needs, dtype=np.float64)
    auc = _auc(p, y >= 2)
    return {"rows": len(y), "spearman": round(_spearman(p, y), 4), "auc_needs_2": None if auc is None else round(auc, 4),
            "mae": round(float(np.abs(p * TOP - y).mean()), 4)}


def _predict(head: Any, texts: Sequence[str], signals: Sequence[Any]) -> np.ndarray:
    return head.needs_from_logits(head.batch_logits(texts, signals))


def train_needs(head: Any, rows: Sequence[tuple[str, int]], *, l2: float | None = None, folds: int = 4,
                progress: Callable[[str, int, float], None] | None = None, l1_layer: Any = None) -> dict[str, Any]:
    """Fit ``head``'s needs output on ``rows`` (callers leave their test split out). With ``l2``
    None, each penalty of :data:`NEEDS_L2_GRID` is scored by ``folds``-fold cross-validation
    (Spearman) and the best refitted on every row. Returns the cross-validation scores."""
    if len(rows) < 2 * folds:
        raise InputError(f"the needs output needs at least {2 * folds} capability rows, got {len(rows)}")
    texts = [t for t, _ in rows]
    y = np.array([n for _, n in rows], dtype=np.float64)
    signals = l1_signals(texts, l1_layer)
    scores: dict[float, float] = {}
    grid = NEEDS_L2_GRID if l2 is None else (l2,)
    if len(grid) > 1:
        fold = np.array([fold_of(t, folds) for t in texts])
        for step, lam in enumerate(grid):
            predicted = np.zeros(len(rows))
            for f in range(folds):
                tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
                head.fit_needs([texts[i] for i in tr], y[tr] / TOP, [signals[i] for i in tr], l2=lam)
                predicted[te] = _predict(head, [texts[i] for i in te], [signals[i] for i in te])
            scores[lam] = _spearman(predicted, y)
            if progress is not None:
                progress("needs", step + 1, scores[lam])
    best = max(scores, key=scores.__getitem__) if scores else grid[0]
    head.fit_needs(texts, y / TOP, signals, l2=best)
    return {"l2": best, "cv_spearman": {f"{k:g}": round(v, 4) for k, v in scores.items()}}


def predict_needs(head: Any, texts: Sequence[str]) -> np.ndarray:
    """The head's needs output (0..1) for ``texts``, with Layer 1's signals as at run time."""
    return _predict(head, list(texts), l1_signals(list(texts)))


def fit_and_score(head: Any, capability: str | Path | Iterable[str | Path],
                  progress: Callable[[str, int, float], None] | None = None, l1_layer: Any = None) -> dict[str, Any]:
    """Fit ``head``'s needs output on the capability rows outside the held-out hash split (the
    same split as the head's own test rows), with ``l1_layer``'s signals (default: every bundled
    pack), and score it on that split as a Router runs it (every pack)."""
    rows = load_capability(capability)
    fit_rows = [r for r in rows if not is_heldout(r[0])]
    test_rows = [r for r in rows if is_heldout(r[0])]
    report: dict[str, Any] = {"train_rows": len(fit_rows),
                              **train_needs(head, fit_rows, progress=progress, l1_layer=l1_layer)}
    if test_rows:
        report["heldout"] = needs_report(predict_needs(head, [t for t, _ in test_rows]), [n for _, n in test_rows])
    return report
