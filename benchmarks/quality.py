"""Routing quality on public outcome data: APGR, CPT(50%), CPT(80%) and CS@95 per benchmark.

    python benchmarks/quality.py [--subset mmlu] [--splits 5] [--json] [--data FILE] [--prices FILE]

Reads ``../shared/eval/routellm_gpt4_mixtral.jsonl`` (GPT-4-1106 against Mixtral-8x7B on MT-Bench,
MMLU, GSM8K; contaminated prompts left out), ``../shared/eval/alpaca_eval_v1.jsonl`` (AlpacaEval's
805 everyday instructions, GPT-4-1106 against Llama-2-7B-chat, each answer judged a win, draw or
loss against text-davinci-003: a workload where length says nothing) and
``../shared/eval/prices.json``, and prints one table with these routers:

- random, length (longer = harder) and the per-prompt oracle (hindsight), for reference;
- the per-category oracle (in-domain, 5-fold), also for reference: each prompt scored by the mean
  score gap of its benchmark category (MMLU's 57 subjects, MT-Bench's 8 categories, AlpacaEval's 5
  sources) in the other folds. It reads the label the benchmark files attach, which no router sees:
  it measures how far knowing the topic of every prompt goes, so a router that only learns topics
  cannot beat it by much (GSM8K has one category, so it is left out there). Below the table, how
  well each router ranks the prompts *inside* a category (mean Spearman against the per-prompt gap);
- dmr default (zero-shot), two ways, trained on none of this data: ``Router()``, where the tier
  matrix picks the tier and ``Decision.difficulty`` orders tasks inside it; and
  ``Router(quality_target=0.95)``, where the difficulty itself picks the tier (any target gives the
  same order, so the same curve);
- dmr outcome-trained (in-domain, 5-fold): :class:`dmr.ml.outcomes.OutcomeModel` trained on four
  folds of the subset and scored on the fifth, folds fixed by a hash of ``id`` — what a user gets
  after training on their own outcome logs, never a zero-shot figure;
- TF-IDF ridge (in-domain, 5-fold): ridge regression of the score gap on tf-idf n-grams, the same
  folds — a plain learned baseline.

``--splits N`` runs the in-domain routers again on N - 1 other ways of dealing the prompts into
five folds (``cross_validated(..., split=k)``) and prints, under the table, the mean and the range
of each metric over the N: on a few dozen prompts, or where the quality curve is flat near 95 %
(GSM8K), CS@95 moves by several points with which prompts land in which fold, and a difference
smaller than that range says nothing.

The oracle sweeps the per-prompt score gap, interpolating inside tied groups as the metric
definition says; the shared README's oracle column instead stops at the cut that sends exactly the
prompts where the strong model wins, which is why its MMLU and GSM8K figures are lower.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

# One BLAS thread: the fits make many small vector operations, and BLAS threads spinning on a busy
# 2-core machine made them ten times slower.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

from dmr.evaluate.harness import METRICS, cross_validated, subset_report  # noqa: E402
from dmr.evaluate.outcomes import load_outcomes, load_prices, resolve_prices  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"
STRONG = "gpt-4-1106-preview"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
ALPACA = "alpaca_eval"
SUBSETS = ("mt_bench", "mmlu", "gsm8k", ALPACA)
# The pair scored on each subset: (strong, weak). On AlpacaEval, GPT-4-1106 against the cheapest
# widely deployed chat model it scores, chosen before any router was run on it.
PAIRS = {ALPACA: ("gpt4_1106_preview", "llama-2-7b-chat-hf")}
LABELS = {"random": "random", "length": "length", "oracle": "per-prompt oracle",
          "category": "per-category oracle (in-domain, 5-fold)", "zero_shot": "dmr default, tier matrix (zero-shot)",
          "zero_shot_target": "dmr default, quality_target (zero-shot)", "outcome": "dmr outcome-trained (in-domain, 5-fold)",
          "ridge": "TF-IDF ridge (in-domain, 5-fold)"}


def zero_shot(prompts: list[str], target: float | None = None) -> list[float]:
    from dmr.router import Router

    router = Router(quality_target=target)
    return [d.difficulty for d in router.classify_batch(prompts)]


def outcome_model(train, test, pair=(STRONG, WEAK)) -> np.ndarray:
    from dmr.ml.outcomes import OutcomeModel

    model = OutcomeModel().fit([r.prompt for r in train], [r.outcomes for r in train], models=pair[::-1])
    return model.difficulty([r.prompt for r in test])


def tfidf_ridge(train, test, pair=(STRONG, WEAK), alpha: float = 1.0) -> np.ndarray:
    from scipy import sparse
    from scipy.sparse.linalg import lsqr

    from dmr.ml.features import NgramFeaturizer

    featurizer = NgramFeaturizer(bits=18).fit([r.prompt for r in train])

    def matrix(rows):
        X = featurizer.transform([r.prompt for r in rows])
        return sparse.csr_matrix((X.values, X.indices, X.indptr), shape=(X.n_rows, X.n_cols))

    y = np.array([r.outcomes[pair[0]] - r.outcomes[pair[1]] for r in train])
    w = lsqr(matrix(train), y - y.mean(), damp=np.sqrt(alpha))[0]
    return matrix(test) @ w


def category_means(train, test, pair=(STRONG, WEAK)) -> list[float]:
    """The mean strong-minus-weak score gap of each test prompt's category over ``train`` (the
    mean over all of ``train`` for a category it lacks)."""
    sums: dict[str, list[float]] = {}
    for r in train:
        total = sums.setdefault(r.category, [0.0, 0.0])
        total[0] += r.outcomes[pair[0]] - r.outcomes[pair[1]]
        total[1] += 1
    overall = sum(t[0] for t in sums.values()) / max(sum(t[1] for t in sums.values()), 1.0)
    return [sums[r.category][0] / sums[r.category][1] if r.category in sums else overall for r in test]


def within_categories(rows, scores: dict, pair=(STRONG, WEAK), min_rows: int = 30) -> dict:
    """For each router, the mean Spearman correlation of its scores with the per-prompt score gap
    inside each category of at least ``min_rows`` prompts: how well it ranks prompts of one topic."""
    from scipy.stats import spearmanr

    gap = np.array([r.outcomes[pair[0]] - r.outcomes[pair[1]] for r in rows])
    cats = np.array([r.category for r in rows])
    groups = [np.flatnonzero(cats == c) for c in sorted(set(cats))]
    groups = [g for g in groups if len(g) >= min_rows and gap[g].std() > 0]
    out = {}
    for key, values in scores.items():
        values = np.asarray(values, dtype=np.float64)
        found = [spearmanr(values[g], gap[g])[0] for g in groups if values[g].std() > 0]
        out[key] = round(float(np.mean(found)), 3) if found else None
    return {"categories": len(groups), "spearman": out}


TRAINED = ("category", "outcome", "ridge")


def run(subsets, data: Path, alpaca: Path, prices_path: Path, progress, splits: int = 1) -> dict:
    data_set = load_outcomes(data)
    all_prices = load_prices(prices_path)
    prices = resolve_prices((STRONG, WEAK), all_prices)
    report = {"data": str(data), "contaminated_excluded": data_set.contaminated, "prices": prices, "subsets": []}
    for name in subsets:
        pair = PAIRS.get(name, (STRONG, WEAK))
        if name == ALPACA:
            rows = list(load_outcomes(alpaca).scored_by(pair).rows)
            prices.update(resolve_prices(pair, all_prices))
        else:
            rows = list(data_set.subset(name).scored_by(pair).rows)
        timings = {}
        scores = {}
        single = len({r.category for r in rows}) < 2
        trained = {"category": partial(category_means, pair=pair), "outcome": partial(outcome_model, pair=pair),
                   "ridge": partial(tfidf_ridge, pair=pair)}
        for key, compute in (("zero_shot", lambda rows: zero_shot([r.prompt for r in rows])),
                             ("zero_shot_target", lambda rows: zero_shot([r.prompt for r in rows], 0.95)),
                             *((key, partial(cross_validated, fit_predict=trained[key])) for key in TRAINED)):
            if key == "category" and single:
                continue
            start = time.perf_counter()
            scores[key] = list(compute(rows))
            timings[key] = round(time.perf_counter() - start, 1)
            progress(f"{name}: {LABELS[key]} done in {timings[key]} s")
        sub = subset_report(rows, scores, strong=pair[0], weak=pair[1], prices=prices, name=name)
        if splits > 1:
            sub["splits"] = other_splits(rows, sub["routers"], trained, splits, pair, prices, name, progress)
        sub["strong"], sub["weak"] = pair
        if not single:
            sub["within_categories"] = within_categories(
                rows, {"length": [len(r.prompt) for r in rows], **scores}, pair)
        sub["seconds"] = timings
        sub.pop("curves")
        report["subsets"].append(sub)
    report["predict_ms"] = predict_latency(rows, pair)
    return report


def other_splits(rows, first: dict, trained: dict, splits: int, pair, prices, name: str, progress) -> dict:
    """Each trained router's metrics over ``splits`` ways of dealing the rows into folds, the first
    being the table's (``first``: its metrics per router): ``{router: {metric: [value per split]}}``."""
    out = {key: {m: [v] for m, v in first[key].items()} for key in trained if key in first}
    for split in range(1, splits):
        scores = {key: cross_validated(rows, trained[key], split=split) for key in out}
        report = subset_report(rows, scores, strong=pair[0], weak=pair[1], prices=prices, name=name)["routers"]
        for key in out:
            for m, v in report[key].items():
                out[key][m].append(v)
        progress(f"{name}: split {split + 1} of {splits} done")
    return out


