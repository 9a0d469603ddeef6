"""What the in-memory cache and the SQLite decision log add to a decision.

Compares three Routers on the same tasks, interleaved round by round so that machine noise falls on
all of them alike:

  off     Router()                                       no cache, no log
  on      Router(cache_enabled=True, decision_logger=SQLiteLogger(...))
          - miss path: every task is new (a unique suffix), so each call computes the key, decides,
            stores the entry and queues the log record;
          - hit path: tasks repeat, so each call is answered from the cache (and logged).

Target (issue 4): on − off ≤ 20 µs at p50, for the miss path and the hit path.

    python benchmarks/runtime_overhead.py [--rounds 30] [--per-round 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from dmr import Router
from dmr.store import SQLiteLogger

TASKS = [
    "Hi!", "What is 2+2?", "Translate 'good morning' into Spanish.",
    "Write a Python function that merges two sorted lists and include unit tests.",
    "Design a multi-region CQRS architecture for a payments ledger with exactly-once processing.",
    "Summarise the attached meeting notes in three bullet points.",
    "Prove that the square root of 2 is irrational.",
    "Explique la diferencia entre TCP y UDP.",
]


def timed(router: Router, tasks: list[str]) -> list[float]:
    out = []
    clock = time.perf_counter_ns
    for task in tasks:
        t0 = clock()
        router.classify(task)
        out.append((clock() - t0) / 1e3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per-round", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        off = Router()
        logger = SQLiteLogger(Path(tmp) / "decisions.sqlite3")
        on = Router(cache_enabled=True, decision_logger=logger)
        repeated = [TASKS[i % len(TASKS)] for i in range(args.per_round)]
        for task in TASKS:  # warm the cache for the hit path, and both routers' first-call costs
            on.classify(task)
            off.classify(task)
        samples: dict[str, list[float]] = {"off, new tasks": [], "on, miss path": [], "off, repeated tasks": [],
                                           "on, hit path": []}
        serial = 0
        for _ in range(args.rounds):
            fresh = [f"{TASKS[(serial + i) % len(TASKS)]} #{serial + i}" for i in range(args.per_round)]
            serial += args.per_round
            samples["off, new tasks"] += timed(off, fresh)
            samples["on, miss path"] += timed(on, [t + " " for t in fresh])  # new to the cache too
            samples["off, repeated tasks"] += timed(off, repeated)
            samples["on, hit path"] += timed(on, repeated)
            logger.flush()  # keep the log writer's work out of the next round's timings
        on.close()
        stats = logger.stats()

    p = {name: statistics.quantiles(values, n=100) for name, values in samples.items()}
    print(f"{args.rounds} rounds × {args.per_round} decisions per row; times in µs")
    print(f"{'router':<22} {'p50':>8} {'p95':>8} {'p99':>8}   {'p50 overhead vs off':>20}")
    base = {"on, miss path": "off, new tasks", "on, hit path": "off, repeated tasks"}
    for name, q in p.items():
        overhead = ""
        if name in base:
            delta = q[49] - p[base[name]][49]
            overhead = f"{delta:+.1f} µs  {'OK' if delta <= 20 else 'OVER 20 µs'}"
        print(f"{name:<22} {q[49]:>8.1f} {q[94]:>8.1f} {q[98]:>8.1f}   {overhead:>20}")
    print(f"log: {stats['written']:,} records written, {stats['dropped']} dropped, {stats['errors']} errors")


if __name__ == "__main__":
    main()
