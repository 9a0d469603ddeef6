#!/usr/bin/env python3
"""Throughput of classifying a JSONL file (``dmr classify --batch``), in this process and on Ray.

The file is the team's task prompts (``datasets/*.jsonl``) repeated to ``--lines`` lines. Each run
goes through :func:`dmr.batch.classify_stream`, the function behind the command, writing to a
file: the local engine with the default Router, then ``--engine ray`` on a local Ray started for the
run (its start-up is timed with it, as a user pays it) with 1 and 2 workers, or ``--workers``. A row
says how long the run took, lines per second, and whether its output equals the local engine's
(decisions compared without ids, timestamps and latencies).

    python benchmarks/batch.py [--lines 93070] [--workers 1,2] [--no-ray]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
_KEEP = ("tier", "task_type", "complexity", "model_name", "difficulty", "policies_applied")


def _lines(count: int) -> list[str]:
    tasks = []
    for path in sorted((ROOT / "datasets").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                tasks.append(json.loads(line)["task"])
    return [json.dumps({"id": i, "task": tasks[i % len(tasks)]}, ensure_ascii=False) for i in range(count)]


def _digest(path: Path) -> list:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        decision = record.get("decision")
        out.append((record.get("id"), tuple(str(decision[k]) for k in _KEEP) if decision else record.get("error")))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=93_070)
    parser.add_argument("--workers", default="1,2", help="Ray worker counts to time, comma-separated")
    parser.add_argument("--no-ray", action="store_true", help="time the local engine only")
    args = parser.parse_args(argv)

    from dmr import Router
    from dmr.batch import classify_stream

    lines = _lines(args.lines)
    runs = [("local", None)] + ([] if args.no_ray else [("ray", int(w)) for w in args.workers.split(",")])
    rows, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for engine, workers in runs:
            out = Path(tmp) / f"{engine}-{workers}.jsonl"
            start = time.perf_counter()
            router = Router() if engine == "local" else None  # the Router's start-up is timed too
            with out.open("w", encoding="utf-8") as sink:
                done, failed = classify_stream(lines, lambda line: sink.write(line + "\n"), router=router,
                                               engine=engine, workers=workers)
            seconds = time.perf_counter() - start
            digest = _digest(out)
            reference = reference if reference is not None else digest
            label = "local (one process)" if engine == "local" else f"ray, {workers} worker(s), local Ray"
            rows.append((label, seconds, (done + failed) / seconds, digest == reference))
    print(f"{args.lines:,} lines of the team's tasks, {os.cpu_count()} CPUs")
    print(f"{'engine':<32} | {'seconds':>8} | {'lines/s':>8} | same output")
    print("-" * 68)
    for label, seconds, rate, same in rows:
        print(f"{label:<32} | {seconds:>8.1f} | {rate:>8,.0f} | {'yes' if same else 'NO'}")
    return 0 if all(same for *_, same in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
