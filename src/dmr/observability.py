"""Metrics (Prometheus) and traces (OpenTelemetry) of a Router's decisions.

Both are off by default, and then a decision pays one ``if`` for them. Nothing here opens a socket
or exports anything by itself: ``Router(metrics=True)`` fills a ``CollectorRegistry`` of the
Router's own, which you scrape (``router.metrics.serve(port)``, on 127.0.0.1 unless told otherwise)
or render (``router.metrics.render()``); ``Router(otel=True)`` uses the process's OpenTelemetry
tracer provider, which exports nothing until you install an SDK provider with an exporter, and
``Router(tracer_provider=...)`` uses the one you pass. Spans never carry the task text.

Parts of the router that measure something (cache, Layer 2, breaker, budget) report it through
``router.telemetry``: ``cache_lookup(hit)``, ``layer2_error(provider, kind)``,
``breaker_state(provider, state)``, ``budget_used(spent_usd, limit_usd)``. With telemetry off,
``router.telemetry`` is :data:`OFF`, whose methods do nothing.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from dmr.errors import ConfigError, NotAvailableError
from dmr.types import Decision, LayerStep

__all__ = ["BREAKER_STATES", "OFF", "Metrics", "ObservedTrace", "Spans", "Telemetry", "build_telemetry", "fan_out"]

BREAKER_STATES = ("closed", "half_open", "open")
# Decision latency runs from microseconds (Layer 1) to seconds (Layer 2): buckets cover both.
_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
            0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ObservedTrace(list):  # type: ignore[type-arg]
    """A decision's trace that tells ``notify`` about each step as it is recorded, so observers see a
    layer the moment it finishes (for live span timing and latency estimates) without the cascade
    loop knowing who is watching."""

    __slots__ = ("_notify",)

    def __init__(self, notify: Callable[[LayerStep], None]) -> None:
        super().__init__()
        self._notify = notify

    def append(self, step: LayerStep) -> None:
        super().append(step)
        self._notify(step)


def fan_out(*callbacks: Callable[[LayerStep], None] | None) -> Callable[[LayerStep], None] | None:
    """One callback calling every given one in order, or None when none is given."""
    live = [c for c in callbacks if c is not None]
    if not live:
        return None
    if len(live) == 1:
        return live[0]

    def notify(step: LayerStep) -> None:
        for callback in live:
            callback(step)
    return notify


def _policy_name(policy: str) -> str:
    return policy.split(":", 1)[0]


class Metrics:
    """The Prometheus metrics of one Router (or of several, when they share this object), kept in
    ``registry`` — a ``CollectorRegistry`` of their own unless one is given."""

    def __init__(self, registry: Any = None) -> None:
        self._breakers: dict[str, Any] = {}  # provider → a breaker (``.state``) or a reported state
        try:
            import prometheus_client as prom
        except ImportError:
            raise NotAvailableError("metrics need prometheus-client: pip install 'dynamic-model-router[metrics]'",
                                    [("metrics", "prometheus-client is not installed")]) from None
        if registry is None:
            registry = prom.CollectorRegistry()
        elif not isinstance(registry, prom.CollectorRegistry):
            raise ConfigError(f"metrics: expected True, a Metrics or a prometheus CollectorRegistry, "
                              f"got {type(registry).__name__}", [("metrics", "wrong type")])
        self.registry = registry
        kw: dict[str, Any] = {"registry": registry}
        try:
            self._decisions = prom.Counter("dmr_decisions", "Decisions by tier, deciding layer and task type",
                                           ["tier", "layer", "task_type"], **kw)
            self._errors = prom.Counter("dmr_decision_errors", "Classify calls that raised, by error class",
                                        ["error"], **kw)
            self._latency = prom.Histogram("dmr_decision_latency_seconds", "Time to decide, whole call",
                                           buckets=_BUCKETS, **kw)
            self._layer_latency = prom.Histogram("dmr_layer_latency_seconds", "Time each layer took, by layer",
                                                 ["layer"], buckets=_BUCKETS, **kw)
            self._steps = prom.Counter("dmr_layer_steps", "What each layer did: decided, unsure, passed, "
                                       "error or skipped", ["layer", "outcome"], **kw)
            self._policies = prom.Counter("dmr_policies_applied", "Policies that shaped a decision",
                                          ["policy"], **kw)
            self._l2_errors = prom.Counter("dmr_layer2_errors", "Layer 2 provider failures", ["provider", "kind"], **kw)
            registry.register(_BreakerCollector(self._breakers))
            self._budget_used = prom.Gauge("dmr_budget_used_usd", "Spend counted against the budget", **kw)
            self._budget_limit = prom.Gauge("dmr_budget_limit_usd", "The budget cap", **kw)
            self._cache = prom.Counter("dmr_cache_lookups", "Decision cache lookups", ["result"], **kw)
            self._cache_ratio = prom.Gauge("dmr_cache_hit_ratio", "Hits over lookups since start", **kw)
        except ValueError as exc:  # prometheus_client: "Duplicated timeseries in CollectorRegistry"
            raise ConfigError(f"metrics: this CollectorRegistry already holds dmr metrics ({exc}); give each "
                              "Router its own registry, or share one Router's metrics with metrics=router.metrics",
                              [("metrics", "registry already holds dmr metrics")]) from None
        self._children: dict[tuple[Any, ...], Any] = {}
        self._hits = self._lookups = 0

    def watch(self, layers: Any, budget: Any = None) -> None:
        """Read breaker states (layers with a ``breaker``) and the budget when scraped, so that the
        hot path does nothing for them."""
        for layer in layers:
            breaker = getattr(layer, "breaker", None)
            if breaker is not None:
                self._breakers[str(getattr(layer, "provider", None) or layer.name)] = breaker
        if budget is not None:
            self._budget_used.set_function(lambda: budget.spent_usd)
            self._budget_limit.set_function(lambda: budget.limit_usd)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children.setdefault(key, metric.labels(*labels))
        return child

    # -- what the Router reports -------------------------------------------------------------
    def decided(self, decision: Decision, seconds: float) -> None:
        self._child(self._decisions, str(decision.tier), decision.layer, str(decision.task_type)).inc()
        self._latency.observe(seconds)
        for policy in decision.policies_applied:
            self._child(self._policies, _policy_name(policy)).inc()

    def failed(self, exc: BaseException) -> None:
        self._child(self._errors, type(exc).__name__).inc()

    def step(self, step: LayerStep) -> None:
        self._child(self._steps, step.layer, step.outcome).inc()
        if step.outcome != "skipped":
            self._child(self._layer_latency, step.layer).observe(step.latency_ms / 1e3)

    # -- what other parts of the router report -----------------------------------------------
    def layer2_error(self, provider: str, kind: str = "error") -> None:
        self._child(self._l2_errors, provider, kind).inc()

    def breaker_state(self, provider: str, state: str) -> None:
        if state not in BREAKER_STATES:
            raise ValueError(f"breaker state must be one of {BREAKER_STATES}, not {state!r}")
        self._breakers[provider] = state

    def budget_used(self, spent_usd: float, limit_usd: float | None = None) -> None:
        self._budget_used.set(spent_usd)
        if limit_usd is not None:
            self._budget_limit.set(limit_usd)

    def cache_lookup(self, hit: bool) -> None:
        self._child(self._cache, "hit" if hit else "miss").inc()
        # A ratio from two ints; a lost update under threads skews it by one lookup at most.
        self._lookups += 1
        self._hits += bool(hit)
        self._cache_ratio.set(self._hits / self._lookups)

    # -- reading them --------------------------------------------------------------------------
    def render(self) -> bytes:
        """The metrics in the Prometheus text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def serve(self, port: int = 0, addr: str = "127.0.0.1") -> Any:
        """Serve ``/metrics`` over HTTP from a daemon thread; returns the server (``server_port``,
        ``shutdown()``). Only called by you: dmr never opens a port by itself."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return server


class _BreakerCollector:
    """``dmr_breaker_state{provider, dmr_breaker_state}``: 1 for the state each breaker is in."""

    def __init__(self, breakers: dict[str, Any]) -> None:
        self._breakers = breakers

    def describe(self) -> list[Any]:
        return self.collect()

    def collect(self) -> list[Any]:
        from prometheus_client.core import StateSetMetricFamily

        family = StateSetMetricFamily("dmr_breaker_state", "Circuit breaker state per Layer 2 provider",
                                      labels=["provider"])
        for provider, breaker in list(self._breakers.items()):
            state = breaker if isinstance(breaker, str) else getattr(breaker, "state", "closed")
            family.add_metric([provider], {name: name == state for name in BREAKER_STATES})
        return [family]


class Spans:
    """OpenTelemetry spans: one ``dmr.classify`` span per decision with its outcome as attributes,
    and one child span per layer (``dmr.layer.<name>``) timed from the layer's own measurement."""

    def __init__(self, tracer_provider: Any = None) -> None:
        try:
            from opentelemetry import trace
        except ImportError:
            raise NotAvailableError("spans need OpenTelemetry: pip install 'dynamic-model-router[otel]'",
                                    [("otel", "opentelemetry-api is not installed")]) from None
        from dmr import __version__

        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        self._tracer = provider.get_tracer("dmr", __version__)
        self._error = trace.StatusCode.ERROR
        self._status = trace.Status

    def decision(self) -> Any:
        return self._tracer.start_as_current_span("dmr.classify")

    @staticmethod
    def annotate(span: Any, decision: Decision) -> None:
        if not span.is_recording():
            return
        attributes = {
            "dmr.tier": str(decision.tier), "dmr.layer": decision.layer,
            "dmr.task_type": str(decision.task_type), "dmr.complexity": str(decision.complexity),
            "dmr.confidence": decision.confidence, "dmr.difficulty": decision.difficulty,
            "dmr.decision_id": decision.decision_id, "dmr.policies": list(decision.policies_applied),
        }
        if decision.model_name is not None:
            attributes["dmr.model"] = decision.model_name
        if decision.provider is not None:
            attributes["dmr.provider"] = decision.provider
        if decision.estimated_cost_usd is not None:
            attributes["dmr.estimated_cost_usd"] = decision.estimated_cost_usd
        span.set_attributes(attributes)

    def step(self, step: LayerStep) -> None:
        # Called as the layer's step is recorded, inside the decision span (the current one), so
        # the child ends now and started when the layer's own measurement says.
        end = time.time_ns()
        span = self._tracer.start_span(f"dmr.layer.{step.layer}", start_time=end - int(step.latency_ms * 1e6))
        if span.is_recording():
            attributes: dict[str, Any] = {"dmr.layer.outcome": step.outcome}
            if step.confidence is not None:
                attributes["dmr.layer.confidence"] = step.confidence
            if step.detail:
                attributes["dmr.layer.detail"] = step.detail
            span.set_attributes(attributes)
            if step.outcome == "error":
                span.set_status(self._status(self._error, step.detail))
        span.end(end_time=end)


