"""Metrics and traces: off by default and silent; Prometheus per Router; OpenTelemetry spans per
decision, checked in memory and through a real OTLP receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading

import httpx
import pytest

from dmr.errors import ConfigError, InputError
from dmr.layers import register_layer, unregister_layer
from dmr.observability import OFF, Metrics
from dmr.router import Router

prometheus_client = pytest.importorskip("prometheus_client")

EASY = "What is 2+2?"
HARD = "Design a CQRS architecture for an order system that is distributed across regions, with event sourcing"


def sample(router: Router, name: str, labels: dict[str, str] | None = None) -> float | None:
    return router.metrics.registry.get_sample_value(name, labels or {})


# -- off by default ------------------------------------------------------------------------------

def test_a_default_router_has_no_telemetry():
    router = Router()
    assert router.metrics is None and router.telemetry is OFF
    router.telemetry.cache_lookup(True)  # parts may report unconditionally: it is dropped
    router.telemetry.breaker_state("openai", "open")


def test_a_default_router_opens_no_socket_starts_no_thread_and_loads_no_exporter():
    code = """
import json, socket, sys, threading
opened = []
real = socket.socket.__init__
def spy(self, *a, **k):
    opened.append(repr(a))
    real(self, *a, **k)
socket.socket.__init__ = spy
import dmr
before = threading.active_count()
router = dmr.Router()
for task in ["What is 2+2?", "Design a distributed cache", "Traduis ceci en anglais"]:
    router.classify(task)
dmr.classify("Hello")
print(json.dumps({"sockets": opened, "threads": threading.active_count() - before,
                  "modules": [m for m in ("prometheus_client", "opentelemetry", "opentelemetry.sdk")
                              if m in sys.modules]}))
