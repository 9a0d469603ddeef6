"""How a Router uses its cache and decision log: building them from the options, the router's
fingerprint, and the log record of one decision.

The options accept objects (``cache_backend=RedisCache(...)``, ``decision_logger=SQLiteLogger(...)``)
or, as ``dmr.yaml`` can, names: ``decision_logger: sqlite`` (the default path), a file path
(``.jsonl`` → JSONL, anything else → SQLite), a URL (``postgresql://``, ``kafka://``, ``s3://``,
``https://``: :func:`log_from_url`), or a mapping ``{type: postgres, dsn: ...}`` whose other keys
are the backend's constructor arguments. Backends are found by name in ``BACKENDS``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from functools import partial
from pathlib import Path
from typing import Any, Mapping

from dmr.errors import ConfigError
from dmr.store.cache import Cache, MemoryCache, cache_key, from_cache
from dmr.store.logger import BufferedLogger
from dmr.types import Decision, ModelTier

__all__ = ["BACKENDS", "RouterStores", "build_stores", "default_log_path", "log_file", "log_from_url"]

# name -> "module:class" (imported on first use so optional clients load only when used)
BACKENDS: Mapping[str, str] = {
    "memory": "dmr.store.cache:MemoryCache",
    "redis": "dmr.store.redis_cache:RedisCache",
    "sqlite": "dmr.store.sqlite:SQLiteLogger",
    "jsonl": "dmr.store.jsonl:JSONLLogger",
    "postgres": "dmr.store.postgres:PostgresLogger",
    "kafka": "dmr.store.kafka:KafkaLogger",
    "s3": "dmr.store.s3:S3Logger",
    "webhook": "dmr.store.webhook:WebhookLogger",
}
# Options that do not change a decision, so they are left out of the router's fingerprint.
_RUNTIME_OPTIONS = frozenset({"cache_enabled", "cache_backend", "decision_logger", "pii_scrub", "pii_scrub_strict",
                              "metrics", "otel", "tracer_provider"})


def default_log_path() -> Path:
    """The SQLite decision log used by ``decision_logger="sqlite"`` and read by ``dmr stats``:
    ``decisions.sqlite3`` in dmr's config directory (``DMR_CONFIG_DIR`` when set)."""
    from dmr.registry import user_registry_path

    return user_registry_path().parent / "decisions.sqlite3"