class Telemetry:
    """A Router's metrics and spans together: wraps each decision and hears each layer step."""

    def __init__(self, metrics: Metrics | None, spans: Spans | None) -> None:
        self.metrics, self.spans = metrics, spans
        self.step = fan_out(metrics.step if metrics else None, spans.step if spans else None)

    def run(self, call: Callable[..., Decision], *args: Any) -> Decision:
        """Run one decision (``call(*args)``) inside its span, counting it or its error."""
        if self.spans is None:
            return self._measured(call, args)
        with self.spans.decision() as span:
            decision = self._measured(call, args)
            self.spans.annotate(span, decision)
            return decision

    def _measured(self, call: Callable[..., Decision], args: tuple[Any, ...]) -> Decision:
        metrics = self.metrics
        start = time.perf_counter()
        try:
            decision = call(*args)
        except Exception as exc:
            if metrics is not None:
                metrics.failed(exc)
            raise
        if metrics is not None:
            metrics.decided(decision, time.perf_counter() - start)
        return decision

    def watch(self, layers: Any, budget: Any = None) -> None:
        if self.metrics is not None:
            self.metrics.watch(layers, budget)

    def layer2_error(self, provider: str, kind: str = "error") -> None:
        if self.metrics is not None:
            self.metrics.layer2_error(provider, kind)

    def breaker_state(self, provider: str, state: str) -> None:
        if self.metrics is not None:
            self.metrics.breaker_state(provider, state)

    def budget_used(self, spent_usd: float, limit_usd: float | None = None) -> None:
        if self.metrics is not None:
            self.metrics.budget_used(spent_usd, limit_usd)

    def cache_lookup(self, hit: bool) -> None:
        if self.metrics is not None:
            self.metrics.cache_lookup(hit)


class _Off:
    """Telemetry when none is configured: every report is dropped on the spot."""

    metrics = spans = step = None

    def layer2_error(self, provider: str, kind: str = "error") -> None:
        pass

    def breaker_state(self, provider: str, state: str) -> None:
        pass

    def budget_used(self, spent_usd: float, limit_usd: float | None = None) -> None:
        pass

    def cache_lookup(self, hit: bool) -> None:
        pass


OFF = _Off()


def build_telemetry(metrics: Any = None, otel: bool = False, tracer_provider: Any = None) -> Telemetry | None:
    """A Router's telemetry from its ``metrics``, ``otel`` and ``tracer_provider`` options, or None."""
    if metrics is True:
        built: Metrics | None = Metrics()
    elif metrics is None or metrics is False:
        built = None
    elif isinstance(metrics, Metrics):
        built = metrics
    else:
        built = Metrics(registry=metrics)
    spans = Spans(tracer_provider) if (otel or tracer_provider is not None) else None
    if built is None and spans is None:
        return None
    return Telemetry(built, spans)
