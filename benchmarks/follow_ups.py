"""What the follow-up floor (dmr.followups) adds to a decision on a conversation.

Times ``Router().classify(follow_up, history=conversation)`` on conversations of three client
requests and three model answers, interleaved round by round:

  off        Router(follow_up_floor=False): the history is only a cache key and the PII scan
  known      the floor on, the conversation seen before (its requests are remembered by digest)
  new        the floor on, every conversation new (each request costs a Layer 1 + Layer 3 pass)

    python benchmarks/follow_ups.py [--rounds 20] [--per-round 50]
"""

from __future__ import annotations

import argparse
import statistics
import time

from dmr import Router

REQUESTS = [
    "Implement a lock-free multi-producer multi-consumer queue in Rust and test it with loom.",
    "Explain the memory orderings you used, one by one, and why each is enough.",
    "Add benchmarks against crossbeam's ArrayQueue and SegQueue.",
]
FOLLOW_UPS = ["continue", "now add docs", "what about an empty queue?", "继续", "¿y en Java?"]


def conversation(tag: str) -> list[dict[str, str]]:
    turns = []
    for request in REQUESTS:
        turns += [{"role": "user", "content": f"{request} {tag}".strip()},
                  {"role": "assistant", "content": "Here it is: ..."}]
    return turns


def timed(router: Router, calls: list[tuple[str, list]]) -> list[float]:
    out = []
    for task, history in calls:
        t0 = time.perf_counter_ns()
        router.classify(task, history=history)
        out.append((time.perf_counter_ns() - t0) / 1e3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=50)
    args = parser.parse_args()
    off, on = Router(follow_up_floor=False), Router()
    known = conversation("")
    for router in (off, on):
        router.classify("warm up", history=known)
    samples: dict[str, list[float]] = {"off": [], "known": [], "new": []}
    serial = 0
    for _ in range(args.rounds):
        tasks = [FOLLOW_UPS[i % len(FOLLOW_UPS)] for i in range(args.per_round)]
        fresh = [conversation(f"(#{serial + i})") for i in range(args.per_round)]
        serial += args.per_round
        samples["off"] += timed(off, [(t, known) for t in tasks])
        samples["known"] += timed(on, [(t, known) for t in tasks])
        samples["new"] += timed(on, list(zip(tasks, fresh)))
    print(f"{args.rounds} rounds × {args.per_round} decisions per row, {len(REQUESTS)} requests per "
          "conversation; times in µs")
    print(f"{'floor':<8} {'p50':>9} {'p95':>9} {'p99':>9}   {'p50 vs off':>11}")
    base = statistics.quantiles(samples["off"], n=100)[49]
    for name, values in samples.items():
        q = statistics.quantiles(values, n=100)
        print(f"{name:<8} {q[49]:>9.1f} {q[94]:>9.1f} {q[98]:>9.1f}   {q[49] - base:>+10.1f}")


if __name__ == "__main__":
    main()
