"""The Router: runs the cascade, turns the winning verdict into a tier and a model, applies the
policies and returns a :class:`~dmr.types.Decision`.

Everything a Router is configured with lives on the instance; two Routers never share mutable
state, so they can be used from many threads at once.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from dmr.assembly import call_hook, hooks, keyword_packs, own_registry, pii_setup
from dmr.config import RouterConfig, load_yaml_options, validate_options
from dmr.context_fit import check_needs, fit_context, lacking, overflows
from dmr.errors import ConfigError, InputError, InputTypeError, PIIBlockedError
from dmr.followups import FollowUpFloor
from dmr.layers import Context, LayerUnavailable, arrange, plugin_layers
from dmr.layers.base import valid_unicode
from dmr.layers.keywords import KeywordLayer
from dmr.messages import turn_list
from dmr.observability import OFF, ObservedTrace, Telemetry, build_telemetry, fan_out
from dmr.packs import KeywordPack
from dmr.pii import PIIDetector, client_turns
from dmr.policies import (COST_CAPS, LatencyEstimator, ResidencyPlanner, TenantBudgets, apply_tenant,
                          check_tenant, context_ceiling, cost_ceiling, escalation_tiers, normalise_region)
from dmr.presets import load_preset
from dmr.quality import QualityChoice, build_quality
from dmr.registry import ModelRegistry, default_registry
from dmr.store.wiring import build_stores
from dmr.tiers import TierMatrix, band_difficulty
from dmr import tokens as _tokens
from dmr.tokens import estimate_output_tokens, get_tokenizer
from dmr.types import Decision, LayerStep, ModelTier, TaskComplexity, TaskType, Verdict

__all__ = ["Router", "classify", "default_router"]

# classify_batch primes its layers on this many tasks at a time.
_BATCH_CHUNK = 1024
# Layer 3's default threshold (dmr.layers.embedding.DEFAULT_THRESHOLD; kept here so that building a
# Router with Layer 3 off imports no ML code).
_L3_THRESHOLD = 0.6


class _class_or_instance:
    """A method that receives the class when called on it and the instance when called on one."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __get__(self, instance: Any, owner: type) -> Callable[..., Any]:
        import functools

        return functools.partial(self.fn, owner if instance is None else instance)


