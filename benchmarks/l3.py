#!/usr/bin/env python3
"""Layer 3 speed and accuracy, in one table.

Speed: ``Router.classify`` with Layer 1 + Layer 3 (p50/p99 over the team's tasks up to 2,000
characters, every task forced through Layer 3 too), ``classify_batch`` throughput, resident memory,
and the cold start of ``dmr classify "…"`` in a new process.
Accuracy: the held-out split of datasets/ (sha256 % 5 == 0, never trained on) through the default
Router, Layer 3 alone, per language; the cascade on datasets/held_back (never trained on), with the
share of tasks routed above and below their labelled tier; and MT-Bench category agreement
(../shared/eval, evaluation only) through the documented mapping.

Usage: python benchmarks/l3.py [--quick] [--onnx DIR]   (DIR from scripts/build_encoder.py onnx)
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MT_BENCH = ROOT.parent / "shared" / "eval" / "mt_bench_questions.jsonl"
# MT-Bench category -> dmr task type (README "Layer 3"). stem/humanities questions ask for
# explanations with a mechanism or a justified position, which GUIDE.md calls reasoning.
MT_BENCH_MAP = {"writing": "doc_creation", "roleplay": "conversation", "reasoning": "reasoning", "math": "math",
                "coding": "code_creation", "extraction": "analyzing", "stem": "reasoning", "humanities": "reasoning"}


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    quick = "--quick" in sys.argv
    import dmr
    from dmr.layers.base import Context
    from dmr.ml.evaluate import evaluate_head, evaluate_router
    from dmr.ml.train import is_heldout, load_examples

    examples = load_examples(ROOT / "datasets")
    tasks = [e.task for e in examples if len(e.task) <= 2000]
    if quick:
        tasks = tasks[:1000]
    rows: list[tuple[str, str, str]] = []

    def p50_p99(classify) -> str:
        lat = []
        for t in tasks:
            t0 = time.perf_counter()
            classify(t)
            lat.append((time.perf_counter() - t0) * 1e3)
        return f"{_pct(lat, .5):.3f} / {_pct(lat, .99):.3f}"

    router = dmr.Router()
    for t in tasks[:200]:
        router.classify(t)
    rows.append(("Router.classify L1+L3, p50 / p99 (ms)", p50_p99(router.classify), "≤ 1 / ≤ 3"))
    forced = dmr.Router(escalation_threshold=1.0, layer3_threshold=0.0)
    rows.append(("same, every task through L3, p50 / p99 (ms)", p50_p99(forced.classify), "≤ 1 / ≤ 3"))
    # With a quality target, Layer 3's difficulty output is read even when Layer 1 decided.
    targeted = dmr.Router(quality_target=0.9)
    rows.append(("Router(quality_target=0.9).classify, p50 / p99 (ms)", p50_p99(targeted.classify), "≤ 1 / ≤ 3"))

    layer = router._layers[router.layers.index("layer3")]
    lat = []
    for t in tasks:
        ctx = Context(text=t, length=len(t))
        router._l1.classify(t, ctx)
        t0 = time.perf_counter()
        layer.classify(t, ctx)
        lat.append((time.perf_counter() - t0) * 1e3)
    rows.append(("Layer 3 alone, p50 / p99 (ms)", f"{_pct(lat, .5):.3f} / {_pct(lat, .99):.3f}", ""))

    batch = tasks * max(1, 5000 // len(tasks))
    # The static encoder memoises each word's tokens: measure a batch of words it has not seen
    # (a cold start on new text) and the steady state.
    encoder = getattr(layer._load(), "encoder", None)
    if encoder is not None and hasattr(encoder, "_words"):
        encoder._words.clear()
    for label in ("first pass, new words", "steady state"):
        t0 = time.perf_counter()
        router.classify_batch(batch)
        rate = len(batch) / (time.perf_counter() - t0)
        rows.append((f"classify_batch, {label} (tasks/s)", f"{rate:,.0f}", "≥ 5,000"))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("resident memory, peak (MB)", f"{rss:.0f}", "≤ 200"))

    # The sentence encoders alone, on one short and one long task (p50 of repeated calls).
    from dmr.ml.encoder import default_encoder, load_encoder

    encoders = [("static (shipped)", default_encoder())]
    if "--onnx" in sys.argv:
        encoders.append(("ONNX " + sys.argv[sys.argv.index("--onnx") + 1],
                         load_encoder(sys.argv[sys.argv.index("--onnx") + 1])))
    short = "Prove that the sum of two odd numbers is even."
    long_ = max(tasks, key=len)
    for name, enc in encoders:
        cells = []
        for text in (short, long_):
            times = []
            for _ in range(50):
                t0 = time.perf_counter()
                enc.encode([text])
                times.append((time.perf_counter() - t0) * 1e3)
            cells.append(f"{_pct(times, .5):.2f}")
        rows.append((f"encoder {name}: short / {len(long_):,}-char task (ms)", " / ".join(cells), ""))

    # The dmr installed beside this Python (a virtualenv's bin/ need not be on PATH).
    beside = Path(sys.executable).with_name("dmr")
    dmr_cli = str(beside) if beside.exists() else shutil.which("dmr") or "dmr"
    cold = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([dmr_cli, "classify", "Refactor this class to use dependency injection"],
                       check=True, capture_output=True, env={**os.environ, "DMR_CONFIG": ""})
        cold.append(time.perf_counter() - t0)
    rows.append(('`dmr classify "…"` cold start (s, best of 3)', f"{min(cold):.2f}", "≤ 1"))

    heldout = [e for e in examples if is_heldout(e.task)]
    report = evaluate_router(dmr.Router(), heldout)
    rows.append(("held-out n", str(report["n"]), ""))
    rows.append(("cascade: type macro-F1", f"{report['type_macro_f1']:.3f}", "≥ 0.90"))
    rows.append(("cascade: complexity macro-F1", f"{report['complexity_macro_f1']:.3f}", ""))
    rows.append(("cascade: tier accuracy", f"{report['tier_accuracy']:.3f}", "≥ 0.85"))
    rows.append(("cascade: routed above / below the labelled tier",
                 f"{report['tier_above']:.1%} / {report['tier_below']:.1%}", ""))
    rows.append(("cascade: ECE of decision confidence vs tier", f"{report['ece']:.3f}", ""))
    for name, info in sorted(report["decided_by"].items()):
        rows.append((f"cascade: decided by {name} (share, tier acc.)",
                     f"{info['share']:.1%}, {info['tier_accuracy']:.3f}", ""))
    rows.append(("share of L1-unsure tasks L3 decides", f"{report['layer3_share_of_layer1_unsure']:.1%}", ""))
    alone = evaluate_head(layer._load(), heldout)
    rows.append(("Layer 3 alone: type macro-F1 / tier accuracy", f"{alone['type_macro_f1']:.3f} / "
                 f"{alone['tier_accuracy']:.3f}", ""))
    rows.append(("Layer 3 alone: complexity macro-F1", f"{alone['complexity_macro_f1']:.3f}", ""))
    rows.append(("Layer 3 alone: ECE (tier conf.) / ECE (type conf.)",
                 f"{alone['ece']:.3f} / {alone['ece_type']:.3f}", ""))
    for lang, info in alone["per_language"].items():
        rows.append((f"  {lang} (n={info['n']}): type / complexity / tier acc.",
                     f"{info['type_accuracy']:.2f} / {info['complexity_accuracy']:.2f} / "
                     f"{info['tier_accuracy']:.2f}", ""))
    # datasets/held_back: written by the team like the rest, never trained on (its README says why).
    for kind in ("expert_asks", "lookalikes", "situated_asks", "pasted_numbers"):
        files = sorted((ROOT / "datasets" / "held_back").glob(f"{kind}_*.jsonl"))
        if not files:
            continue
        back = evaluate_router(router, [e for e in load_examples(files) if e.complexity])
        rows.append((f"held back, {kind} (n={back['n']}): tier acc. / above / below",
                     f"{back['tier_accuracy']:.3f} / {back['tier_above']:.1%} / {back['tier_below']:.1%}", ""))
    if MT_BENCH.is_file():
        questions = [json.loads(line) for line in MT_BENCH.read_text(encoding="utf-8").splitlines() if line.strip()]
        agree = 0
        for q in questions:
            d = router.classify(q["prompt"])
            agree += str(d.task_type) == MT_BENCH_MAP.get(q.get("category", ""), "")
        rows.append(("MT-Bench category agreement (mapping above)",
                     f"{agree}/{len(questions)} = {agree / len(questions):.1%}", ""))

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':<22} target")
    print("-" * (width + 36))
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<22} {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