def _backend_class(name: str, option: str) -> Any:
    import importlib

    spec = BACKENDS.get(str(name).lower())
    if spec is None:
        raise ConfigError(f"{option}: unknown backend {name!r} (known: {', '.join(BACKENDS)})",
                          [(option, f"unknown backend {name!r}")])
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def _from_mapping(spec: Mapping[str, Any], option: str) -> Any:
    kwargs = dict(spec)
    kind = kwargs.pop("type", None)
    if kind is None:
        raise ConfigError(f"{option}: a mapping needs a `type` ({', '.join(BACKENDS)})", [(option, "missing type")])
    try:
        return _backend_class(kind, option)(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{option}: {exc}", [(option, str(exc))]) from None


def build_cache(cfg: Any) -> Cache | None:
    backend = cfg.cache_backend
    if cfg.cache_enabled is False:
        return None
    if backend is None:
        return MemoryCache() if cfg.cache_enabled else None
    if isinstance(backend, Mapping):
        return _from_mapping(backend, "cache_backend")
    if isinstance(backend, str):
        if backend.startswith(("redis://", "rediss://", "unix://")):
            return _backend_class("redis", "cache_backend")(url=backend)
        return _backend_class(backend, "cache_backend")()
    if not (callable(getattr(backend, "get", None)) and callable(getattr(backend, "set", None))):
        raise ConfigError("cache_backend: needs get(key) and set(key, decision) methods",
                          [("cache_backend", "not a cache")])
    return backend


_URL_SCHEMES = ("postgresql", "postgres", "kafka", "s3", "https")


def log_from_url(url: str) -> Any:
    """The logger a URL names: ``postgresql://…`` (a libpq URL; table ``dmr_decisions``),
    ``kafka://host:port[,host:port]/topic``, ``s3://bucket/prefix/`` (S3 credentials and
    ``AWS_ENDPOINT_URL`` come from the environment, as boto3 reads them) or ``https://…`` (a
    webhook); None for a string without ``scheme://``. Raises :class:`~dmr.errors.InputError` for
    another scheme or a URL missing its parts."""
    from dmr.errors import InputError

    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        return None
    if scheme not in _URL_SCHEMES:
        raise InputError(f"{url!r}: a decision log URL starts with {', '.join(s + '://' for s in _URL_SCHEMES)}")
    if scheme in ("postgresql", "postgres"):
        from dmr.store.postgres import PostgresLogger

        return PostgresLogger(url)
    if scheme == "https":
        from dmr.store.webhook import WebhookLogger

        return WebhookLogger(url)
    where, _, name = rest.partition("/")
    if not where:
        raise InputError(f"{url!r}: expected {scheme}://{'bucket/prefix/' if scheme == 's3' else 'host:port/topic'}")
    if scheme == "s3":
        from dmr.store.s3 import S3Logger

        return S3Logger(where, prefix=name) if name else S3Logger(where)
    if not name:
        raise InputError(f"{url!r}: a Kafka log URL names its topic, kafka://host:port/topic")
    from dmr.store.kafka import KafkaLogger

    return KafkaLogger(where, name)


def build_logger(cfg: Any) -> BufferedLogger | None:
    spec = cfg.decision_logger
    if spec is None or spec is False:
        return None
    if isinstance(spec, Mapping):
        return _from_mapping(spec, "decision_logger")
    if isinstance(spec, (str, Path)):
        text = str(spec)
        if text.lower() in BACKENDS and text.lower() not in ("memory", "redis"):
            cls = _backend_class(text, "decision_logger")
            if text.lower() == "sqlite":
                return cls(default_log_path())
            try:
                return cls()
            except TypeError:
                urls = ", ".join(f"{scheme}://…" for scheme in _URL_SCHEMES)
                raise ConfigError(f"decision_logger: {text!r} needs its settings: a URL ({urls}) or a mapping "
                                  f"{{type: {text.lower()}, …}} with the arguments of {cls.__name__}",
                                  [("decision_logger", "settings missing")]) from None
        if isinstance(spec, str) and "://" in text:
            try:
                return log_from_url(text)
            except (ValueError, TypeError) as exc:  # InputError is a ValueError
                raise ConfigError(f"decision_logger: {exc}", [("decision_logger", str(exc))]) from None
        path = Path(text).expanduser()
        kind = "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "sqlite"
        return _backend_class(kind, "decision_logger")(path)
    if not callable(getattr(spec, "log", None)):
        raise ConfigError("decision_logger: needs a log(record) method (see dmr.store.BufferedLogger)",
                          [("decision_logger", "not a decision logger")])
    return spec


def log_file(spec: Any) -> Path | None:
    """The file a ``decision_logger`` option writes to, when it is a SQLite or JSONL log."""
    if isinstance(spec, (str, Path)):
        text = str(spec)
        if text.lower() == "sqlite":
            return default_log_path()
        return None if text.lower() in BACKENDS or "://" in text else Path(text).expanduser()
    if isinstance(spec, Mapping) and str(spec.get("type", "")).lower() in ("sqlite", "jsonl") and spec.get("path"):
        return Path(str(spec["path"])).expanduser()
    path = getattr(spec, "path", None)
    return Path(path) if isinstance(spec, BufferedLogger) and path is not None else None


def _stable(value: Any) -> Any:
    """A JSON-able, process-independent stand-in for an object in the configuration."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return value.to_dict()
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__qualname__)}"
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _file_stamp(path: Any) -> Any:
    """Size and modification time of a file named in the configuration (None: no such file)."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    try:
        stat = os.stat(os.path.expanduser(path))
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _dmr_version() -> str:
    from dmr import __version__

    return __version__


class RouterStores:
    """A Router's cache and decision log, and what it needs to key and record decisions."""

    def __init__(self, router: Any, cache: Cache | None, logger: BufferedLogger | None) -> None:
        self.router = router
        self.cache = cache
        self.logger = logger
        self._config_fingerprint: str | None = None
        cfg = router.config
        self._scrubber = None
        if cfg.pii_scrub or cfg.pii_scrub_strict:
            from dmr.pii import PIIDetector

            # Strict scrubbing also removes the preset's and the user's own patterns.
            self._scrubber = router._pii if cfg.pii_scrub_strict and router._pii is not None else PIIDetector()

    # -- fingerprints ----------------------------------------------------------------------------
    @property
    def config_fingerprint(self) -> str:
        """Hash of everything but the registry that shapes a decision: options, packs, layers, tiers."""
        if self._config_fingerprint is None:
            router = self.router
            cfg = router.config
            options = {name: getattr(cfg, name) for name in type(cfg).model_fields if name not in _RUNTIME_OPTIONS}
            options.pop("model_registry", None)
            options.pop("registry", None)
            blob = json.dumps({
                "options": options,
                "packs": [pack.to_dict() for pack in router.packs],
                "layers": [f"{layer.name}:{type(layer).__module__}.{type(layer).__qualname__}"
                           for layer in router._layers],
                "tiers": [str(t) for t in ModelTier.levels()],
                # What a path in the options does not say: the files behind it, retrained in place,
                # and the dmr release (whose shipped head and packs decide too).
                "outcome_model": _stable(model) if (model := getattr(router._quality, "model", None)) is not None else None,
                "layer3_head": _file_stamp(cfg.layer3_head),
                "dmr": _dmr_version(),
            }, sort_keys=True, default=_stable, ensure_ascii=False)
            self._config_fingerprint = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
        return self._config_fingerprint

    def fingerprint(self) -> str:
        return f"{self.config_fingerprint}:{self.router.registry.fingerprint}"

    # -- cache -----------------------------------------------------------------------------------
    def key(self, text: str, ctx: Any) -> str:
        return cache_key(text, ctx.history, ctx.tenant_config, self.fingerprint(), ctx.needs,
                         self._budget_state(ctx.tenant_config))

    def _budget_state(self, tenant: Any) -> str:
        """The stage the Router's budget and the tenant's have reached (the tier each allows, and
        whether it is spent): a decision cached before a cap or a stop must not be served after it."""
        return ";".join(f"{budget.ceiling() or '-'}{'!' if budget.stopped else ''}"
                        for budget in self.router._budgets_of(tenant))

    def lookup(self, key: str, start: float) -> Decision | None:
        cached = self.cache.get(key)  # type: ignore[union-attr]
        if cached is None:
            return None
        router = self.router
        decision_id = f"{router._id_prefix}{next(router._ids):016x}"
        return from_cache(cached, decision_id, (time.perf_counter() - start) * 1e3)

    def remember(self, key: str, decision: Decision) -> Decision:
        self.cache.set(key, decision)  # type: ignore[union-attr]
        return decision

    # -- decision log ------------------------------------------------------------------------------
    def record(self, decision: Decision, text: str, ctx: Any) -> None:
        """Queue the log record of one decision; it is built off the decision path."""
        try:
            item: Any = partial(self._record, decision, text, ctx.tenant_config, len(ctx.history or ()),
                                time.time(), self.router.registry)
            if not isinstance(self.logger, BufferedLogger):
                item = item()  # a plain logger gets the finished record
            self.logger.log(item)  # type: ignore[union-attr]
        except Exception as exc:  # a custom logger that raises must not fail the decision
            import logging

            logging.getLogger("dmr.store").warning("dmr: the decision logger failed: %s", exc)

    def record_outcome(self, record: dict[str, Any]) -> None:
        """Queue an outcome record (``dmr.store.outcomes``) on the decision log. Unlike a decision's
        record, a failure here reaches the caller: feedback is never dropped without a word."""
        if self._scrubber is not None and record.get("notes"):
            record = {**record, "notes": self._scrubber.scrub(record["notes"])}
        if getattr(self.logger, "closed", False):
            from dmr.errors import DmrError

            raise DmrError("the decision log is closed (router.close() or the end of its `with` block); "
                           "record outcomes before closing the Router")
        self.logger.log(record)  # type: ignore[union-attr]

    def _record(self, decision: Decision, text: str, tenant: Mapping[str, Any] | None, turns: int, ts: float,
                registry: Any) -> dict[str, Any]:
        return build_record(decision, text, tenant=tenant, history_turns=turns, ts=ts, registry=registry,
                            config_fingerprint=self.config_fingerprint, scrubber=self._scrubber)

    def close(self) -> None:
        if self.logger is not None and callable(getattr(self.logger, "close", None)):
            self.logger.close()
        if self.cache is not None and callable(getattr(self.cache, "close", None)):
            self.cache.close()


def tenant_label(tenant: Mapping[str, Any] | None) -> str | None:
    """The name a tenant config goes by in the decision log (``tenant_id``, ``tenant`` or ``name``,
    else a digest of the config); None for no tenant."""
    if not tenant:
        return None
    for key in ("tenant_id", "tenant", "name"):
        if tenant.get(key):
            return str(tenant[key])
    return "anon:" + hashlib.sha256(json.dumps(dict(tenant), sort_keys=True, default=str).encode()).hexdigest()[:8]


def high_tier_cost(decision: Decision, text: str, registry: Any) -> float | None:
    """What the same task would have cost at the highest tier of the decision's provider."""
    from dmr.tokens import count_tokens, estimate_output_tokens

    if decision.provider is None:
        return None
    try:
        model, _ = registry.resolve(decision.provider, ModelTier.levels()[-1])
        return registry.estimate_cost(model, count_tokens(text, model), estimate_output_tokens(decision.complexity))
    except Exception:
        return None


def build_record(decision: Decision, text: str, *, tenant: Mapping[str, Any] | None = None, history_turns: int = 0,
                 ts: float | None = None, registry: Any = None, config_fingerprint: str | None = None,
                 scrubber: Any = None) -> dict[str, Any]:
    """The decision log record: the decision, its layer trace with per-layer latency, the
    config/registry fingerprints, estimated cost (and at the high tier), tenant, and the task text
    (PII-scrubbed when a scrubber is given)."""
    record = decision.to_dict()
    record["ts"] = ts if ts is not None else time.time()
    record["layer_latency_ms"] = {step["layer"]: step["latency_ms"] for step in record["trace"]}
    record["cached"] = "cache_hit" in decision.policies_applied
    record["tenant"] = tenant_label(tenant)
    record["tenant_config"] = json.loads(json.dumps(dict(tenant), default=str)) if tenant else None
    record["history_turns"] = history_turns
    record["config_fingerprint"] = config_fingerprint
    record["registry_fingerprint"] = registry.fingerprint if registry is not None else None
    record["registry_version"] = registry.version if registry is not None else None
    record["high_tier_cost_usd"] = high_tier_cost(decision, text, registry) if registry is not None else None
    record["task_chars"] = len(text)
    record["pii_scrubbed"] = scrubber is not None
    record["task"] = scrubber.scrub(text) if scrubber is not None else text
    if scrubber is not None:
        record["reasoning"] = scrubber.scrub(record["reasoning"])
    return record


def build_stores(router: Any, cfg: Any) -> RouterStores | None:
    cache = build_cache(cfg)
    logger = build_logger(cfg)
    if cache is None and logger is None:
        return None
    return RouterStores(router, cache, logger)
