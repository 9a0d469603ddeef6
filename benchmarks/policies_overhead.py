"""What policies, metrics and spans add to a decision: p50/p95 of ``Router.classify`` (Layer 1
only) for each configuration, and the p50 difference against a plain ``Router()``.

    python benchmarks/policies_overhead.py [--n 5000] [--rounds 5]

Configurations run in interleaved rounds (each round measures every one once, in a new order) so
that drift in a shared machine's speed spreads over all of them; the reported numbers are the
medians over rounds. Spans use the OpenTelemetry SDK with a processor that drops every span, so
the cost measured is dmr's plus the SDK's, not an exporter's.

A second table times ``PIIDetector().scrub`` (what ``pii_scrub`` runs on each logged task and
outcome note) on 1 MB texts: ordinary prose, and runs that made the email pattern quadratic before
it was anchored (100 KB of "x" then took 13 s, 1 MB over 20 minutes). Every row should take about
as long as the prose one.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from typing import Any, Callable

from dmr import Router
from dmr.pii import PIIDetector

TASKS = [
    "What is 2+2?",
    "Write a Python function that merges two sorted lists.",
    "Summarize the meeting notes below in three bullet points.",
    "Design a fault-tolerant job scheduler and discuss the trade-offs.",
    "Translate the following paragraph into German, keeping the tone formal.",
    "Explain why the query plan switched to a sequential scan.",
]


def dropping_tracer_provider() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Drop()))
    return provider


def configurations() -> dict[str, tuple[Router, dict[str, Any]]]:
    tenant = {"providers": ["anthropic", "openai"], "max_tier": "medium", "tenant_id": "acme"}
    configs: dict[str, tuple[Router, dict[str, Any]]] = {
        "plain Router()": (Router(), {}),
        "residency='EU'": (Router(residency="EU"), {}),
        "latency_budget_ms=500": (Router(latency_budget_ms=500), {}),
        "tenant_config": (Router(), {"tenant_config": tenant}),
        "metrics=True": (Router(metrics=True), {}),
    }
    try:
        provider = dropping_tracer_provider()
    except ImportError:
        print("(OpenTelemetry SDK not installed: span rows left out)")
    else:
        configs["tracer_provider (SDK)"] = (Router(tracer_provider=provider), {})
        configs["all of the above"] = (Router(residency="EU", latency_budget_ms=500, metrics=True,
                                              tracer_provider=provider), {"tenant_config": tenant})
    return configs


def run(classify: Callable[..., Any], kwargs: dict[str, Any], tasks: list[str]) -> list[float]:
    for task in tasks[:200]:
        classify(task, **kwargs)
    samples = []
    gc.disable()
    try:
        for task in tasks:
            start = time.perf_counter_ns()
            classify(task, **kwargs)
            samples.append((time.perf_counter_ns() - start) / 1e3)
    finally:
        gc.enable()
    return sorted(samples)


def pii_texts(size: int = 1_000_000) -> dict[str, str]:
    rng = random.Random(11)
    return {
        "prose": ("Please forward the invoice to the billing team before Friday. " * (size // 60))[:size],
        "x * 1 MB": "x" * size,
        "hex": "".join(rng.choice("0123456789abcdef") for _ in range(size)),
        "digits": "7" * size,
        "'a.' * n + '@'": "a." * (size // 2) + "@",
        "'a@' + 'b' * n": "a@" + "b" * size,
        "cards in one run": "4111-1111-1111-1111-" * (size // 20),
    }


def pii_scrub_ms(rounds: int) -> dict[str, float]:
    detector = PIIDetector()
    texts = pii_texts()
    times: dict[str, list[float]] = {name: [] for name in texts}
    for _ in range(rounds):
        for name, text in texts.items():
            start = time.perf_counter()
            detector.scrub(text)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(samples) for name, samples in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="decisions per configuration per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)
    tasks = [rng.choice(TASKS) for _ in range(args.n)]
    configs = configurations()
    p50s: dict[str, list[float]] = {name: [] for name in configs}
    p95s: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        order = list(configs)
        rng.shuffle(order)
        for name in order:
            router, kwargs = configs[name]
            samples = run(router.classify, kwargs, tasks)
            p50s[name].append(samples[len(samples) // 2])
            p95s[name].append(samples[int(len(samples) * 0.95)])
    base = statistics.median(p50s["plain Router()"])
    print(f"{'configuration':<26}{'p50 µs':>9}{'p95 µs':>9}{'p50 overhead µs':>17}")
    for name in configs:
        p50, p95 = statistics.median(p50s[name]), statistics.median(p95s[name])
        print(f"{name:<26}{p50:>9.1f}{p95:>9.1f}{p50 - base:>+17.1f}")
    print()
    print(f"{'PII scrub of 1 MB':<26}{'ms':>9}")
    for name, ms in pii_scrub_ms(args.rounds).items():
        print(f"{name:<26}{ms:>9.1f}")


if __name__ == "__main__":
    main()
