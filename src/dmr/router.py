"""The Router: runs the cascade, turns the winning verdict into a tier and a model, applies the
policies and returns a :class:`~dmr.types.Decision`.

Everything a Router is configured with lives on the instance; two Routers never share mutable
state, so they can be used from many threads at once.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from dmr.config import RouterConfig, load_yaml_options, validate_options
from dmr.errors import ConfigError, DmrError, InputError, InputTypeError, PIIBlockedError
from dmr.layers import Context, LayerUnavailable, arrange, plugin_layers
from dmr.layers.keywords import KeywordLayer
from dmr.packs import KeywordPack, bundled_packs, load_pack_file
from dmr.pii import PIIDetector
from dmr.presets import load_preset
from dmr.registry import ModelRegistry, default_registry
from dmr.tiers import TierMatrix, band_difficulty
from dmr.tokens import count_tokens, estimate_output_tokens, get_tokenizer
from dmr.types import Decision, LayerStep, ModelTier, TaskComplexity, TaskType, Verdict

__all__ = ["Router", "classify", "default_router"]

_TENANT_KEYS = frozenset({"provider", "providers", "min_tier", "max_tier"})


def _arity(fn: Callable[..., Any]) -> int:
    """How many positional arguments a hook takes (hooks may take the context or not)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty for p in params)


def _call(fn: Callable[..., Any], arity: int, *args: Any) -> Any:
    return fn(*args[:max(arity, 1)])


