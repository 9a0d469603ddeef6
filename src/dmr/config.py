"""One typed configuration for a Router, shared by ``Router(**options)`` and ``dmr.yaml``.

Every option is validated here, in one place, and every problem is reported at once with the path
of the bad key. Environment variables are read in :func:`env` only.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Callable, Collection, Literal, Mapping, Optional, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, create_model,
                      field_validator)

from dmr.errors import ConfigError

__all__ = ["ENV_VARS", "RouterConfig", "env", "load_yaml_options", "validate_options", "yaml_schema"]

# Every environment variable dmr reads, with what it does (listed in the README).
ENV_VARS: Mapping[str, str] = {
    "DMR_REGISTRY": "path or https URL of a registry YAML used instead of the bundled one",
    "DMR_NO_DEFAULT_REGISTRY": "1 to start from an empty registry instead of the bundled snapshot",
    "DMR_CONFIG_DIR": "directory for user state (persisted registry); default: the platform's config dir",
    "DMR_CONFIG": "path of a dmr.yaml that `dmr` commands load when --config is not given",
    "DMR_SERVER_API_KEY": "the key clients of `dmr serve` must send as a bearer token (unset: no key)",
}


def env() -> dict[str, str]:
    """The dmr environment variables that are set (the only place dmr reads its environment)."""
    return {name: os.environ[name] for name in ENV_VARS if os.environ.get(name, "") != ""}


def _not_boolean(value: Any) -> Any:
    # pydantic reads True as 1, so YAML's `yes`/`off` would silently become numbers.
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


_Number = Annotated[float, BeforeValidator(_not_boolean)]
_FiniteNumber = Annotated[float, BeforeValidator(_not_boolean), Field(allow_inf_nan=False)]


class RouterConfig(BaseModel):
    """Every Router option. YAML-representable values only are allowed in ``dmr.yaml``; objects
    (callables, packs, backends) are accepted from Python."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    # Routing target
    provider: Optional[str] = None
    providers: Optional[list[str]] = None
    tier_matrix: Optional[dict[str, dict[str, str]]] = None
    default_tier: str = "medium"
    quality_target: Optional[float] = Field(None, gt=0, le=1, allow_inf_nan=False)
    outcome_model: Any = None
    follow_up_floor: bool = True
    # Registry
    model_registry: Any = None
    registry: Optional[str] = None
    tokenizer: Any = None
    # Layer 1
    layer1_enabled: bool = True
    escalation_threshold: float = Field(0.7, ge=0, le=1, allow_inf_nan=False)
    l1_weights: Optional[dict[str, _FiniteNumber]] = None
    extra_keyword_packs: list[Any] = Field(default_factory=list)
    preset: Optional[str] = None
    # Layer 3
    layer3_enabled: Optional[bool] = None
    layer3_threshold: Optional[float] = Field(None, ge=0, le=1, allow_inf_nan=False)
    layer3_embedding_model: Optional[str] = None
    layer3_head: Optional[str] = None
    layer3_strategy: str = "tier"
    # Layer 2
    layer2_enabled: Optional[bool] = None
    layer2_provider: Optional[str] = None
    layer2_model: Optional[str] = None
    layer2_prompt_template: Optional[str] = None
    l2_retry_policy: Optional[dict[str, _Number]] = None
    l2_circuit_breaker: Optional[dict[str, _Number]] = None
    l2_rate_limit: Optional[dict[str, _Number]] = None
    layer2_base_url: Optional[str] = None
    layer2_timeout: float = Field(5.0, gt=0, le=600, allow_inf_nan=False)
    budget_usd: Optional[float] = Field(None, gt=0, allow_inf_nan=False)
    budget_policy: Optional[dict[str, Any]] = None
    budget_store: Optional[str] = None
    # Runtime
    cache_enabled: Optional[bool] = None
    cache_backend: Any = None
    decision_logger: Any = None
    custom_classifier: Optional[Union[Callable[..., Any], str]] = None
    pre_classify_hooks: list[Union[Callable[..., Any], str]] = Field(default_factory=list)
    post_classify_hooks: list[Union[Callable[..., Any], str]] = Field(default_factory=list)
    on_error_hooks: list[Union[Callable[..., Any], str]] = Field(default_factory=list)
    # Policies
    pii_policy: Optional[dict[str, Any]] = None
    extra_pii_patterns: Optional[Union[dict[str, str], list[str]]] = None
    pii_scrub: bool = False
    pii_scrub_strict: bool = False
    latency_budget_ms: Optional[float] = Field(None, gt=0, allow_inf_nan=False)
    residency: Optional[str] = None
    residency_fallback: Literal["error", "higher_tier", "nearest_tier"] = "error"
    # Telemetry (off by default; nothing leaves the machine unless an exporter is configured)
    metrics: Any = None
    otel: bool = False
    tracer_provider: Any = None
    # Behaviour
    strict: bool = False
    max_analysis_chars: int = Field(16_000, ge=1_000, le=10_000_000)

    @field_validator("pii_policy")
    @classmethod
    def _pii_policy(cls, value: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        if value is None:
            return value
        unknown = set(value) - {"min_tier", "block"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)} (known: min_tier, block)")
        if "block" in value and not isinstance(value["block"], bool):
            raise ValueError("block must be true or false")
        return value

    @field_validator("quality_target", "escalation_threshold", "layer3_threshold", "layer2_timeout", "budget_usd",
                     "latency_budget_ms", "max_analysis_chars", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        return _not_boolean(value)

    @field_validator("outcome_model")
    @classmethod
    def _outcome_model(cls, value: Any, info: ValidationInfo) -> Any:
        # quality_target is validated first (field order); if it was invalid it is reported itself.
        if value is not None and "quality_target" in info.data and info.data["quality_target"] is None:
            raise ValueError("needs quality_target (the share of the best tier's quality to aim for)")
        return value


def _problems_of(check: Callable[[], Any], path: str) -> list[ConfigError]:
    """The error a module's own check raises, given ``path`` when it names none."""
    from dmr.errors import NotAvailableError

    try:
        check()
    except NotAvailableError:
        return []  # a valid value this machine cannot run yet: the Router reports it when built
    except ConfigError as exc:
        return [exc if exc.problems else ConfigError(f"{path}: {exc}", [(path, str(exc))])]
    except ValueError as exc:
        return [ConfigError(f"{path}: {exc}", [(path, str(exc))])]
    return []


def unknown_providers(provider: Any, providers: Any, known: Collection[str]) -> list[tuple[str, str]]:
    """``(key, name)`` for ``provider`` and each of ``providers`` (key ``providers.<i>``) that the
    registry's ``known`` providers lack; what is not a name is left to type validation."""
    named = ([("provider", provider)] if isinstance(provider, str) else []) + (
        [(f"providers.{i}", p) for i, p in enumerate(providers) if isinstance(p, str)]
        if isinstance(providers, (list, tuple)) else [])
    return [(key, name) for key, name in named if name not in known]


def _registry_providers(options: Mapping[str, Any]) -> list[str]:
    """The providers of the registry the options name (the default one when none); [] when it
    cannot be read, which the Router reports itself."""
    from dmr.registry import ModelRegistry, default_registry

    source = options.get("model_registry")
    source = options.get("registry") if source is None else source
    try:
        if source is None:
            return list(default_registry().providers())
        if isinstance(source, ModelRegistry):
            return list(source.providers())
        if isinstance(source, Mapping):
            return list(ModelRegistry.from_dict(source).providers())
        return list(ModelRegistry.load(str(source)).providers())
    except Exception:  # noqa: BLE001 - reported by the Router with its own message
        return []


def _semantic_errors(options: Mapping[str, Any]) -> list[ConfigError]:
    """Problems the types cannot show (an unknown preset, tier, provider, ...), checked by the
    modules that own those names, so that they are listed with the type errors, all at once.
    Each check runs only on a value of the right type (a wrong type is reported by pydantic)."""
    from dmr.budget import Budget
    from dmr.layers.keywords import KeywordLayer
    from dmr.presets import load_preset
    from dmr.types import ModelTier
    from dmr.tokens import get_tokenizer

    problems: list[ConfigError] = []
    preset, weights, policy = options.get("preset"), options.get("l1_weights"), options.get("budget_policy")
    if isinstance(preset, str):
        problems += _problems_of(lambda: load_preset(preset), "preset")
    if isinstance(weights, Mapping):
        problems += _problems_of(lambda: KeywordLayer((), weights), "l1_weights")
    if isinstance(policy, Mapping):
        problems += _problems_of(lambda: Budget._check(policy), "budget_policy")
    if isinstance(options.get("default_tier"), str):
        problems += _problems_of(lambda: ModelTier(options["default_tier"]).rank, "default_tier")
    pii = options.get("pii_policy")
    min_tier = pii.get("min_tier") if isinstance(pii, Mapping) else None
    if isinstance(min_tier, str):
        problems += _problems_of(lambda: ModelTier(min_tier).rank, "pii_policy.min_tier")
    if isinstance(options.get("tokenizer"), str):
        problems += _problems_of(lambda: get_tokenizer(options["tokenizer"]), "tokenizer")
    provider, providers = options.get("provider"), options.get("providers")
    known = _registry_providers(options) if isinstance(provider, str) or providers else []
    if known:  # an empty registry knows no provider, so any name is allowed (decisions name tiers only)
        problems += [ConfigError(f"{path} {name!r} is not in the model registry (known: {', '.join(known)})",
                                 [(path, f"unknown provider {name!r}")])
                     for path, name in unknown_providers(provider, providers, known)]
    if isinstance(provider, str) and isinstance(providers, list) and providers and provider not in providers:
        why = f"{provider!r} is not among providers {providers} (the allowed ones; the first is preferred)"
        problems.append(ConfigError(f"provider: {why}", [("provider", why)]))
    return problems


def validate_options(options: Mapping[str, Any], *, source: str = "Router") -> RouterConfig:
    """Validate Router options, raising one ConfigError that lists every problem with its path."""
    problems: list[tuple[str, str]] = []
    try:
        config = RouterConfig.model_validate(dict(options))
    except ValidationError as exc:
        for error in exc.errors():
            path = ".".join(str(part) for part in error["loc"]) or "<root>"
            message = "unknown option" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append((path, message))
    typed = {path for path, _ in problems}  # a key with a type error is not checked twice
    errors = [e for e in _semantic_errors(options) if not typed & {path for path, _ in e.problems}]
    if errors and not problems and len(errors) == 1:
        raise errors[0]  # alone, a check's own error says most (e.g. the names it knows)
    problems += [problem for error in errors for problem in error.problems]
    if problems:
        raise ConfigError(
            f"invalid {source} configuration ({len(problems)} problem{'s' * (len(problems) > 1)}):\n"
            + "\n".join(f"  {path}: {message}" for path, message in problems),
            problems,
        ) from None
    return config


# In YAML, objects are named instead of passed: hooks and classifiers as "module:function",
# keyword packs as file paths or inline mappings, the registry as a path, URL or inline mapping.
_YAML_TYPES: Mapping[str, Any] = {
    "model_registry": Optional[Union[str, dict[str, Any]]],
    "tokenizer": Optional[str],
    "extra_keyword_packs": list[Union[str, dict[str, Any]]],
    "custom_classifier": Optional[str],
    "pre_classify_hooks": list[str],
    "post_classify_hooks": list[str],
    "on_error_hooks": list[str],
    "cache_backend": Optional[Union[str, dict[str, Any]]],
    "decision_logger": Optional[Union[str, dict[str, Any]]],
    "outcome_model": Optional[str],
    "metrics": Optional[bool],
}


# The options that are true or false in dmr.yaml; `decision_logger: false` turns the log off.
_SWITCH_OPTIONS = frozenset(name for name, info in RouterConfig.model_fields.items()
                            if _YAML_TYPES.get(name, info.annotation) in (bool, Optional[bool])) | {"decision_logger"}


def _read_switches(data: dict[str, Any]) -> None:
    """Read yes/no/on/off/y/n as booleans where ``data`` (a dmr.yaml) has a switch: the options in
    :data:`_SWITCH_OPTIONS`, ``pii_policy.block``, and the arguments of a ``{type: ...}`` cache or
    log backend, which dmr passes on untyped (``fsync: no``, ``allow_http: no``)."""
    from dmr.yamlfile import switch

    for name in _SWITCH_OPTIONS & set(data):
        data[name] = switch(data[name])
    policy = data.get("pii_policy")
    if isinstance(policy, dict) and "block" in policy:
        data["pii_policy"] = {**policy, "block": switch(policy["block"])}
    for name in ("cache_backend", "decision_logger"):
        if isinstance(data.get(name), dict):
            data[name] = {key: switch(value) for key, value in data[name].items()}


def yaml_schema() -> dict[str, Any]:
    """JSON schema of ``dmr.yaml`` (the YAML-representable form of RouterConfig)."""
    fields: dict[str, Any] = {}
    for name, info in RouterConfig.model_fields.items():
        annotation = _YAML_TYPES.get(name, info.annotation)
        fields[name] = (annotation, info)
    model = create_model("DmrYaml", __config__=ConfigDict(extra="forbid"), **fields)
    schema = model.model_json_schema()
    # `version` is the file format's, not a Router option (load_yaml_options removes it).
    schema["properties"] = {"version": {"const": 1, "default": 1, "title": "Version",
                                        "description": "Format version of this file"},
                            **schema["properties"]}
    schema["title"] = "dmr.yaml"
    schema["description"] = "Configuration of a dmr Router; every key is the Router option of the same name."
    return schema


def _import_module(name: str, beside: Any) -> Any:
    """Import ``name``; a module that Python cannot find is looked for in ``beside`` (the folder of
    the dmr.yaml naming it), so that a hooks file kept next to it needs no PYTHONPATH."""
    import importlib
    import sys

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        top = name.split(".")[0]
        if beside is None or exc.name != top or not any(
                (beside / candidate).exists() for candidate in (f"{top}.py", top)):
            raise
    sys.path.insert(0, str(beside))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(beside))


