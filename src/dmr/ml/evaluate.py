"""Metrics for Layer 3 and for the whole cascade: accuracy, macro-F1, tier accuracy through the tier
matrix, expected calibration error, confusion matrices and the share each layer decided."""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["confusion", "distinct_examples", "ece", "evaluate_head", "evaluate_router", "macro_f1",
           "tier_confidence"]


def macro_f1(truth: Sequence[str], pred: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Mean F1 over the labels that occur in ``truth`` or ``pred``."""
    seen = set(truth) | set(pred)
    labels = [label for label in (labels or sorted(seen)) if label in seen]
    scores = []
    for label in labels:
        tp = sum(1 for t, p in zip(truth, pred) if t == label and p == label)
        fp = sum(1 for t, p in zip(truth, pred) if t != label and p == label)
        fn = sum(1 for t, p in zip(truth, pred) if t == label and p != label)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def confusion(truth: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> list[list[int]]:
    """Rows are the true label, columns the predicted one, in ``labels`` order."""
    index = {label: i for i, label in enumerate(labels)}
    out = [[0] * len(labels) for _ in labels]
    for t, p in zip(truth, pred):
        if t in index and p in index:
            out[index[t]][index[p]] += 1
    return out


def ece(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error: the mean |accuracy - confidence| over equal-width bins,
    weighted by how many predictions fall in each."""
    conf = np.asarray(confidence, dtype=float)
    ok = np.asarray(correct, dtype=float)
    if not len(conf):
        return 0.0
    which = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(ok[mask].mean() - conf[mask].mean())
    return float(total / len(conf))


def tier_confidence(p_type: np.ndarray, p_cx: np.ndarray, type_labels: Sequence[str],
                    cx_labels: Sequence[str], tier_of: Callable[[str, str], Any]) -> tuple[int, int, float]:
    """The arg-max type and complexity, and the probability that the tier they map to is the
    right tier (the sum of the joint probabilities of every cell that maps to that tier)."""
    t, c = int(p_type.argmax()), int(p_cx.argmax())
    tier = tier_of(type_labels[t], cx_labels[c])
    joint = np.outer(p_type, p_cx)
    same = np.array([[tier_of(a, b) == tier for b in cx_labels] for a in type_labels])
    return t, c, float(joint[same].sum())


def evaluate_head(head: Any, examples: Sequence[Any], signals: Sequence[Any] | None = None,
                  tier_matrix: Any = None) -> dict[str, Any]:
    """Held-out metrics of a head alone (every row decided by Layer 3)."""
    from dmr.ml.train import l1_signals
    from dmr.tiers import TierMatrix

    matrix = tier_matrix or TierMatrix()
    texts = [e.task for e in examples]
    sigs = signals if signals is not None else l1_signals(texts)
    p_type, p_cx = head.predict_proba(texts, sigs)
    tl, cl = head.type_labels_, head.complexity_labels_
    pred_t, pred_c, conf, tier_ok = [], [], [], []
    for i, e in enumerate(examples):
        t, c, q = tier_confidence(p_type[i], p_cx[i], tl, cl, matrix.tier)
        pred_t.append(tl[t])
        pred_c.append(cl[c])
        conf.append(q)
        tier_ok.append(matrix.tier(tl[t], cl[c]) == matrix.tier(e.task_type, e.complexity))
    truth_t = [e.task_type for e in examples]
    truth_c = [e.complexity for e in examples]
    per_language: dict[str, dict[str, Any]] = {}
    for lang in sorted({e.language or "?" for e in examples}):
        idx = [i for i, e in enumerate(examples) if (e.language or "?") == lang]
        per_language[lang] = {
            "n": len(idx),
            "type_accuracy": round(float(np.mean([pred_t[i] == truth_t[i] for i in idx])), 4),
            "complexity_accuracy": round(float(np.mean([pred_c[i] == truth_c[i] for i in idx])), 4),
            "tier_accuracy": round(float(np.mean([tier_ok[i] for i in idx])), 4),
        }
    type_conf = p_type.max(axis=1)
    return {
        "n": len(examples),
        "type_accuracy": round(float(np.mean([a == b for a, b in zip(pred_t, truth_t)])), 4),
        "type_macro_f1": round(macro_f1(truth_t, pred_t, tl), 4),
        "complexity_accuracy": round(float(np.mean([a == b for a, b in zip(pred_c, truth_c)])), 4),
        "complexity_macro_f1": round(macro_f1(truth_c, pred_c, cl), 4),
        "tier_accuracy": round(float(np.mean(tier_ok)), 4),
        "ece": round(ece(conf, tier_ok), 4),
        "ece_type": round(ece(type_conf, [a == b for a, b in zip(pred_t, truth_t)]), 4),
        "per_language": per_language,
        "confidence": [round(c, 4) for c in conf],
    }


def distinct_examples(examples: Sequence[Any]) -> tuple[list[Any], int, list[dict[str, Any]]]:
    """Each task text once, as its first row gives it (a repeated row would count twice in every
    score): ``(examples, rows dropped, conflicts)``, a conflict being a task whose rows disagree in
    their labels, ``{"task", "labels": [{"task_type", "complexity"}, ...]}`` in the order given."""
    first: dict[str, Any] = {}
    labels: dict[str, list[tuple[str, str | None]]] = {}
    for example in examples:
        first.setdefault(example.task, example)
        given = labels.setdefault(example.task, [])
        if (example.task_type, example.complexity) not in given:
            given.append((example.task_type, example.complexity))
    conflicts = [{"task": task, "labels": [{"task_type": t, "complexity": c} for t, c in given]}
                 for task, given in labels.items() if len(given) > 1]
    return list(first.values()), len(examples) - len(first), conflicts


def evaluate_router(router: Any, examples: Sequence[Any], *,
                    progress: Callable[[int], None] | None = None, workers: Any = None) -> dict[str, Any]:
    """Run every example through the router (``classify_batch``, a block at a time; or through
    the Routers of a :class:`dmr.batch.RayPool`, ``workers``, built from the same configuration)
    and score the decisions; ``progress`` is told how many are done after each block."""
    from dmr.batch import BLOCK, LocalPool
    from dmr.types import TaskComplexity, TaskType

    matrix = router._matrix
    blocks = [[e.task for e in examples[start:start + BLOCK]] for start in range(0, len(examples), BLOCK)]
    decisions: list[Any] = []
    for _, found in (workers or LocalPool(router)).ordered("decide", blocks):
        decisions += found
        if progress is not None:
            progress(len(decisions))
    tl = [str(t) for t in TaskType]
    cl = [str(c) for c in TaskComplexity]
    truth_t = [e.task_type for e in examples]
    truth_c = [e.complexity for e in examples]
    pred_t = [str(d.task_type) for d in decisions]
    pred_c = [str(d.complexity) for d in decisions]
    # How many tiers each decision sits above (+) or below (-) the tier its labels map to: above
    # is money spent for nothing, below is an answer at risk, and tier accuracy alone hides which.
    steps = [matrix.tier(d.task_type, d.complexity).rank - matrix.tier(e.task_type, e.complexity).rank
             for d, e in zip(decisions, examples)]
    tier_ok = [step == 0 for step in steps]
    layers = Counter(d.layer for d in decisions)
    n = max(len(examples), 1)
    unsure_l1 = [d for d in decisions if d.trace and d.trace[0].layer == "layer1" and d.trace[0].outcome != "decided"]
    by_layer = {}
    for name in layers:
        idx = [i for i, d in enumerate(decisions) if d.layer == name]
        by_layer[name] = {"share": round(len(idx) / n, 4),
                          "tier_accuracy": round(float(np.mean([tier_ok[i] for i in idx])), 4)}
    return {
        "n": len(examples),
        "type_accuracy": round(float(np.mean([a == b for a, b in zip(pred_t, truth_t)])), 4) if examples else 0.0,
        "type_macro_f1": round(macro_f1(truth_t, pred_t, tl), 4),
        "complexity_accuracy": round(float(np.mean([a == b for a, b in zip(pred_c, truth_c)])), 4) if examples else 0.0,
        "complexity_macro_f1": round(macro_f1(truth_c, pred_c, cl), 4),
        "tier_accuracy": round(float(np.mean(tier_ok)), 4) if examples else 0.0,
        "tier_above": round(sum(1 for step in steps if step > 0) / n, 4),
        "tier_below": round(sum(1 for step in steps if step < 0) / n, 4),
        "ece": round(ece([d.confidence for d in decisions], tier_ok), 4),
        "decided_by": by_layer,
        "layer3_share_of_layer1_unsure": round(
            sum(1 for d in unsure_l1 if d.layer == "layer3") / len(unsure_l1), 4) if unsure_l1 else None,
        "type_labels": tl,
        "type_confusion": confusion(truth_t, pred_t, tl),
        "complexity_labels": cl,
        "complexity_confusion": confusion(truth_c, pred_c, cl),
    }