class Router:
    """Routes tasks to tiers and models. See the README for every option; ``Router()`` alone
    classifies offline with the bundled keyword packs and registry."""

    def __init__(self, **options: Any) -> None:
        self.config: RouterConfig = validate_options(options)
        cfg = self.config
        self._registry_lock = threading.Lock()
        preset = load_preset(cfg.preset) if cfg.preset else None

        packs = list(bundled_packs())
        if preset is not None:
            packs.append(preset.pack)
        for i, pack in enumerate(cfg.extra_keyword_packs):
            if isinstance(pack, (str, Path)):
                pack = load_pack_file(pack)
            elif isinstance(pack, Mapping):
                pack = KeywordPack.from_dict(pack, source=f"extra_keyword_packs.{i}")
            elif not isinstance(pack, KeywordPack):
                raise ConfigError(f"extra_keyword_packs.{i}: expected a KeywordPack, a path or a mapping, "
                                  f"got {type(pack).__name__}", [(f"extra_keyword_packs.{i}", "wrong type")])
            packs.append(pack)
        self.packs: tuple[KeywordPack, ...] = tuple(packs)
        self._l1 = KeywordLayer(packs, cfg.l1_weights) if cfg.layer1_enabled else None
        self._layers = arrange([self._l1] if self._l1 else [], plugin_layers())
        self._thresholds = {"layer1": cfg.escalation_threshold}
        self._matrix = TierMatrix(cfg.tier_matrix)
        try:
            self._default_tier = ModelTier(cfg.default_tier)
            self._default_tier.rank
        except ValueError as exc:
            raise ConfigError(f"default_tier: {exc}", [("default_tier", str(exc))]) from None

        self._registry = self._build_registry(cfg)
        self._provider = cfg.provider or (cfg.providers[0] if cfg.providers else None)
        if self._provider and self.registry.providers() and self._provider not in self.registry.providers():
            raise ConfigError(
                f"provider {self._provider!r} is not in the model registry (known: {', '.join(self.registry.providers())})",
                [("provider", f"unknown provider {self._provider!r}")],
            )
        self._count_tokens = get_tokenizer(cfg.tokenizer) if cfg.tokenizer is not None else None

        pii_patterns = dict(preset.pii_patterns) if preset else {}
        if isinstance(cfg.extra_pii_patterns, Mapping):
            pii_patterns.update(cfg.extra_pii_patterns)
        elif cfg.extra_pii_patterns:
            pii_patterns.update({f"custom_{i}": p for i, p in enumerate(cfg.extra_pii_patterns, 1)})
        pii_policy = cfg.pii_policy if cfg.pii_policy is not None else (preset.pii_policy if preset else None)
        self._pii = PIIDetector(pii_patterns) if (pii_policy is not None or pii_patterns) else None
        self._pii_block = bool((pii_policy or {}).get("block", False))
        self._pii_floor = None
        if pii_policy and pii_policy.get("min_tier") is not None:
            try:
                self._pii_floor = ModelTier(pii_policy["min_tier"])
                self._pii_floor.rank
            except ValueError as exc:
                raise ConfigError(f"pii_policy.min_tier: {exc}", [("pii_policy.min_tier", str(exc))]) from None

        self._custom = cfg.custom_classifier
        self._pre = [(h, _arity(h)) for h in cfg.pre_classify_hooks]
        self._post = [(h, _arity(h)) for h in cfg.post_classify_hooks]
        self._on_error = [(h, _arity(h)) for h in cfg.on_error_hooks]
        for name, hooks in (("pre_classify_hooks", self._pre), ("post_classify_hooks", self._post),
                            ("on_error_hooks", self._on_error), ("custom_classifier", [(self._custom, 0)])):
            for hook, _ in hooks:
                if hook is not None and not callable(hook):
                    raise ConfigError(f"{name}: {hook!r} is not callable", [(name, "not callable")])
        self._max_chars = cfg.max_analysis_chars
        # Decision ids: a random per-Router prefix and a counter, unique across processes and
        # replicas without a uuid4 call on the hot path.
        self._id_prefix = os.urandom(8).hex()
        self._ids = itertools.count(1)

    # -- construction helpers ----------------------------------------------------------------
    @staticmethod
    def _build_registry(cfg: RouterConfig) -> ModelRegistry | None:
        """The Router's own registry, or None to use the process-wide default (live)."""
        if cfg.model_registry is not None and cfg.registry is not None:
            raise ConfigError("give either model_registry= or registry=, not both",
                              [("registry", "conflicts with model_registry")])
        source = cfg.model_registry if cfg.model_registry is not None else cfg.registry
        if source is None:
            return None
        if isinstance(source, ModelRegistry):
            return source
        if isinstance(source, Mapping):
            return ModelRegistry.from_dict(source)
        if isinstance(source, (str, Path)):
            return ModelRegistry.load(str(source))
        raise ConfigError(f"model_registry: expected a ModelRegistry, a mapping or a path, got {type(source).__name__}",
                          [("model_registry", "wrong type")])

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> Router:
        """A Router configured by a ``dmr.yaml`` (keyword arguments override the file)."""
        return cls(**{**load_yaml_options(path), **overrides})

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> Router:
        """A Router with a domain preset: ``healthcare``, ``legal`` or ``fintech`` (see ``dmr presets``)."""
        return cls(preset=name, **overrides)

    @classmethod
    def from_registry(cls, path_or_url: str | Path, **overrides: Any) -> Router:
        """A Router whose model registry is read from a YAML path or an https URL."""
        return cls(registry=str(path_or_url), **overrides)

    @property
    def registry(self) -> ModelRegistry:
        return self._registry if self._registry is not None else default_registry()

    def load_registry(self, path_or_url: str | Path, *, replace: bool = False) -> ModelRegistry:
        """Merge (or with ``replace=True`` swap in) a registry for this Router only."""
        loaded = ModelRegistry.load(str(path_or_url))
        with self._registry_lock:
            if replace:
                self._registry = loaded
            else:
                own = self.registry.copy()
                own.merge(loaded)
                self._registry = own
        return self._registry

    @property
    def layers(self) -> tuple[str, ...]:
        """The names of the layers in cascade order."""
        return tuple(layer.name for layer in self._layers)

    # -- classification ----------------------------------------------------------------------
    def _prepare(self, task: Any) -> tuple[str, list[str]]:
        notes: list[str] = []
        if isinstance(task, (bytes, bytearray, memoryview)):
            raw = bytes(task)
            task = raw.decode("utf-8", errors="replace")
            if "\ufffd" in task and b"\xef\xbf\xbd" not in raw:
                notes.append("input was not valid UTF-8; undecodable bytes were replaced")
        elif not isinstance(task, str):
            raise InputTypeError(f"task must be str (or UTF-8 bytes), not {type(task).__name__}")
        if not task.strip():
            raise InputError("task is empty or only whitespace; there is nothing to classify")
        return task, notes

    def _window(self, text: str, ctx_notes: list[str]) -> tuple[str, bool]:
        limit = self._max_chars
        if len(text) <= limit:
            return text, False
        head = limit * 3 // 4
        tail = limit - head
        ctx_notes.append(f"analysed the first {head:,} and last {tail:,} of {len(text):,} characters (truncated)")
        return text[:head] + "\n…\n" + text[-tail:], True

    def classify(self, task: Any, *, history: Sequence[Any] | None = None,
                 tenant_config: Mapping[str, Any] | None = None) -> Decision:
        """Decide the tier and model for one task."""
        start = time.perf_counter()
        text, notes = self._prepare(task)
        if tenant_config:
            self._check_tenant(tenant_config)
        window, truncated = self._window(text, notes)
        ctx = Context(text=window, length=len(text), truncated=truncated, history=history,
                      tenant_config=tenant_config, notes=notes)
        try:
            for hook, arity in self._pre:
                replaced = _call(hook, arity, text, ctx)
                if isinstance(replaced, str) and replaced is not text:
                    text, more = self._prepare(replaced)
                    notes.extend(more)
                    ctx.text, ctx.truncated = self._window(text, notes)
                    ctx.length = len(text)
            decision = self._decide(text, ctx, start)
        except Exception as exc:
            for hook, arity in self._on_error:
                fallback = _call(hook, arity, exc, ctx)
                if isinstance(fallback, Decision):
                    return fallback
            raise
        for hook, arity in self._post:
            replaced = _call(hook, arity, decision, ctx)
            if isinstance(replaced, Decision):
                decision = replaced
        return decision

    async def aclassify(self, task: Any, *, history: Sequence[Any] | None = None,
                        tenant_config: Mapping[str, Any] | None = None) -> Decision:
        """Async :meth:`classify`. Layers that wait on the network run off the event loop."""
        if any(getattr(layer, "blocking", False) for layer in self._layers):
            return await asyncio.to_thread(self.classify, task, history=history, tenant_config=tenant_config)
        return self.classify(task, history=history, tenant_config=tenant_config)

    def classify_batch(self, tasks: Iterable[Any], *, return_exceptions: bool = False) -> list[Any]:
        """Classify many tasks in order. With ``return_exceptions=True`` a bad task yields its
        exception in place instead of stopping the batch."""
        out: list[Any] = []
        for task in tasks:
            try:
                out.append(self.classify(task))
            except DmrError as exc:
                if not return_exceptions:
                    raise
                out.append(exc)
        return out

    def _run_layers(self, ctx: Context) -> tuple[Verdict | None, bool, list[LayerStep]]:
        trace: list[LayerStep] = []
        best: Verdict | None = None
        for layer in self._layers:
            t0 = time.perf_counter()
            try:
                verdict = layer.classify(ctx.text, ctx)
            except LayerUnavailable as exc:
                if self.config.strict:
                    raise
                trace.append(LayerStep(layer.name, "passed", None, (time.perf_counter() - t0) * 1e3, str(exc)))
                continue
            except Exception as exc:
                if self.config.strict:
                    raise
                for hook, arity in self._on_error:
                    _call(hook, arity, exc, ctx)
                trace.append(LayerStep(layer.name, "error", None, (time.perf_counter() - t0) * 1e3,
                                       f"{type(exc).__name__}: {exc}"))
                continue
            ms = (time.perf_counter() - t0) * 1e3
            if verdict is None:
                trace.append(LayerStep(layer.name, "passed", None, ms))
                continue
            ctx.verdicts.append(verdict)
            threshold = self._thresholds.get(layer.name, getattr(layer, "threshold", 0.5))
            if verdict.confidence >= threshold:
                trace.append(LayerStep(layer.name, "decided", verdict.confidence, ms))
                return verdict, True, trace
            trace.append(LayerStep(layer.name, "unsure", verdict.confidence, ms, "below threshold"))
            if best is None or verdict.confidence > best.confidence:
                best = verdict
        return best, False, trace

    def _decide(self, text: str, ctx: Context, start: float) -> Decision:
        verdict: Verdict | None = None
        confident = False
        trace: list[LayerStep] = []
        if self._custom is not None:
            custom = self._custom(text, ctx)
            if isinstance(custom, Decision):
                return custom
            if isinstance(custom, Verdict):
                verdict, confident = custom, True
                trace.append(LayerStep("custom", "decided", custom.confidence))
            elif custom is not None:
                raise ConfigError(f"custom_classifier returned {type(custom).__name__}; expected Decision, Verdict or None")
        if verdict is None:
            verdict, confident, trace = self._run_layers(ctx)
        if verdict is None:
            tier = self._default_tier
            verdict = Verdict(TaskType.REASONING, TaskComplexity.STANDARD, 0.0, 0.5, "default",
                              f"no layer answered; the default tier {tier} applies")
        else:
            tier = self._matrix.tier(verdict.task_type, verdict.complexity)
        difficulty = band_difficulty(tier, verdict.difficulty)
        reasons = [verdict.reasoning]
        if not confident and verdict.layer != "default":
            reasons.append("no layer was confident, so the most confident answer was used")
        policies: list[str] = []

        if self._pii is not None:
            kinds = self._pii.kinds(text)
            if kinds:
                if self._pii_block:
                    raise PIIBlockedError(f"task contains personal data ({', '.join(kinds)}) and the PII policy blocks it", kinds)
                policies.append("pii_detected:" + ",".join(kinds))
                if self._pii_floor is not None and tier.rank < self._pii_floor.rank:
                    tier = self._pii_floor
                    policies.append(f"pii_floor:{tier}")
                    reasons.append(f"personal data found ({', '.join(kinds)}): raised to at least {tier}")

        provider = self._provider
        tenant = ctx.tenant_config
        if tenant:
            tier, provider = self._apply_tenant(tenant, tier, provider, policies, reasons)

        registry = self.registry
        model = None
        cost = None
        if provider is None:
            names = registry.providers()
            provider = names[0] if names else None
        if provider is not None:
            model, used = registry.resolve(provider, tier)
            if used != tier:
                policies.append(f"tier_substituted:{tier}->{used}")
                reasons.append(f"{provider} has no {tier} model; used its {used} model")
                tier = used
            tokens = self._count_tokens(text) if self._count_tokens else count_tokens(text, model)
            cost = registry.estimate_cost(model, tokens, estimate_output_tokens(verdict.complexity))
        reasons.extend(ctx.notes)
        return Decision(
            tier=tier, model_name=model, provider=provider, task_type=verdict.task_type,
            complexity=verdict.complexity, confidence=verdict.confidence, difficulty=difficulty,
            layer=verdict.layer, reasoning="; ".join(reasons) if len(reasons) > 1 else reasons[0],
            latency_ms=(time.perf_counter() - start) * 1e3, estimated_cost_usd=cost,
            decision_id=f"{self._id_prefix}{next(self._ids):016x}", policies_applied=tuple(policies), trace=tuple(trace),
        )

    # -- tenants -------------------------------------------------------------------------------
    def _check_tenant(self, tenant: Mapping[str, Any]) -> None:
        problems = [(f"tenant_config.{k}", f"unknown key (known: {', '.join(sorted(_TENANT_KEYS))})")
                    for k in sorted(set(tenant) - _TENANT_KEYS)]
        provider, providers = tenant.get("provider"), tenant.get("providers")
        if provider is not None and not isinstance(provider, str):
            problems.append(("tenant_config.provider", "must be a provider name"))
        if providers is not None and (isinstance(providers, str) or not isinstance(providers, (list, tuple))
                                      or not all(isinstance(p, str) for p in providers)):
            problems.append(("tenant_config.providers", "must be a list of provider names"))
        ranks = {}
        for key in ("min_tier", "max_tier"):
            if tenant.get(key) is not None:
                try:
                    ranks[key] = ModelTier(tenant[key]).rank
                except ValueError as exc:
                    problems.append((f"tenant_config.{key}", str(exc)))
        if len(ranks) == 2 and ranks["min_tier"] > ranks["max_tier"]:
            problems.append(("tenant_config.min_tier", "is above max_tier"))
        if problems:
            raise ConfigError("invalid tenant_config:\n" + "\n".join(f"  {p}: {m}" for p, m in problems), problems)

    def _apply_tenant(self, tenant: Mapping[str, Any], tier: ModelTier, provider: str | None,
                      policies: list[str], reasons: list[str]) -> tuple[ModelTier, str | None]:
        allowed = tenant.get("providers")
        chosen = tenant.get("provider") or provider
        if allowed:
            allowed = list(allowed)
            if chosen not in allowed:
                chosen = allowed[0]
                policies.append(f"tenant_provider:{chosen}")
        elif tenant.get("provider"):
            policies.append(f"tenant_provider:{chosen}")
        low, high = tenant.get("min_tier"), tenant.get("max_tier")
        if low is not None and tier.rank < ModelTier(low).rank:
            tier = ModelTier(low)
            policies.append(f"tenant_min_tier:{tier}")
            reasons.append(f"tenant requires at least {tier}")
        if high is not None and tier.rank > ModelTier(high).rank:
            tier = ModelTier(high)
            policies.append(f"tenant_max_tier:{tier}")
            reasons.append(f"tenant caps the tier at {tier}")
        return tier, chosen


_DEFAULT_LOCK = threading.Lock()
_DEFAULT: list[Router] = []


def default_router() -> Router:
    """The process-wide ``Router()`` behind :func:`classify`, built on first use."""
    if not _DEFAULT:
        with _DEFAULT_LOCK:
            if not _DEFAULT:
                _DEFAULT.append(Router())
    return _DEFAULT[0]


def classify(task: Any, **kwargs: Any) -> Decision:
    """Classify with the default Router: ``classify("What is 2+2?").tier``."""
    return default_router().classify(task, **kwargs)
