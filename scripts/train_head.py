#!/usr/bin/env python3
"""Rebuild the shipped Layer 3 head, src/dmr/data/l3/head.npz + head.json, from datasets/*.jsonl.

Trains on every row outside the fixed test split (sha256(task) % 5 == 0, never trained or tuned
on), fits the temperatures on a fold held out of the training rows, and records the held-out
metrics in the metadata. numpy alone is enough; with scipy installed (`pip install '.[train]'`)
training is much faster.

With datasets/capability/*.jsonl present (``--capability``), the head also learns its difficulty
output (``needs``, datasets/capability/README.md), held out by the same hash split.

Usage: python scripts/train_head.py [--data datasets] [--out src/dmr/data/l3/head] [--max-iter 150]
                                   [--encoder default|none|DIR] [--capability datasets/capability]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "datasets"))
    parser.add_argument("--out", default=str(ROOT / "src" / "dmr" / "data" / "l3" / "head"))
    parser.add_argument("--max-iter", type=int, default=150)
    parser.add_argument("--l2", type=float, default=1e-5)
    parser.add_argument("--encoder", default="default",
                        help="sentence encoder directory ('default': the shipped static one; 'none': n-grams only)")
    parser.add_argument("--capability", default=str(ROOT / "datasets" / "capability"),
                        help="capability JSONL file or folder for the difficulty output ('none' to skip)")
    args = parser.parse_args()

    from dmr.ml.evaluate import evaluate_head
    from dmr.ml.train import is_heldout, load_examples, train_head

    examples = load_examples(args.data)
    train = [e for e in examples if not is_heldout(e.task)]
    test = [e for e in examples if is_heldout(e.task)]
    print(f"{len(train)} training rows, {len(test)} held-out rows", flush=True)
    start = time.time()

    def progress(stage: str, step: int, value: float) -> None:
        if stage != "fit" or step % 25 == 0:
            print(f"  {stage} {step} ({time.time() - start:.0f} s)", flush=True)

    from dmr.ml.encoder import load_encoder

    encoder = None if args.encoder == "none" else load_encoder(args.encoder)
    head, _ = train_head(train, l2=args.l2, max_iter=args.max_iter, progress=progress, encoder=encoder)
    report = evaluate_head(head, test)
    report.pop("confidence")
    needs = None
    if args.capability != "none":
        from dmr.ml.needs import fit_and_score

        needs = fit_and_score(head, args.capability)
        print(f"difficulty output: {needs}", flush=True)
    path = head.save(args.out, trained_on=f"{len(train)} rows of datasets/*.jsonl (test split excluded)",
                     heldout=report, needs_report=needs)
    print(f"wrote {path} in {time.time() - start:.0f} s; held-out: "
          f"type macro-F1 {report['type_macro_f1']:.3f}, complexity macro-F1 {report['complexity_macro_f1']:.3f}, "
          f"tier accuracy {report['tier_accuracy']:.3f}, ECE {report['ece']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