"""
    result = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert result == {"sockets": [], "threads": 0, "modules": []}


def test_metrics_on_still_opens_no_port_by_itself(monkeypatch):
    opened = []
    real = socket.socket.__init__

    def spy(self, *args, **kwargs):
        opened.append(args)
        real(self, *args, **kwargs)

    before = threading.active_count()
    monkeypatch.setattr(socket.socket, "__init__", spy)
    router = Router(metrics=True)
    router.classify(EASY)
    router.metrics.render()
    assert opened == [] and threading.active_count() == before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- Prometheus ------------------------------------------------------------------------------------

def test_decisions_are_counted_by_tier_layer_and_task_type():
    router = Router(metrics=True)
    for task in (EASY, EASY, HARD):
        router.classify(task)
    assert sample(router, "dmr_decisions_total", {"tier": "low", "layer": "layer1", "task_type": "math"}) == 2
    hard = router.classify(HARD)
    assert sample(router, "dmr_decisions_total", {"tier": "high", "layer": hard.layer,
                                                   "task_type": str(hard.task_type)}) == 2
    assert sample(router, "dmr_decision_latency_seconds_count") == 4
    assert sample(router, "dmr_layer_latency_seconds_count", {"layer": "layer1"}) == 4
    assert sample(router, "dmr_layer_steps_total", {"layer": "layer1", "outcome": "decided"}) == 2


def test_policies_and_errors_are_counted():
    router = Router(metrics=True, residency="EU", pii_policy={"min_tier": "high"})
    router.classify("Mail jane@example.com the totals")
    with pytest.raises(InputError):
        router.classify("   ")
    assert sample(router, "dmr_policies_applied_total", {"policy": "residency"}) == 1
    assert sample(router, "dmr_policies_applied_total", {"policy": "pii_floor"}) == 1
    assert sample(router, "dmr_decision_errors_total", {"error": "InputError"}) == 1


def test_skipped_layers_are_counted_but_not_timed():
    class Slow:
        name, expected_ms = "slow", 900.0

        def classify(self, task, ctx):
            raise AssertionError("a skipped layer must not run")

    register_layer(Slow(), "first")
    try:
        router = Router(metrics=True, latency_budget_ms=50)
        router.classify(EASY)
    finally:
        unregister_layer("slow")
    assert sample(router, "dmr_layer_steps_total", {"layer": "slow", "outcome": "skipped"}) == 1
    assert sample(router, "dmr_layer_latency_seconds_count", {"layer": "slow"}) is None


def test_parts_of_the_router_report_through_its_telemetry():
    router = Router(metrics=True)
    t = router.telemetry
    t.layer2_error("openai", "timeout")
    t.layer2_error("openai", "timeout")
    t.breaker_state("openai", "open")
    t.budget_used(12.5, 100)
    for hit in (True, False, True, True):
        t.cache_lookup(hit)
    assert sample(router, "dmr_layer2_errors_total", {"provider": "openai", "kind": "timeout"}) == 2
    assert sample(router, "dmr_breaker_state", {"provider": "openai", "dmr_breaker_state": "open"}) == 1
    assert sample(router, "dmr_breaker_state", {"provider": "openai", "dmr_breaker_state": "closed"}) == 0
    assert (sample(router, "dmr_budget_used_usd"), sample(router, "dmr_budget_limit_usd")) == (12.5, 100)
    assert sample(router, "dmr_cache_lookups_total", {"result": "hit"}) == 3
    assert sample(router, "dmr_cache_hit_ratio") == 0.75
    with pytest.raises(ValueError, match="breaker state"):
        t.breaker_state("openai", "melted")


def test_breakers_and_the_budget_are_read_when_scraped(tmp_path):
    from dmr.resilience import CircuitBreaker

    class Guarded:
        name, provider = "guarded", "acme-llm"

        def __init__(self):
            self.breaker = CircuitBreaker(failure_threshold=1, cooldown_secs=3600)

        def classify(self, task, ctx):
            return None

    layer = Guarded()
    register_layer(layer, "last")
    try:
        router = Router(metrics=True, budget_usd=10, budget_store=str(tmp_path / "spend.sqlite3"))
    finally:
        unregister_layer("guarded")
    state = {"provider": "acme-llm", "dmr_breaker_state": "closed"}
    assert sample(router, "dmr_breaker_state", state) == 1
    layer.breaker.record_failure()
    assert sample(router, "dmr_breaker_state", state) == 0
    assert sample(router, "dmr_breaker_state", {**state, "dmr_breaker_state": "open"}) == 1
    assert sample(router, "dmr_budget_limit_usd") == 10
    router.budget.record_usd(2.5)
    assert sample(router, "dmr_budget_used_usd") == 2.5


def test_each_router_has_its_own_registry_and_none_is_global():
    a, b = Router(metrics=True), Router(metrics=True)
    a.classify(EASY)
    assert a.metrics.registry is not b.metrics.registry
    assert sample(b, "dmr_decisions_total", {"tier": "low", "layer": "layer1", "task_type": "math"}) is None
    assert b"dmr_decisions" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)


def test_a_given_registry_is_used_and_can_be_shared_through_the_metrics_object():
    registry = prometheus_client.CollectorRegistry()
    first = Router(metrics=registry)
    assert first.metrics.registry is registry
    with pytest.raises(ConfigError, match="already holds dmr metrics"):
        Router(metrics=registry)
    second = Router(metrics=first.metrics, provider="openai")
    first.classify(EASY)
    second.classify(EASY)
    assert registry.get_sample_value("dmr_decisions_total",
                                     {"tier": "low", "layer": "layer1", "task_type": "math"}) == 2
    with pytest.raises(ConfigError, match="CollectorRegistry"):
        Metrics(registry="not a registry")


def test_metrics_are_rendered_and_scraped_over_http():
    router = Router(metrics=True)
    router.classify(EASY)
    assert b'dmr_decisions_total{layer="layer1",task_type="math",tier="low"} 1.0' in router.metrics.render()
    server = router.metrics.serve(0)
    try:
        assert server.server_address[0] == "127.0.0.1"
        body = httpx.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).text
    finally:
        server.shutdown()
        server.server_close()
    assert 'dmr_decisions_total{layer="layer1",task_type="math",tier="low"} 1.0' in body
    assert "dmr_layer_latency_seconds_bucket" in body


def test_metrics_from_yaml(tmp_path):
    path = tmp_path / "dmr.yaml"
    path.write_text("metrics: true\n", encoding="utf-8")
    assert Router.from_yaml(path).metrics is not None


# -- OpenTelemetry -------------------------------------------------------------------------------

otel_sdk = pytest.importorskip("opentelemetry.sdk.trace")


@pytest.fixture
def spans():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_one_span_per_decision_with_a_child_per_layer(spans):
    provider, exporter = spans
    register_layer(type("Shy", (), {"name": "shy", "classify": lambda self, t, c: None})(), "first")
    try:
        decision = Router(tracer_provider=provider, residency="EU").classify(HARD)
    finally:
        unregister_layer("shy")
    finished = exporter.get_finished_spans()
    by_name = {span.name: span for span in finished}
    assert len(by_name) == len(finished) == 1 + len(decision.trace)
    assert set(by_name) == {"dmr.classify", *(f"dmr.layer.{step.layer}" for step in decision.trace)}
    assert {"dmr.layer.shy", "dmr.layer.layer1"} <= set(by_name)
    root = by_name["dmr.classify"]
    assert root.parent is None
    attrs = dict(root.attributes)
    assert attrs["dmr.tier"] == str(decision.tier) and attrs["dmr.layer"] == decision.layer
    assert attrs["dmr.task_type"] == str(decision.task_type) and attrs["dmr.model"] == decision.model_name
    assert attrs["dmr.decision_id"] == decision.decision_id and attrs["dmr.policies"] == ("residency:EU",)
    for name in ("dmr.layer.shy", "dmr.layer.layer1"):
        child = by_name[name]
        assert child.parent.span_id == root.context.span_id
        assert child.context.trace_id == root.context.trace_id
        assert root.start_time <= child.start_time <= child.end_time <= root.end_time
    assert by_name["dmr.layer.shy"].end_time <= by_name["dmr.layer.layer1"].end_time
    assert dict(by_name["dmr.layer.shy"].attributes) == {"dmr.layer.outcome": "passed"}
    assert all(HARD not in str(dict(span.attributes)) for span in finished)  # never the task text


def test_a_failed_decision_ends_its_span_with_an_error(spans):
    provider, exporter = spans
    with pytest.raises(InputError):
        Router(tracer_provider=provider).classify("")
    (span,) = exporter.get_finished_spans()
    assert span.name == "dmr.classify" and span.status.status_code.name == "ERROR"
    assert span.events[0].name == "exception"


def test_a_layer_error_marks_its_child_span(spans):
    provider, exporter = spans

    class Broken:
        name = "broken"

        def classify(self, task, ctx):
            raise RuntimeError("model file missing")

    register_layer(Broken(), "first")
    try:
        Router(tracer_provider=provider).classify(EASY)
    finally:
        unregister_layer("broken")
    child = next(s for s in exporter.get_finished_spans() if s.name == "dmr.layer.broken")
    assert child.status.status_code.name == "ERROR"
    assert child.status.description == "RuntimeError: model file missing"


def test_otel_true_without_a_configured_sdk_exports_nothing():
    code = """
