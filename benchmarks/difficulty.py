"""How well each difficulty estimate ranks the held-out capability labels of ``datasets/capability/``.

    python benchmarks/difficulty.py [--json]

The held-out rows are those whose ``sha256(task) % 5 == 0`` (never trained on). For each estimate:
Spearman rank agreement with ``needs`` (0..3), ROC AUC of telling ``needs >= 2`` (only strong models
reliably) from the rest, and mean absolute error on the 0..3 scale (estimates in 0..1 are scaled by
3, so MAE only means something for the first two rows). Rows:

- the shipped head's difficulty output (what Layer 3 and quality targets use);
- the type gap times the expected complexity position (``dmr.difficulty``; what Layers 1 and 2 use,
  here from the head's type and complexity probabilities);
- the expected complexity position alone;
- prompt length, the baseline a difficulty must beat without leaning on it.

"within type" is the Spearman agreement inside each labelled task type (types with at least 15
held-out rows), averaged with the rows as weights: how well an estimate ranks tasks of one kind,
as a benchmark of word problems or of multiple-choice questions asks it to, rather than telling a
greeting from a proof. "2 vs 1 in type" narrows that to a band: inside each type, the ROC AUC of
telling the tasks labelled 2 from those labelled 1 (averaged with the rows as weights).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run() -> dict:
    from dmr.difficulty import expected_difficulty
    from dmr.layers.embedding import DEFAULT_HEAD
    from dmr.ml.head import NgramHead
    from dmr.ml.needs import load_capability, needs_report, predict_needs
    from dmr.ml.train import is_heldout, l1_signals

    from dmr.ml.needs import _auc, _spearman
    from dmr.ml.train import read_rows

    folder = ROOT / "datasets" / "capability"
    rows = [r for r in load_capability(folder) if is_heldout(r[0])]
    texts, needs = [t for t, _ in rows], [n for _, n in rows]
    kinds = {task: kind for task, kind in read_rows(folder, lambda row: (row["task"], row.get("task_type")))}
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        groups.setdefault(str(kinds.get(text)), []).append(i)
    groups = {kind: idx for kind, idx in groups.items() if len(idx) >= 15}
    truth = np.asarray(needs, dtype=np.float64)

    def within_type(estimate: np.ndarray) -> float:
        return float(np.average([_spearman(estimate[idx], truth[idx]) for idx in groups.values()],
                                weights=[len(idx) for idx in groups.values()]))

    def middle_band(estimate: np.ndarray) -> float:
        # Inside each type, telling the tasks labelled 2 from those labelled 1: a narrow band of one kind.
        aucs, sizes = [], []
        for idx in groups.values():
            band = [i for i in idx if truth[i] in (1, 2)]
            auc = _auc(estimate[band], truth[band] == 2)
            if auc is not None:
                aucs.append(auc)
                sizes.append(len(band))
        return float(np.average(aucs, weights=sizes))

    head = NgramHead.load(DEFAULT_HEAD)
    p_type, p_cx = head.predict_proba(texts, l1_signals(texts))
    position = p_cx @ np.arange(p_cx.shape[1]) / (p_cx.shape[1] - 1)
    formula = [expected_difficulty(dict(zip(head.type_labels_, p)), x) for p, x in zip(p_type, position)]
    lengths = np.array([len(t) for t in texts], dtype=np.float64)
    estimates = {"head difficulty output": predict_needs(head, texts) if head.needs_ else None,
                 "type gap x complexity position": formula,
                 "complexity position": position,
                 "prompt length": lengths / lengths.max()}
    return {name: None if est is None else {**needs_report(est, needs),
                                            "within_type_spearman": round(within_type(np.asarray(est, dtype=np.float64)), 3),
                                            "within_type_auc_2_vs_1": round(middle_band(np.asarray(est, dtype=np.float64)), 3)}
            for name, est in estimates.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = run()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{'estimate':<32} | {'rows':>5} | {'Spearman':>8} | {'within type':>11} | {'2 vs 1 in type':>14} | "
          f"{'AUC needs>=2':>12} | {'MAE (0-3)':>9}")
    print("-" * 110)
    for name, r in report.items():
        if r is None:
            print(f"{name:<32} | the shipped head has no difficulty output")
            continue
        print(f"{name:<32} | {r['rows']:>5} | {r['spearman']:>8.3f} | {r['within_type_spearman']:>11.3f} | {r['within_type_auc_2_vs_1']:>14.3f} | "
              f"{r['auc_needs_2']:>12.3f} | {r['mae']:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
