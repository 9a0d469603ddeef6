"""The parts a :class:`~dmr.router.Router` is built from that depend only on its configuration:
keyword packs, its own model registry, the PII detector and policy, the hooks. Kept apart from
the Router so that the Router module holds the routing itself."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

from dmr.config import RouterConfig
from dmr.errors import ConfigError
from dmr.packs import KeywordPack, bundled_packs, load_pack_file
from dmr.pii import PIIDetector
from dmr.registry import ModelRegistry
from dmr.types import ModelTier

Hook = tuple[Callable[..., Any], int]  # a hook and how many positional arguments it takes


def keyword_packs(cfg: RouterConfig, preset: Any) -> tuple[KeywordPack, ...]:
    """The bundled packs, the preset's, then ``extra_keyword_packs`` (packs, paths or mappings)."""
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
    return tuple(packs)


def own_registry(cfg: RouterConfig) -> ModelRegistry | None:
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


class PIISetup(NamedTuple):
    detector: PIIDetector | None  # None: no PII policy and no patterns, nothing is scanned
    block: bool
    floor: ModelTier | None


def pii_setup(cfg: RouterConfig, preset: Any) -> PIISetup:
    """The detector (the preset's and the config's extra patterns) and the policy it enforces."""
    patterns = dict(preset.pii_patterns) if preset else {}
    if isinstance(cfg.extra_pii_patterns, Mapping):
        patterns.update(cfg.extra_pii_patterns)
    elif cfg.extra_pii_patterns:
        patterns.update({f"custom_{i}": p for i, p in enumerate(cfg.extra_pii_patterns, 1)})
    policy = cfg.pii_policy if cfg.pii_policy is not None else (preset.pii_policy if preset else None)
    floor = None
    if policy and policy.get("min_tier") is not None:
        try:
            floor = ModelTier(policy["min_tier"])
            floor.rank
        except ValueError as exc:
            raise ConfigError(f"pii_policy.min_tier: {exc}", [("pii_policy.min_tier", str(exc))]) from None
    detector = PIIDetector(patterns) if (policy is not None or patterns) else None
    return PIISetup(detector, bool((policy or {}).get("block", False)), floor)


def arity(fn: Callable[..., Any]) -> int:
    """How many positional arguments a hook takes (hooks may take the context or not)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty for p in params)


def call_hook(fn: Callable[..., Any], arity: int, *args: Any) -> Any:
    return fn(*args[:max(arity, 1)])


def hooks(cfg: RouterConfig) -> tuple[list[Hook], list[Hook], list[Hook]]:
    """The pre-classify, post-classify and on-error hooks with their arities; a ConfigError for a
    hook (or ``custom_classifier``) that is not callable."""
    pre, post, on_error = ([(h, arity(h)) for h in found] for found in
                           (cfg.pre_classify_hooks, cfg.post_classify_hooks, cfg.on_error_hooks))
    for name, found in (("pre_classify_hooks", pre), ("post_classify_hooks", post), ("on_error_hooks", on_error),
                        ("custom_classifier", [(cfg.custom_classifier, 0)])):
        for hook, _ in found:
            if hook is not None and not callable(hook):
                raise ConfigError(f"{name}: {hook!r} is not callable", [(name, "not callable")])
    return pre, post, on_error
