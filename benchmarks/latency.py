"""Layer 1 latency: p50/p95/p99 and decisions per second of a full ``Router.classify`` with Layer 1
only, for short (~50 chars), medium (~500), long (~5,000) and ≤2,000-character tasks, plus how the
cost grows up to 1 MB.

    python benchmarks/latency.py [--n 3000]

Targets on a 2-core machine: p50 ≤ 50 µs and p99 ≤ 200 µs for tasks up to 2,000 characters;
1 MB in ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time

from dmr import Router

SENTENCES = [
    "Write a Python function that merges two sorted lists.",
    "Our checkout service times out under load after the last deploy.",
    "Summarize the meeting notes below in three bullet points.",
    "Explain why the query plan switched to a sequential scan.",
    "Translate the following paragraph into German, keeping the tone formal.",
    "Design a fault-tolerant job scheduler and discuss the trade-offs.",
    "What is the derivative of x^3 + 2x with respect to x?",
    "Draft a polite email asking the supplier for a revised invoice.",
    "Brainstorm ten names for a coffee shop that also sells books.",
    "Given this tool output, decide which file the agent should open next.",
    "The contract says the landlord pays for structural repairs; is the roof structural?",
    "Describe what is happening in the attached screenshot of the dashboard.",
]


def make_task(rng: random.Random, chars: int) -> str:
    parts: list[str] = []
    total = 0
    while total < chars:
        parts.append(rng.choice(SENTENCES))
        total += len(parts[-1]) + 1
    return " ".join(parts)[:chars]


def measure(router: Router, tasks: list[str]) -> list[float]:
    for task in tasks[:200]:
        router.classify(task)
    samples = []
    gc.disable()
    try:
        for task in tasks:
            start = time.perf_counter_ns()
            router.classify(task)
            samples.append((time.perf_counter_ns() - start) / 1e3)
    finally:
        gc.enable()
    return sorted(samples)


def pct(samples: list[float], q: float) -> float:
    return samples[min(len(samples) - 1, int(q * len(samples)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="tasks per row")
    parser.add_argument("--max-size", type=int, default=10_000_000, help="largest task of the growth table")
    args = parser.parse_args()
    rng = random.Random(7)
    router = Router(layer3_enabled=False)  # Layer 1 only (Layer 2 is off by default)
    # "≤2,000 mixed": lengths log-uniform between 20 and 2,000 characters, as real prompts are
    # mostly short; the fixed-length rows show the cost at each size.
    rows = [("short (~50)", 50), ("medium (~500)", 500), ("2,000", 2000), ("≤2,000 mixed", None),
            ("long (~5,000)", 5000)]
    print(f"{'tasks':<16}{'p50 µs':>9}{'p95 µs':>9}{'p99 µs':>9}{'decisions/s':>13}")
    for label, size in rows:
        tasks = [make_task(rng, size if size else int(20 * 100 ** rng.random())) for _ in range(args.n)]
        samples = measure(router, tasks)
        rate = 1e6 / statistics.fmean(samples)
        print(f"{label:<16}{pct(samples, .5):>9.1f}{pct(samples, .95):>9.1f}{pct(samples, .99):>9.1f}{rate:>13,.0f}")
    print()
    print(f"{'size':<16}{'ms per task':>12}")
    for size in (s for s in (10_000, 100_000, 1_000_000, 10_000_000) if s <= args.max_size):
        task = make_task(rng, size)
        router.classify(task)
        runs = 3 if size >= 1_000_000 else 20
        start = time.perf_counter()
        for _ in range(runs):
            router.classify(task)
        print(f"{size:<16,}{(time.perf_counter() - start) / runs * 1e3:>12.2f}")


if __name__ == "__main__":
    main()
