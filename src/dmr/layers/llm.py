"""Layer 2: an LLM asked to classify, only when the cheaper layers are unsure.

It costs money and time, so every call is guarded: a rate limit, a circuit breaker, a spend cap, a
per-call timeout inside an overall deadline, and retries with backoff and jitter that honour
``Retry-After``. Whatever goes wrong, the layer passes (the router records why and the other layers'
answer stands) — unless the router is strict. Its answer is validated strictly (an invalid one is a
pass, never a guess) and may not route a task below what the earlier layers' evidence supports.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from dmr.layers.base import Context, LayerUnavailable
from dmr.layers.prompt import (
    INJECTION,
    answer_schema,
    apply_floor,
    check_template,
    difficulty_of,
    parse_answer,
    render_user,
    system_prompt,
)
from dmr.providers import Provider, ProviderSettings, build_adapter, resolve_settings
from dmr.providers.base import Completion, InvalidAnswer, ProviderCallError
from dmr.resilience import CircuitBreaker, RateLimiter, RetryPolicy, raise_problems
from dmr.types import Verdict

__all__ = ["DEFAULT_PROVIDER", "LLMLayer", "layer2_wanted"]

DEFAULT_PROVIDER = "google"
_MAX_OUTPUT_TOKENS = 100
# Below this much time left, a call cannot finish: pass at once instead of starting one.
_MIN_CALL_SECS = 0.02


def layer2_wanted(cfg: Any) -> bool:
    """Layer 2 is off unless asked for: ``layer2_enabled=True``, or a provider or model named
    (and ``layer2_enabled`` not False). Nothing reaches the network otherwise."""
    if cfg.layer2_enabled is not None:
        return bool(cfg.layer2_enabled)
    return bool(cfg.layer2_provider or cfg.layer2_model)


class LLMLayer:
    """Layer 2. Built by the Router from its config; ``registry`` is a callable returning the
    Router's model registry (read at call time, so registry changes apply), ``tier_of`` maps a
    type and complexity to a tier (the Router's tier matrix) for the floor."""

    name = "layer2"
    blocking = True  # waits on the network: Router.aclassify runs it off the event loop
    threshold = 0.0  # a valid answer decides

    def __init__(self, cfg: Any, *, registry: Callable[[], Any], tier_of: Callable[..., Any],
                 budget: Any = None, sleep: Callable[[float], None] = time.sleep,
                 report_error: Callable[[str, str], None] | None = None) -> None:
        problems: list[tuple[str, str]] = []
        self.retry = RetryPolicy.from_option(cfg.l2_retry_policy, problems)
        self.breaker = CircuitBreaker.from_option(cfg.l2_circuit_breaker, problems)
        self.rate_limit = RateLimiter.from_option(cfg.l2_rate_limit, problems)
        if cfg.layer2_base_url is not None and not cfg.layer2_base_url.startswith(("http://", "https://")):
            problems.append(("layer2_base_url", f"must be an http:// or https:// URL, got {cfg.layer2_base_url!r}"))
        raise_problems(problems)
        self.template = check_template(cfg.layer2_prompt_template)
        self.provider = cfg.layer2_provider or DEFAULT_PROVIDER
        self.model = cfg.layer2_model
        self.base_url = cfg.layer2_base_url
        self.timeout = cfg.layer2_timeout
        self.budget = budget
        self._registry = registry
        self._tier_of = tier_of
        self._sleep = sleep
        self._report = report_error  # (provider, kind) for metrics: every failed attempt, every invalid answer
        self._lock = threading.Lock()
        self._adapter: Provider | None = None
        self._unavailable: LayerUnavailable | None = None

    # -- the provider --------------------------------------------------------------------------
    def settings(self) -> ProviderSettings:
        """Where and how to call: the Router's options over the registry's provider entry."""
        return resolve_settings(self.provider, self.model, self.base_url, self._registry())

    def adapter(self) -> Provider:
        """The provider's adapter, built on first use. A missing key is looked for again on every
        call (it may be set later); a missing SDK is remembered (it will not appear by itself)."""
        with self._lock:
            if self._adapter is None:
                if self._unavailable is not None:
                    raise self._unavailable
                settings = self.settings()
                try:
                    self._adapter = build_adapter(settings)
                except LayerUnavailable as exc:
                    self._unavailable = exc
                    raise
            return self._adapter

    # -- classification ------------------------------------------------------------------------
    def classify(self, task: str, ctx: Context) -> Verdict:
        start = time.perf_counter()
        deadline = ctx.deadline if ctx.deadline is not None else start + 3 * self.timeout
        if self.budget is not None and self.budget.stopped:
            raise LayerUnavailable(f"Layer 2 stopped: {self.budget.fraction:.0%} of the "
                                   f"${self.budget.limit_usd:g} budget is spent")
        adapter = self.adapter()
        if self.rate_limit is not None and not self.rate_limit.acquire():
            raise LayerUnavailable(f"Layer 2 rate limit reached ({self.rate_limit.calls} calls per "
                                   f"{self.rate_limit.per_secs:g} s)")
        completion = self._call(adapter, system_prompt(), render_user(self.template, task), deadline)
        spend = self._record_spend(adapter, completion)
        try:
            task_type, complexity, confidence = parse_answer(completion.data)
        except InvalidAnswer as exc:
            self._reported(adapter.name, "invalid_answer")
            raise LayerUnavailable(f"Layer 2: invalid answer from {adapter.name} ({exc}); passed") from None
        reasoning = f"Layer 2 ({completion.model}): {task_type}, {complexity}{spend}"
        verdict = Verdict(task_type, complexity, confidence, difficulty_of(task_type, complexity), self.name, reasoning)
        signals = ctx.signals.get("l1")
        escalators = tuple(getattr(signals, "escalators", ()) or ())
        injected = INJECTION.search(task) is not None
        floored, note = apply_floor(verdict, ctx.verdicts, escalators, injected, self._tier_of)
        if note is not None:
            floored = Verdict(floored.task_type, floored.complexity, floored.confidence, floored.difficulty,
                              self.name, f"{reasoning}; {note}")
        return floored

    def _call(self, adapter: Provider, system: str, user: str, deadline: float) -> Completion:
        """One answer within the deadline, retrying what may succeed on a second try."""
        failures = 0
        last: ProviderCallError | None = None
        while True:
            refused = self.breaker.allow()
            if refused is not None:
                if last is not None:
                    raise ProviderCallError(f"{last} (after {failures} attempts; then {refused})",
                                            retryable=True, status=last.status, kind=last.kind) from None
                raise LayerUnavailable(f"Layer 2 skipped: {refused}")
            left = deadline - time.perf_counter()
            if left < _MIN_CALL_SECS:
                self.breaker.release()
                raise LayerUnavailable("Layer 2 skipped: no time left before the deadline")
            try:
                completion = adapter.complete_json(system, user, answer_schema(),
                                                   timeout=min(self.timeout, left), max_tokens=_MAX_OUTPUT_TOKENS)
            except InvalidAnswer as exc:
                self.breaker.record_success()  # the provider works; the answer is the problem
                self._reported(adapter.name, "invalid_answer")
                if exc.usage is not None:
                    self._record_spend(adapter, Completion(None, exc.usage, getattr(adapter, "model", "")))
                raise LayerUnavailable(f"Layer 2: invalid answer from {adapter.name} ({exc}); passed") from None
            except ProviderCallError as exc:
                self.breaker.record_failure()
                self._reported(adapter.name, exc.kind)
                failures += 1
                last = exc
                if exc.retry_after is not None and exc.status == 429:
                    self.breaker.hold(exc.retry_after)
                wait = self.retry.delay(failures, exc.retry_after)
                if (not exc.retryable or failures >= self.retry.max_attempts
                        or time.perf_counter() + wait + _MIN_CALL_SECS >= deadline):
                    raise ProviderCallError(f"{exc} (after {failures} attempt{'s' * (failures > 1)})",
                                            retryable=exc.retryable, status=exc.status,
                                            retry_after=exc.retry_after, kind=exc.kind) from None
                self._sleep(wait)
                continue
            except Exception:
                self.breaker.release()
                raise
            self.breaker.record_success()
            return completion

    def _reported(self, provider: str, kind: str) -> None:
        if self._report is not None:
            try:
                self._report(provider, kind)
            except Exception:  # metrics must never turn a pass into an error
                pass

    def _record_spend(self, adapter: Provider, completion: Completion) -> str:
        """Price the provider's reported usage and add it to the budget; a note for the reasoning."""
        usage = completion.usage
        if not (usage.input_tokens or usage.output_tokens):
            return ""
        registry = self._registry()
        model = getattr(adapter, "model", None) or completion.model
        cost = registry.estimate_cost(model, usage.input_tokens, usage.output_tokens)
        if cost is None and completion.model and completion.model != model:
            cost = registry.estimate_cost(completion.model, usage.input_tokens, usage.output_tokens)
        if cost is None:
            return f"; {usage.input_tokens}+{usage.output_tokens} tokens, no price for {model} in the registry"
        if self.budget is not None:
            self.budget.record_usd(cost, in_decision=True)
        return f"; {usage.input_tokens}+{usage.output_tokens} tokens, ${cost:.6f}"



# The module each built-in adapter needs, and the extra that installs it.
_SDKS = {"openai": ("openai", "openai"), "anthropic": ("anthropic", "anthropic"), "google": ("google.genai", "google")}


def diagnose(options: dict[str, Any]) -> tuple[str, str, str]:
    """``(status, detail, fix)`` for ``dmr doctor``: can Layer 2 run as configured? Offline."""
    import importlib.util

    from dmr.config import validate_options
    from dmr.providers import adapter_names
    from dmr.registry import default_registry

    cfg = validate_options(options)
    if not layer2_wanted(cfg):
        return "OK", "off (dmr makes no provider calls)", ""
    provider = cfg.layer2_provider or DEFAULT_PROVIDER
    sdk = _SDKS.get(provider) or (_SDKS["openai"] if provider not in adapter_names() else None)
    if sdk is not None:
        try:
            found = importlib.util.find_spec(sdk[0]) is not None
        except (ModuleNotFoundError, ValueError):  # ValueError: blocked in sys.modules
            found = False
        if not found:
            return ("FAIL", f"provider {provider}: the {sdk[0]} SDK is not installed; Layer 2 will pass",
                    f"pip install 'dynamic-model-router[{sdk[1]}]'")
    try:
        settings = resolve_settings(provider, cfg.layer2_model, cfg.layer2_base_url, default_registry())
    except LayerUnavailable as exc:
        return "FAIL", f"{exc}; Layer 2 will pass", "set the key (or the model) named above"
    where = f" at {settings.base_url}" if settings.base_url else ""
    return "OK", f"{provider} {settings.model}{where}", ""