class Router:
    """Routes tasks to tiers and models. See the README for every option; ``Router()`` alone
    classifies offline with the bundled keyword packs and registry."""

    def __init__(self, **options: Any) -> None:
        self.config: RouterConfig = validate_options(options)
        cfg = self.config
        self._registry_lock = threading.Lock()
        preset = load_preset(cfg.preset) if cfg.preset else None

        self.packs: tuple[KeywordPack, ...] = keyword_packs(cfg, preset)
        self._l1 = KeywordLayer(self.packs, cfg.l1_weights) if cfg.layer1_enabled else None
        # Spend against budget_usd (dmr.budget), shared by Layer 2 and the budget policy.
        self.budget = _budget(cfg) if cfg.budget_usd is not None else None
        self._layers = arrange(self._builtin_layers(cfg), plugin_layers())
        # A layer's own `threshold` attribute applies unless the router's config names one.
        self._thresholds = {"layer1": cfg.escalation_threshold,
                            "layer3": cfg.layer3_threshold if cfg.layer3_threshold is not None else _L3_THRESHOLD}
        self._matrix = TierMatrix(cfg.tier_matrix)
        try:
            self._default_tier = ModelTier(cfg.default_tier)
            self._default_tier.rank
        except ValueError as exc:
            raise ConfigError(f"default_tier: {exc}", [("default_tier", str(exc))]) from None

        self._registry = own_registry(cfg)
        self._provider = cfg.provider or (cfg.providers[0] if cfg.providers else None)
        self._providers = tuple(cfg.providers or ())
        if self._provider and self.registry.providers() and self._provider not in self.registry.providers():
            raise ConfigError(
                f"provider {self._provider!r} is not in the model registry (known: {', '.join(self.registry.providers())})",
                [("provider", f"unknown provider {self._provider!r}")],
            )
        self._count_tokens = get_tokenizer(cfg.tokenizer) if cfg.tokenizer is not None else None
        # quality_target (dmr.quality): None leaves the tier to the matrix.
        self._quality = build_quality(cfg, self.registry, self._provider) if cfg.quality_target is not None else None

        self._pii, self._pii_block, self._pii_floor = pii_setup(cfg, preset)

        self._custom = cfg.custom_classifier
        self._pre, self._post, self._on_error = hooks(cfg)
        self._max_chars = cfg.max_analysis_chars
        # A short follow-up is routed no lower than the requests before it (dmr.followups).
        self._follow_ups = FollowUpFloor(self._request_level) if cfg.follow_up_floor else None
        # Policies and telemetry (dmr.policies, dmr.observability); each is None when not configured,
        # so a Router without them pays one `if` apiece.
        self._residency = normalise_region(cfg.residency) if cfg.residency is not None else None
        self._placer = ResidencyPlanner(cfg.residency_fallback, cfg.provider, cfg.providers)
        self._tenant_budgets = TenantBudgets(cfg.budget_policy, cfg.budget_store)
        self._latency = LatencyEstimator(self._layers) if cfg.latency_budget_ms else None
        self._telemetry: Telemetry | None = build_telemetry(cfg.metrics, cfg.otel, cfg.tracer_provider)
        self._on_step = fan_out(self._latency.observe if self._latency else None,
                                self._telemetry.step if self._telemetry else None)
        if self._telemetry is not None:
            self._telemetry.watch(self._layers, self.budget)
        # Decision ids: a random per-Router prefix and a counter, unique across processes and
        # replicas without a uuid4 call on the hot path.
        self._id_prefix = os.urandom(8).hex()
        self._route_stamp: Any = None
        self._route_cache: dict[tuple[str | None, ModelTier], tuple[Any, ...] | None] = {}
        self._ids = itertools.count(1)
        # Cache and decision log (dmr.store); None when neither is configured.
        self._stores = build_stores(self, cfg)

    # -- construction helpers ----------------------------------------------------------------
    def _builtin_layers(self, cfg: RouterConfig) -> list[Any]:
        """The built-in cascade in order: Layer 1 (keywords), Layer 3 (embedding classifier),
        Layer 2 (LLM). Each later layer is built by its own module from the config and is left
        out (None) when disabled."""
        layers: list[Any] = [self._l1]
        self._l3: Any = None
        if cfg.layer3_enabled is not False:
            from dmr.errors import NotAvailableError
            from dmr.layers.embedding import EmbeddingLayer

            layer3 = EmbeddingLayer(cfg.layer3_head, cfg.layer3_strategy, encoder=cfg.layer3_embedding_model,
                                    tier_of=lambda task_type, complexity: self._matrix.tier(task_type, complexity))
            asked = cfg.layer3_enabled or cfg.layer3_head is not None or cfg.layer3_embedding_model is not None
            # available() loads the head and encoder. With a latency budget they are loaded here, so
            # that the first decision's Layer 3 time is its run, not its loading (which, measured as
            # the layer's latency, had it skipped for the next few dozen decisions).
            if asked or cfg.latency_budget_ms:
                usable, why = layer3.available()
                if not usable and asked:
                    key = "layer3_embedding_model" if cfg.layer3_embedding_model else \
                        "layer3_head" if cfg.layer3_head else "layer3_enabled"
                    raise NotAvailableError(f"{key}: {why}", [(key, why)])
            layers.append(layer3)
            self._l3 = layer3
        from dmr.layers.llm import LLMLayer, layer2_wanted

        # Built (which validates its options, offline) even when off; in the cascade only when asked for.
        llm = LLMLayer(cfg, registry=lambda: self.registry, budget=self.budget,
                       tier_of=lambda task_type, complexity: self._matrix.tier(task_type, complexity),
                       report_error=lambda provider, kind: self._telemetry and self._telemetry.layer2_error(provider, kind))
        if layer2_wanted(cfg):
            layers.append(llm)
        return [layer for layer in layers if layer is not None]

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

    @_class_or_instance
    def load_registry(target: Any, path_or_url: str | Path, *, replace: bool = False) -> ModelRegistry:
        """Merge (or with ``replace=True`` swap in) a registry read from a path or an https URL.

        ``router.load_registry(...)`` changes that Router only; ``Router.load_registry(...)``
        changes the process-wide default registry that Routers without their own one use."""
        loaded = ModelRegistry.load(str(path_or_url))
        if isinstance(target, type):
            registry = default_registry()
            return registry.replace(loaded) if replace else registry.merge(loaded)
        with target._registry_lock:
            if replace:
                target._registry = loaded
            else:
                own = target.registry.copy()
                own.merge(loaded)
                target._registry = own
        return target._registry

    @property
    def cache(self) -> Any:
        """The decision cache (``cache_enabled`` / ``cache_backend``), or None."""
        return self._stores.cache if self._stores is not None else None

    @property
    def decision_logger(self) -> Any:
        """The decision log (``decision_logger``; ``.stats()`` counts written and dropped), or None."""
        return self._stores.logger if self._stores is not None else None

    def record_outcome(self, decision_id: str | Decision, score: float, *, model: str | None = None,
                       tier: ModelTier | str | None = None, notes: str | None = None,
                       tenant_config: Mapping[str, Any] | None = None) -> None:
        """Record how good the answer to a routed task was, beside the decision in the decision log
        (``score``: a finite number, 0..1 usually; ``model``/``tier``: what answered, when it was
        not the decision's own; ``tenant_config``: the tenant it is sent for, whose decisions alone
        it may rate). The record is written in the background like decisions; an unknown
        ``decision_id`` is stored too. :func:`dmr.store.outcomes.training_rows` turns a log with
        feedback into training rows for ``dmr train --outcomes``."""
        from dmr.store.outcomes import outcome_record
        from dmr.store.wiring import tenant_label

        record = outcome_record(decision_id, score, model=model, tier=tier, notes=notes,
                                tenant=tenant_label(tenant_config))
        if self._stores is None or self._stores.logger is None:
            raise ConfigError(
                "record_outcome needs a decision log to store outcomes beside the decisions: build the Router "
                "with decision_logger= (e.g. \"decisions.sqlite3\", a .jsonl path or SQLiteLogger(path)), "
                "or `decision_logger: decisions.sqlite3` in dmr.yaml",
                [("decision_logger", "not configured; record_outcome needs it")])
        self._stores.record_outcome(record)

    def fallbacks(self, decision: Decision, tenant_config: Mapping[str, Any] | None = None, *,
                  higher_tiers: bool = False, needs: Iterable[str] | None = None, text: str | None = None,
                  history: Sequence[Any] | None = None) -> list[tuple[str, str]]:
        """``(provider, model)`` pairs that may answer ``decision`` when its own provider fails: the
        model at the decision's tier of each other provider of the Router's ``providers`` list (or
        of ``tenant_config``'s, for a tenant's decision), in its order (with ``residency``, the
        Router's or the tenant's, only models in that region). Without a ``providers`` list (one
        ``provider``, or none) there are none: only a list names the providers allowed.
        ``higher_tiers``: then the decision's provider's models of each higher tier, lowest first,
        unless a budget capped the decision or now caps the tier, and never above the tenant's
        ``max_tier`` (:func:`dmr.policies.escalation_tiers`). ``needs``: as for :meth:`classify`,
        models the registry says cannot do one of them are left out. ``text`` (and ``history``):
        the task, as for :meth:`classify`; models whose context window cannot hold it with the
        planned answer are left out, as their providers would refuse it."""
        region = self._residency
        providers = self._providers
        if tenant_config:
            if region is None and tenant_config.get("residency"):
                region = normalise_region(tenant_config["residency"])
            if tenant_config.get("providers"):
                providers = list(tenant_config["providers"])
            elif tenant_config.get("provider"):
                providers = []
        out = []
        for provider in providers:
            if provider == decision.provider or provider not in self.registry.providers():
                continue
            pairs = self.registry.models_for(decision.tier, provider, region)
            if pairs:
                out.append(pairs[0])
        if higher_tiers and decision.provider in self.registry.providers():
            for tier in escalation_tiers(decision, tenant_config, self.budget):
                pairs = self.registry.models_for(tier, decision.provider, region)
                if pairs and pairs[0] not in out and pairs[0][1] != decision.model_name:
                    out.append(pairs[0])
        wanted = check_needs(needs)
        if wanted:
            out = [pair for pair in out if not lacking(self.registry, pair[1], wanted)]
        if text is not None:
            out = [pair for pair in out if not overflows(self.registry, pair[1], self._counter(pair[1]), text,
                                                          history, decision.complexity)]
        return out

    def close(self) -> None:
        """Flush the decision log, write the spend the budgets still hold, and release the cache's,
        the log's and the budgets' connections."""
        if self._stores is not None:
            self._stores.close()
        if self.budget is not None:
            self.budget.close()
        self._tenant_budgets.close()

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def metrics(self) -> Any:
        """This Router's :class:`~dmr.observability.Metrics` (``.registry``, ``.render()``,
        ``.serve(port)``), or None without ``metrics=``."""
        return self._telemetry.metrics if self._telemetry is not None else None

    def tenant_budget(self, tenant_id: str, limit_usd: float | None = None) -> Any:
        """The :class:`~dmr.budget.Budget` of a tenant (``.record_usd(usd)``, ``.spent_usd``,
        ``.reset()``): one that has passed ``budget_usd`` in its ``tenant_config``, or, with
        ``limit_usd``, opened (or re-capped) here with that cap."""
        return self._tenant_budgets.get(tenant_id, limit_usd)

    @property
    def residency(self) -> str | None:
        """The region every decision stays in (``residency``, normalised), or None."""
        return self._residency

    @property
    def telemetry(self) -> Any:
        """Where parts of this Router report what they measure (see :mod:`dmr.observability`)."""
        return self._telemetry if self._telemetry is not None else OFF

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
        valid = valid_unicode(task)
        if valid is not task:
            notes.append("input held lone surrogates (invalid Unicode); they were replaced with U+FFFD")
        return valid, notes

    def _layer_text(self, task: Any) -> str | None:
        """The text the layers see for ``task`` (before any pre-hook), or None if it is bad input."""
        try:
            text, _ = self._prepare(task)
        except InputError:
            return None
        return self._window(text, [])[0]

    def _window(self, text: str, ctx_notes: list[str]) -> tuple[str, bool]:
        limit = self._max_chars
        if len(text) <= limit:
            return text, False
        head = limit * 3 // 4
        tail = limit - head
        ctx_notes.append(f"analysed the first {head:,} and last {tail:,} of {len(text):,} characters (truncated)")
        return text[:head] + "\n…\n" + text[-tail:], True

    def _personal_data(self, detector: PIIDetector, text: str, history: Sequence[Any] | None) -> tuple[str, ...]:
        """The PII kinds in the task and in the client's turns of ``history`` (the model is sent
        both); raises :class:`PIIBlockedError` at the first hit when the policy blocks."""
        found: set[str] = set()
        for where, part in [("task", text), *((f"history[{i}]", t) for i, t in client_turns(history))]:
            kinds = detector.kinds(part)
            if kinds and self._pii_block:
                raise PIIBlockedError(f"{where} contains personal data ({', '.join(kinds)}) and the PII policy "
                                      "blocks it", kinds)
            found.update(kinds)
        return tuple(name for name in detector.names if name in found)

    def classify(self, task: Any, *, history: Sequence[Any] | None = None,
                 tenant_config: Mapping[str, Any] | None = None, needs: Iterable[str] | None = None) -> Decision:
        """Decide the tier and model for one task.

        ``history`` holds the conversation's earlier turns, as strings or as messages (mappings or
        objects with ``role`` and ``content``): the PII policy scans the client's turns of it, and
        it is part of the decision cache's key. ``needs`` names capabilities the call needs of its
        model (``"vision"``, ``"function_calling"``, ``"json_schema"``: the registry's
        ``supports_<name>``), which a model the registry says lacks is passed over for a higher tier
        (:mod:`dmr.context_fit`)."""
        if self._telemetry is None:
            return self._classify(task, history, tenant_config, needs)
        return self._telemetry.run(self._classify, task, history, tenant_config, needs)

    def _classify(self, task: Any, history: Sequence[Any] | None,
                  tenant_config: Mapping[str, Any] | None, needs: Iterable[str] | None = None) -> Decision:
        start = time.perf_counter()
        wanted = check_needs(needs)
        text, notes = self._prepare(task)
        # Read once, so that the cache, the policies and the follow-up floor all see all of it.
        history = turn_list(history)
        if tenant_config:
            check_tenant(tenant_config, residency=self._residency)
        window, truncated = self._window(text, notes)
        ctx = Context(text=window, length=len(text), truncated=truncated, history=history,
                      tenant_config=tenant_config, needs=wanted, notes=notes)
        if self._latency is not None:
            ctx.deadline = start + self.config.latency_budget_ms / 1e3
        try:
            for hook, arity in self._pre:
                replaced = call_hook(hook, arity, text, ctx)
                if isinstance(replaced, str) and replaced is not text:
                    text, more = self._prepare(replaced)
                    notes.extend(more)
                    ctx.text, ctx.truncated = self._window(text, notes)
                    ctx.length = len(text)
            stores = self._stores
            if stores is not None and stores.cache is not None:
                key = stores.key(text, ctx)
                decision = stores.lookup(key, start)
                if self._telemetry is not None:
                    self._telemetry.cache_lookup(decision is not None)
                if decision is None:
                    decision = stores.remember(key, self._decide(text, ctx, start))
            else:
                decision = self._decide(text, ctx, start)
        except Exception as exc:
            for hook, arity in self._on_error:
                fallback = call_hook(hook, arity, exc, ctx)
                if isinstance(fallback, Decision):
                    return fallback
            raise
        for hook, arity in self._post:
            replaced = call_hook(hook, arity, decision, ctx)
            if isinstance(replaced, Decision):
                decision = replaced
        if self._stores is not None and self._stores.logger is not None:
            self._stores.record(decision, text, ctx)
        return decision

    async def aclassify(self, task: Any, *, history: Sequence[Any] | None = None,
                        tenant_config: Mapping[str, Any] | None = None,
                        needs: Iterable[str] | None = None) -> Decision:
        """Async :meth:`classify`. Layers that wait on the network run off the event loop."""
        if any(getattr(layer, "blocking", False) for layer in self._layers):
            return await asyncio.to_thread(self.classify, task, history=history, tenant_config=tenant_config,
                                           needs=needs)
        return self.classify(task, history=history, tenant_config=tenant_config, needs=needs)

    def classify_batch(self, tasks: Iterable[Any], *, return_exceptions: bool = False) -> list[Any]:
        """Classify many tasks in order. With ``return_exceptions=True`` a task that raises (bad
        input, or an exception from a ``custom_classifier`` or, with ``strict=True``, a layer)
        yields its exception in place instead of stopping the batch, as ``asyncio.gather`` does."""
        out: list[Any] = []
        tasks = list(tasks)
        batched = [layer for layer in self._layers if callable(getattr(layer, "prime", None))]
        # A chunk at a time, so that what the layers work out up front stays small.
        for start in range(0, len(tasks), _BATCH_CHUNK):
            chunk = tasks[start:start + _BATCH_CHUNK]
            try:
                if batched:
                    self._prime(batched, chunk)
                for task in chunk:
                    try:
                        out.append(self.classify(task))
                    except Exception as exc:
                        if not return_exceptions:
                            raise
                        out.append(exc)
            finally:
                for layer in batched:
                    layer.unprime()
        return out

    def _prime(self, batched: list[Any], tasks: list[Any]) -> None:
        """Let the layers that can work on many texts at once (Layer 1, Layer 3's head) do so up
        front, on the texts they will be asked about: prepared and windowed as classify does.
        Layer 1 answers first, so that Layer 3 gets its signals and not the texts it decides."""
        seen = [window for window in map(self._layer_text, tasks) if window is not None]
        l1 = self._l1.prime(seen) if self._l1 in batched else None
        for layer in batched:
            if layer is self._l3 and l1 is not None:
                layer.prime(self._layer3_texts(seen, l1), {text: found[1] for text, found in l1.items()})
            elif layer is not self._l1:
                layer.prime(seen)

    def _layer3_texts(self, texts: list[str], l1: Mapping[str, tuple[Verdict, Any]]) -> list[str]:
        """Of ``texts``, which Layer 1 answered up front (``l1``), those Layer 3 may be asked
        about: all with a quality target (it reads Layer 3's difficulty when Layer 1 decides) or a
        latency budget (which may skip Layer 1), else those Layer 1 is not sure of."""
        if self._quality is not None or self._latency is not None:
            return texts
        threshold = self._thresholds["layer1"]
        return [text for text in texts if text not in l1 or l1[text][0].confidence < threshold]

    def train(self, data: str | Path | Iterable[str | Path], output: str | Path = "dmr-l3-head.npz", *,
              max_iter: int = 150, progress: Callable[[str, int, float], None] | None = None,
              capability: str | Path | Iterable[str | Path] | None = None,
              type_data: str | Path | Iterable[str | Path] | None = None) -> dict[str, Any]:
        """Train a Layer 3 head on labelled JSONL (``task, task_type, complexity``), leaving out and
        scoring the held-out split (sha256 of the task % 5 == 0), and write it to ``output``, on
        this Router's sentence encoder (``layer3_embedding_model``, else the shipped one); with
        ``capability`` (``task, needs`` rows) also its difficulty output; ``type_data`` (``task,
        task_type`` rows) teaches the task type only. This Router is unchanged;
        ``Router(layer3_head=report["path"])`` (with the same ``layer3_embedding_model``) uses the
        new head."""
        from dmr.ml.train import train_and_save

        return train_and_save(data, output, max_iter=max_iter, progress=progress,
                              encoder=self.config.layer3_embedding_model or "default", capability=capability,
                              type_data=type_data)

    def _run_layers(self, ctx: Context, *, local: bool = False) -> tuple[Verdict | None, bool, list[LayerStep]]:
        """The cascade on ``ctx``: the verdict, whether a layer was confident, and the trace.
        ``local``: only the layers that do not wait on the network, unobserved (an earlier turn of
        a conversation, not a decision)."""
        # Observers (metrics, spans, latency estimates) hear each step as the loop records it.
        trace: list[LayerStep] = [] if self._on_step is None or local else ObservedTrace(self._on_step)
        last: Verdict | None = None
        for layer in self._layers:
            if local and getattr(layer, "blocking", False):
                continue
            if ctx.deadline is not None and self._latency is not None:
                why = self._latency.skip(layer.name, (ctx.deadline - time.perf_counter()) * 1e3)
                if why is not None:
                    trace.append(LayerStep(layer.name, "skipped", None, 0.0, why))
                    continue
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
                    call_hook(hook, arity, exc, ctx)
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
            # With no layer confident, the last one consulted answers: layers run from cheap to
            # capable, each later one sees what the earlier found, and their confidences are not on
            # one scale (Layer 1's is a keyword margin, Layer 3's is calibrated), so comparing them
            # picked Layer 1's answer where it was right 40 % of the time.
            last = verdict
        return last, False, trace

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
        answered = verdict is not None
        if verdict is None:
            tier = self._default_tier
            verdict = Verdict(TaskType.REASONING, TaskComplexity.STANDARD, 0.0, 0.5, "default",
                              f"no layer answered; the default tier {tier} applies")
        else:
            tier = self._matrix.tier(verdict.task_type, verdict.complexity)
        reasons = [verdict.reasoning]
        if not confident and answered:
            reasons.append("no layer was confident, so the last one consulted answered")
        policies: list[str] = []
        raw_difficulty = verdict.difficulty
        # The quality target replaces the matrix's tier; every policy below still applies to it.
        # Without an outcome model it needs a layer's difficulty, so the default tier stays default.
        choice = self._quality_choice(ctx, verdict, trace, answered)
        if choice is not None:
            if choice.tier is not tier:
                choice = choice._replace(reason=f"{choice.reason}, instead of the tier matrix's {tier}")
            tier, raw_difficulty = choice.tier, choice.difficulty
            policies.append(choice.policy)
            reasons.append(choice.reason)
        if self._follow_ups is not None and ctx.history:
            l1 = ctx.signals.get("l1")
            floor = self._follow_ups.floor(text, ctx.history, trivial=bool(getattr(l1, "trivial", False)))
            if floor is not None and floor.tier.rank > tier.rank:
                tier, raw_difficulty = floor.tier, max(raw_difficulty, floor.difficulty)
                policies.append(f"follow_up_floor:{tier}")
                reasons.append(f"a short follow-up to history[{floor.index}], which needs {tier}: raised to {tier}")
        if self.budget is not None:
            tier = self.budget.apply(tier, policies, reasons)

        if self._pii is not None:
            kinds = self._personal_data(self._pii, text, ctx.history)
            if kinds:
                policies.append("pii_detected:" + ",".join(kinds))
                if self._pii_floor is not None and tier.rank < self._pii_floor.rank:
                    tier = self._pii_floor
                    policies.append(f"pii_floor:{tier}")
                    reasons.append(f"personal data found ({', '.join(kinds)}): raised to at least {tier}")

        provider = self._provider
        tenant = ctx.tenant_config
        if tenant:
            tier, provider = apply_tenant(tenant, tier, provider, policies, reasons)
            if tenant.get("budget_usd") is not None:
                tier = self._tenant_budgets.apply(tenant, tier, policies, reasons)
        if self._latency is not None:
            policies.extend(f"latency_skip:{step.layer}" for step in trace if step.outcome == "skipped")
        region = self._residency
        if region is None and tenant and tenant.get("residency"):
            region = normalise_region(tenant["residency"])
        if region is not None:
            pii = self._pii_floor is not None and any(p.startswith("pii_detected:") for p in policies)
            provider, _, tier = self._placer.place(self.registry, region, tier, provider, tenant, policies, reasons,
                                                   floor=self._pii_floor if pii else None)

        model = None
        cost = None
        # The highest tier the budgets and the tenant's max_tier allow: a tier at it is not substituted
        # upwards (the provider's nearest lower model first), and a floor that lifts a decision past it
        # says so.
        cost_cap = cost_ceiling(tenant, self._budgets_of(tenant))
        route = self._route(provider, tier, lower=cost_cap is not None and tier.rank >= cost_cap.rank)
        if route is not None:
            provider, model, used, price_in, price_out, count = route
            if used is not tier:
                policies.append(f"tier_substituted:{tier}->{used}")
                reasons.append(f"{provider} has no {tier} model; used its {used} model")
                tier = used
            capped_at = tier  # the ceiling is read only for an input that does not fit
            route = fit_context(route, self._route, self.registry, text, ctx.history, verdict.complexity, ctx.needs,
                                lambda: context_ceiling(capped_at, tenant, policies, self._budgets_of(tenant)),
                                region, policies, reasons)
            provider, model, tier, price_in, price_out, count = route
            if price_in is not None:
                cost = (count(text) * price_in + estimate_output_tokens(verdict.complexity) * price_out) / 1e6
        if cost_cap is not None and tier.rank > cost_cap.rank:
            # A floor that protects the data or the tenant's contract (the PII floor, min_tier, a
            # residency fallback, a model that must hold the input) wins over a cost cap: say so.
            lifted = [p for p in policies if not p.startswith(COST_CAPS) and ":" in p
                      and not p.startswith(("pii_detected:", "latency_skip:", "quality_target:"))]
            policies.append(f"above_cost_cap:{cost_cap}->{tier}")
            reasons.append(f"above the cost cap ({cost_cap}) because of {', '.join(lifted) or 'a later policy'}")
        reasons.extend(ctx.notes)
        # Banded in the final tier (after floors, caps and substitution), so that across all of this
        # Router's decisions a higher difficulty never comes with a cheaper tier.
        difficulty = band_difficulty(tier, raw_difficulty)
        return Decision(
            tier=tier, model_name=model, provider=provider, task_type=verdict.task_type,
            complexity=verdict.complexity, confidence=verdict.confidence, difficulty=difficulty,
            layer=verdict.layer, reasoning="; ".join(reasons) if len(reasons) > 1 else reasons[0],
            latency_ms=(time.perf_counter() - start) * 1e3, estimated_cost_usd=cost,
            decision_id=f"{self._id_prefix}{next(self._ids):016x}", policies_applied=tuple(policies), trace=tuple(trace),
        )

    def _budgets_of(self, tenant: Mapping[str, Any] | None) -> list[Any]:
        """The budgets a decision answers to: the Router's and its tenant's."""
        budgets = [self.budget] if self.budget is not None else []
        if tenant and tenant.get("budget_usd") is not None:
            budgets.append(self._tenant_budgets.get(tenant["tenant_id"], tenant["budget_usd"]))
        return budgets

    def _request_level(self, text: str) -> tuple[ModelTier, float] | None:
        """The tier and difficulty of an earlier request of a conversation, by the layers that need
        no network and without policies; None when no layer answers."""
        text = valid_unicode(text)
        window, truncated = self._window(text, [])
        ctx = Context(text=window, length=len(text), truncated=truncated)
        verdict, _, trace = self._run_layers(ctx, local=True)
        if verdict is None:
            return None
        choice = self._quality_choice(ctx, verdict, trace)
        if choice is not None:
            return choice.tier, choice.difficulty
        return self._matrix.tier(verdict.task_type, verdict.complexity), verdict.difficulty

    def _quality_choice(self, ctx: Context, verdict: Verdict, trace: Sequence[LayerStep],
                        answered: bool = True) -> QualityChoice | None:
        """The quality target's tier for ``verdict``, or None without a target. Without an outcome
        model it needs a layer's difficulty, so with no layer answering there is no choice."""
        if self._quality is None or not (answered or self._quality.learned):
            return None
        return self._choose_for_quality(ctx.text, self._target_difficulty(ctx, verdict, trace))

    def _target_difficulty(self, ctx: Context, verdict: Verdict, trace: Sequence[LayerStep]) -> float:
        """The difficulty a quality target reads. It picks the tier there, so when Layer 1 or 2
        decided, Layer 3's head is asked too (when it can run and the latency budget did not skip
        it): it is the layer trained to estimate how strong a model a task needs. An outcome model
        brings its own, so it is not asked then."""
        skipped = any(step.layer == "layer3" and step.outcome == "skipped" for step in trace)
        # Input Layer 1 calls trivial ("hi", "thanks") keeps its difficulty of 0.
        nothing = verdict.layer == "layer1" and bool(getattr(ctx.signals.get("l1"), "trivial", False))
        if (self._l3 is not None and verdict.layer in ("layer1", "layer2") and not skipped and not nothing
                and not self._quality.learned):  # type: ignore[union-attr]
            found = self._l3.difficulty(ctx.text, ctx)
            if found is not None:
                return found
        return verdict.difficulty

    def _choose_for_quality(self, text: str, difficulty: float) -> QualityChoice:
        quality = self._quality
        try:
            return quality.choose(text, difficulty)  # type: ignore[union-attr]
        except Exception as exc:  # a broken outcome model is a layer that failed: fall back, say so
            if self.config.strict:
                raise
            note = f"; the outcome model failed ({type(exc).__name__}: {exc}), so the difficulty prior was used"
            return quality.from_prior(difficulty, note)  # type: ignore[union-attr]

    def _route(self, provider: str | None, tier: ModelTier, lower: bool = False) -> tuple[Any, ...] | None:
        """(provider, model, tier used, input and output price per 1M tokens, token counter) for a
        provider (None: the registry's first) and tier, memoised until the registry, the tier
        levels or the registered tokenizers change."""
        registry = self.registry
        stamp = (id(registry), registry.revision, ModelTier._levels, _tokens.revision())
        if self._route_stamp != stamp:
            self._route_cache = {}
            self._route_stamp = stamp
        key = (provider, tier, lower)
        if key in self._route_cache:
            return self._route_cache[key]
        if provider is None:
            names = registry.providers()
            provider = names[0] if names else None
        route = None
        if provider is not None:
            model, used = registry.resolve(provider, tier, lower=lower)
            spec = registry.model(model)
            priced = spec is not None and spec.priced
            route = (provider, model, used, spec.input_per_1m if priced else None,
                     spec.output_per_1m if priced else None,
                     self._counter(model))
        self._route_cache[key] = route
        return route

    def _counter(self, model: str) -> Callable[[str], int]:
        """The token counter for ``model``: the Router's ``tokenizer`` when set, else the model's."""
        return self._count_tokens or _tokens.tokenizer_for(model)


def _budget(cfg: RouterConfig) -> Any:
    from dmr.budget import Budget

    return Budget(cfg.budget_usd, cfg.budget_policy, cfg.budget_store)


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
