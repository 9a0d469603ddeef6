"""What an outcome model costs per decision, with and without the neighbour blend.

Part 1 fits two :class:`dmr.ml.outcomes.OutcomeModel` on the same logged traffic: one with the
neighbour blend off, and one with ``neighbours="auto"``, which keeps the blend only when inner
cross-validation prefers it. The traffic is the team's task prompts (``datasets/*.jsonl``), each
sent as a few templated variants, the way logs repeat themselves. The low tier loses on
every variant of some templates, with a little noise, so the blend has something to find. The
benchmark reports:

- how long each fit takes and which blend it kept;
- the p50 and p99 of ``Router(quality_target=0.95, outcome_model=...).classify`` for one task;
- how well each ranks held-out prompts by whether the low tier lost (AUC): new variants of templates
  it was trained on (one variant of each, held out), and templates it never saw (a fifth of them,
  held out whole: there the log says nothing and both should be near 0.5).

Part 2 times the blend's search alone for one prompt against N stored rows (unit vectors, 128
dimensions), and gives the memory the rows take. A model that blends keeps its training prompts, up
to ``neighbour_rows`` (20,000 by default), so this is how its per-decision cost grows with the log
it was trained on, and why that cap exists.

    python benchmarks/outcome_model.py [--templates 200] [--variants 4] [--rows 1000,10000,20000,100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from dmr import Router
from dmr.ml.needs import _auc as auc  # ties share their mean rank
from dmr.ml.neighbours import neighbour_estimate
from dmr.ml.outcomes import OutcomeModel

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("{}", "{} Thanks!", "Ticket #{n}: {}", "Quick one: {}", "{} (asked again, {n})", "Re: {}")


def templates(count: int) -> list[str]:
    """``count`` distinct task prompts from the team's datasets, in a fixed order."""
    seen: dict[str, None] = {}
    for path in sorted((ROOT / "datasets").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            task = json.loads(line).get("task") if line.strip() else None
            if isinstance(task, str) and 20 <= len(task) <= 400:
                seen.setdefault(task)
    tasks = sorted(seen, key=lambda t: zlib.crc32(t.encode()))
    return tasks[:count]


def traffic(tasks: list[str], variants: int, seed: int = 0) -> tuple[list[str], list[dict[str, float]], np.ndarray]:
    """Logged prompts, their outcomes (the low tier loses on 40 % of templates, 10 % noise) and, per
    prompt, its template and variant."""
    rng = np.random.default_rng(seed)
    hard = rng.random(len(tasks)) < 0.4
    prompts, outcomes, which = [], [], []
    for i, task in enumerate(tasks):
        for v in range(variants):
            prompts.append(VARIANTS[v % len(VARIANTS)].format(task, n=100 + 7 * i + v))
            loses = hard[i] != (rng.random() < 0.1)
            outcomes.append({"low": 0.0 if loses else 1.0, "high": 1.0})
            which.append((i, v))
    return prompts, outcomes, np.array(which)


def latency(router: Router, tasks: list[str], rounds: int) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        for task in tasks:
            start = time.perf_counter_ns()
            router.classify(task)
            times.append((time.perf_counter_ns() - start) / 1e6)
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))]


def part_one(args: argparse.Namespace) -> None:
    prompts, outcomes, which = traffic(templates(args.templates), args.variants)
    unseen = which[:, 0] % 5 == 0
    variant = ~unseen & (which[:, 1] == which[:, 0] % args.variants)
    train_idx = np.flatnonzero(~unseen & ~variant)
    lost = np.array([o["low"] == 0 for o in outcomes])
    models = ("low", "high")
    print(f"{len(prompts)} logged prompts ({args.templates} templates x {args.variants}): {len(train_idx)} to fit, "
          f"{variant.sum()} new variants of their templates and {unseen.sum()} of unseen templates held out")
    print(f"{'outcome model':<20}{'fit s':>7}{'blend kept':>14}{'AUC variants':>14}{'AUC unseen':>12}"
          f"{'p50 ms':>8}{'p99 ms':>8}")
    probe = [prompts[i] for i in np.flatnonzero(variant)[:50]]
    # A first fit loads the Layer 3 head and the encoder: not part of either timing.
    OutcomeModel(neighbours=None).fit([prompts[i] for i in train_idx[:40]], [outcomes[i] for i in train_idx[:40]],
                                      models=models)
    with tempfile.TemporaryDirectory() as tmp:
        for name, neighbours in (("no blend", None), ('neighbours="auto"', "auto")):
            start = time.perf_counter()
            model = OutcomeModel(neighbours=neighbours).fit([prompts[i] for i in train_idx],
                                                            [outcomes[i] for i in train_idx], models=models)
            fit_s = time.perf_counter() - start
            scores = model.difficulty(prompts)
            kept = f"k={model.neighbour_k_}, {model.blend_:.2f}" if model.blend_ else "none"
            path = model.save(Path(tmp) / f"{len(name)}.npz")
            with Router(quality_target=0.95, outcome_model=str(path)) as router:
                router.classify(probe[0])
                p50, p99 = latency(router, probe, args.rounds)
            print(f"{name:<20}{fit_s:>7.1f}{kept:>14}{auc(scores[variant], lost[variant]):>14.3f}"
                  f"{auc(scores[unseen], lost[unseen]):>12.3f}{p50:>8.2f}{p99:>8.2f}")


def part_two(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(1)
    print(f"\n{'stored rows':>12}{'search p50 ms':>15}{'memory MB':>11}{'file MB':>9}")
    for n in args.rows:
        E = rng.standard_normal((n, 128), dtype=np.float32)
        E /= np.linalg.norm(E, axis=1, keepdims=True)
        Y = (rng.random((n, 2)) < 0.7).astype(np.float64)
        M = np.ones_like(Y)
        base = np.array([0.7, 1.0])
        query = E[:1] + 0.01
        times = []
        for _ in range(max(3, min(50, 2_000_000 // n))):
            start = time.perf_counter_ns()
            neighbour_estimate(query, E, Y, M, 20, base)
            times.append((time.perf_counter_ns() - start) / 1e6)
        memory = (E.nbytes + Y.nbytes + M.nbytes + n * 2 * 4) / 1e6
        print(f"{n:>12,}{statistics.median(times):>15.2f}{memory:>11.0f}{n * (128 * 2 + 2 * 4) / 1e6:>9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=int, default=200)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--rows", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 10_000, 20_000, 100_000, 1_000_000])
    args = parser.parse_args()
    part_one(args)
    part_two(args)


if __name__ == "__main__":
    main()