def _import_object(spec: str, path: str, problems: list[tuple[str, str]], beside: Any = None) -> Any:
    """Resolve ``"package.module:attribute"`` (how dmr.yaml names hooks and classifiers)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        problems.append((path, f"{spec!r}: expected 'module:attribute'"))
        return None
    try:
        target: Any = _import_module(module_name, beside)
        for part in attribute.split("."):
            target = getattr(target, part)
    except Exception as exc:  # noqa: BLE001 - whatever the module raises on import is a config problem
        problems.append((path, f"cannot import {spec!r}: {type(exc).__name__}: {exc}"))
        return None
    return target


def _unresolved(*_: Any) -> None:
    """Stands in for a hook that did not import (never called: the file does not load)."""


def load_yaml_options(path: Any) -> dict[str, Any]:
    """Read a ``dmr.yaml`` into Router options: relative paths are taken from the file's folder,
    ``module:attribute`` strings become the objects they name. All problems are reported at once."""
    from pathlib import Path

    import yaml

    from dmr import yamlfile
    from dmr.datafiles import not_utf8
    from dmr.packs import KeywordPack, load_pack_file
    from dmr.packs import _Loader as WordLoader

    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
        data = yamlfile.load(text) or {}
        if isinstance(data, dict) and data.get("extra_keyword_packs"):
            # Inline packs are word lists, where `no`/`yes` are words, not booleans.
            data["extra_keyword_packs"] = yaml.load(text, Loader=WordLoader)["extra_keyword_packs"]
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(not_utf8(file, exc)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of Router options")
    version = data.pop("version", 1)
    problems: list[tuple[str, str]] = []
    if isinstance(version, bool) or version != 1:
        problems.append(("version", f"unsupported dmr.yaml version {version!r} (this dmr reads version 1)"))
    _read_switches(data)
    base = file.resolve().parent

    def local(value: str) -> str:
        if "://" in value:
            return value
        candidate = Path(value).expanduser()
        return str(candidate if candidate.is_absolute() else base / candidate)

    for key in ("registry", "model_registry", "layer3_head", "outcome_model"):
        if isinstance(data.get(key), str):
            data[key] = local(data[key])
    store = data.get("budget_store")  # URLs (redis://, sqlite:///) and SQLite's ":memory:" are not paths
    if isinstance(store, str) and not store.startswith(":"):
        data["budget_store"] = local(store)
    encoder = data.get("layer3_embedding_model")
    # A name ("default", or a model in the local Hugging Face cache) is kept; a directory beside the
    # file, or one written as a path (./enc, ~/enc, /abs/enc), is found from the file's folder.
    if isinstance(encoder, str) and encoder not in ("default", "static") and (
            encoder.startswith((".", "~", "/")) or (base / encoder).exists()):
        data["layer3_embedding_model"] = local(encoder)
    log = data.get("decision_logger")  # a log file named in the file is found from the file's folder
    if isinstance(log, str) and log.lower() not in ("sqlite", "jsonl", "postgres", "kafka", "s3", "webhook"):
        data["decision_logger"] = local(log)
    elif isinstance(log, dict) and isinstance(log.get("path"), str):
        data["decision_logger"] = {**log, "path": local(log["path"])}
    cache = data.get("cache_backend")  # e.g. {type: sqlite, path: cache.sqlite3}
    if isinstance(cache, dict) and isinstance(cache.get("path"), str):
        data["cache_backend"] = {**cache, "path": local(cache["path"])}
    packs = []
    listed = data.get("extra_keyword_packs") or []
    if not isinstance(listed, list):
        problems.append(("extra_keyword_packs", "must be a list of pack file paths or inline packs"))
        listed = []
    for i, item in enumerate(listed):
        try:
            packs.append(load_pack_file(local(item)) if isinstance(item, str)
                         else KeywordPack.from_dict(item, source=f"extra_keyword_packs.{i}"))
        except ConfigError as exc:
            problems.append((f"extra_keyword_packs.{i}", str(exc)))
    if "extra_keyword_packs" in data:
        data["extra_keyword_packs"] = packs
    for key in ("pre_classify_hooks", "post_classify_hooks", "on_error_hooks"):
        hooks = data.get(key)
        if isinstance(hooks, list):
            # A hook that did not import keeps its place (as a stand-in), so that validation
            # names the true index of any other bad entry; its own problem is already listed.
            resolved = [_import_object(h, f"{key}.{i}", problems, base) if isinstance(h, str) else h
                        for i, h in enumerate(hooks)]
            data[key] = [_unresolved if (h is None and isinstance(hooks[i], str)) else h
                         for i, h in enumerate(resolved)]
    if isinstance(data.get("custom_classifier"), str):
        data["custom_classifier"] = _import_object(data["custom_classifier"], "custom_classifier", problems, base)
        if data["custom_classifier"] is None:
            del data["custom_classifier"]
    try:
        validate_options(data, source=file.name)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ConfigError(
            f"invalid {file.name}:\n" + "\n".join(f"  {p}: {m}" for p, m in problems), problems
        )
    return data