def predict_latency(rows, pair) -> dict:
    """What ``quality_target`` with an outcome model adds per decision: p50 / p99 of
    ``OutcomeModel.predict`` on one prompt (a model fitted on ``rows``, the last subset)."""
    from dmr.ml.outcomes import OutcomeModel

    model = OutcomeModel().fit([r.prompt for r in rows], [r.outcomes for r in rows], models=pair[::-1])
    prompts = [r.prompt for r in rows[:200]]
    model.predict(prompts[:1])
    times = []
    for prompt in prompts * max(1, 200 // len(prompts)):
        start = time.perf_counter()
        model.predict([prompt])
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return {"p50": round(times[len(times) // 2], 3), "p99": round(times[int(len(times) * 0.99)], 3)}


def _spread(values: list, pct: bool) -> str:
    shown = [v for v in values if v is not None]
    if not shown:
        return "-"
    fmt = (lambda v: f"{v:.1%}") if pct else (lambda v: f"{v:.3f}")
    return f"{fmt(sum(shown) / len(shown))} ({fmt(min(shown))}-{fmt(max(shown))})"


def table(report: dict) -> str:
    subs = report["subsets"]
    width = max(map(len, LABELS.values()))
    head1 = " " * width + "".join(f" | {s['benchmark']} (n={s['n']})".ljust(31) for s in subs)
    head2 = " " * width + "".join(" | " + " ".join(f"{m.upper():>6}" for m in ("apgr", "cpt50", "cpt80", "cs95"))
                                  for _ in subs)
    lines = [head1, head2, "-" * len(head2)]

    def cell(v, pct):
        return "     -" if v is None else (f"{v:>6.1%}" if pct else f"{v:>6.3f}")

    for key in ("random", "length", "oracle", "category", "zero_shot", "zero_shot_target", "outcome", "ridge"):
        line = f"{LABELS[key]:<{width}}"
        for s in subs:
            m = s["routers"].get(key, {})
            line += " | " + " ".join(cell(m.get(k), k != "apgr") for k in METRICS)
        lines.append(line)
    lines.append("")
    lines.append("weak / strong quality: " + ", ".join(
        f"{s['benchmark']} {s['weak_quality']:.3f} / {s['strong_quality']:.3f} ({s['weak']} / {s['strong']})"
        for s in subs))
    for s in subs:
        within = s.get("within_categories")
        if within and within["categories"]:
            lines.append(f"{s['benchmark']}: inside each of its {within['categories']} categories, mean Spearman "
                         "against the per-prompt gap: " + ", ".join(
                             f"{LABELS.get(k, k)} {v:+.3f}" for k, v in within["spearman"].items()
                             if v is not None and k != "category"))
    for s in subs:
        for key, metrics in s.get("splits", {}).items():
            lines.append(f"{s['benchmark']}, {LABELS[key]}, over {len(metrics['cs95'])} fold splits, mean (min-max): "
                         + ", ".join(f"{m.upper()} {_spread(metrics[m], m != 'apgr')}" for m in METRICS))
    lines.append(f"contaminated prompts left out: {report['contaminated_excluded']}; cost per call (USD/1M, "
                 f"(in+out)/2): " + ", ".join(f"{m} {p:g}" for m, p in report["prices"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subset", action="append", choices=SUBSETS, help="repeatable; default: all three")
    parser.add_argument("--splits", type=int, default=1,
                        help="also run the in-domain routers on this many ways of dealing the folds (default 1)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--data", type=Path, default=EVAL / "routellm_gpt4_mixtral.jsonl")
    parser.add_argument("--alpaca", type=Path, default=EVAL / "alpaca_eval_v1.jsonl")
    parser.add_argument("--prices", type=Path, default=EVAL / "prices.json")
    args = parser.parse_args(argv)
    report = run(args.subset or SUBSETS, args.data, args.alpaca, args.prices,
                 lambda msg: print(msg, file=sys.stderr, flush=True), splits=max(1, args.splits))
    print(json.dumps(report, indent=2) if args.json else table(report))
    if not args.json:
        ms = report["predict_ms"]
        print(f"OutcomeModel.predict, one prompt: p50 {ms['p50']} ms, p99 {ms['p99']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