import json, socket
opened = []
real = socket.socket.__init__
def spy(self, *a, **k):
    opened.append(1)
    real(self, *a, **k)
socket.socket.__init__ = spy
from opentelemetry import trace
import dmr
router = dmr.Router(otel=True)
router.classify("What is 2+2?")
print(json.dumps({"sockets": len(opened), "provider": type(trace.get_tracer_provider()).__name__}))
"""
    result = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert result == {"sockets": 0, "provider": "ProxyTracerProvider"}


def test_metrics_and_spans_together(spans):
    provider, exporter = spans
    router = Router(tracer_provider=provider, metrics=True)
    router.classify(EASY)
    assert sample(router, "dmr_decisions_total", {"tier": "low", "layer": "layer1", "task_type": "math"}) == 1
    assert len(exporter.get_finished_spans()) == 2


# -- a real OTLP receiver ------------------------------------------------------------------------

@pytest.fixture
def otlp_receiver():
    """oteltap's OTLP/HTTP receiver on 127.0.0.1, run on its own event loop thread."""
    oteltap = pytest.importorskip("oteltap")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="otlp-receiver", daemon=True)
    thread.start()
    port = _free_port()
    settings = oteltap.OtelTapHttpProtobufReceiverSettings(http_port=port)
    receiver = asyncio.run_coroutine_threadsafe(oteltap.OtelTapHttpProtobufReceiver(settings).start(), loop).result(30)

    def expect_span(predicate, timeout: float = 20.0):
        """A future for the first span matching ``predicate`` that arrives from now on."""
        future = asyncio.run_coroutine_threadsafe(receiver.await_trace(predicate, timeout), loop)
        # The loop runs tasks in order: once this no-op is done, the awaiter above is registered.
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(10)
        return future

    yield port, expect_span
    asyncio.run_coroutine_threadsafe(receiver.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.mark.service("otlp")
def test_spans_reach_a_real_otlp_receiver(otlp_receiver):
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    port, expect_span = otlp_receiver
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces")))
    root_arrives = expect_span(lambda span: span.name == "dmr.classify")
    child_arrives = expect_span(lambda span: span.name == "dmr.layer.layer1")
    try:
        decision = Router(tracer_provider=provider).classify(HARD)
        assert provider.force_flush(20_000)
        root, child = root_arrives.result(30), child_arrives.result(30)
    finally:
        provider.shutdown()
    attrs = {kv.key: kv.value for kv in root.attributes}
    assert attrs["dmr.decision_id"].string_value == decision.decision_id
    assert attrs["dmr.tier"].string_value == "high"
    assert child.parent_span_id == root.span_id and child.trace_id == root.trace_id
