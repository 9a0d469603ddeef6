"""The model-registry format: the pydantic tree that checks a document, and the immutable
:class:`ProviderSpec`/:class:`ModelSpec` a registry hands out (with their document form).

A registry document is plain data (YAML or JSON)::

    version: "2026.11.01"
    note: optional free text
    providers:
      <name>: {api_key_env?, base_url?, regions?: [..], tiers: {<tier>: <model>}}
    models:
      <name>:
        cost?: {input_per_1m, output_per_1m}        # USD per million tokens
        capabilities?: {context_window?, supports_function_calling?, supports_vision?,
                        supports_json_schema?, <any other key>: bool | int | float | str}
        regions?: [US, EU, ...]
        provider?: <a name under providers>

A tier may name a model that has no entry under ``models:`` (or an entry without ``cost``): the
registry can still route to it, but cannot price it, so cost estimates for it are ``None``. That
keeps a routing-only registry short, and a price never has to be invented to make a file valid.

:func:`validate_document` reports every problem at once, each with the dotted path of the bad key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, Mapping, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from dmr.errors import RegistryFormatError
from dmr.types import ModelTier
from dmr.yamlfile import switch

# merge_*, *_spec and *_dict are helpers of dmr.registry, importable but not part of the API.
__all__ = [
    "ModelSpec",
    "ProviderSpec",
    "RegistryDocument",
    "key_from_env",
    "validate_cost",
    "validate_document",
    "validate_provider",
]

_REGION = re.compile(r"^[A-Z][A-Z0-9_-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _tier_name(value: str) -> str:
    levels = [str(level) for level in ModelTier.levels()]
    name = value.strip().lower()
    if name not in levels:
        raise ValueError(f"unknown tier {value!r} (tiers in force: {', '.join(levels)})")
    return name


def _name(value: str) -> str:
    if not value.strip() or value != value.strip():
        raise ValueError(f"{value!r} is not a usable name (empty or padded with spaces)")
    return value


def _region(value: str) -> str:
    region = value.strip().upper()
    if not _REGION.match(region):
        raise ValueError(f"{value!r} is not a region code (letters, digits, '_' or '-', e.g. 'EU')")
    return region


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


def _base_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def _scalar(value: Any) -> Any:
    if not isinstance(value, (bool, int, float, str)):
        raise ValueError(f"a capability must be a bool, number or string, not {type(value).__name__}")
    return value


def _switches(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    # Registry YAML has only true/false as booleans; a ``supports_<name>`` capability is a switch.
    return {key: switch(value) if isinstance(key, str) and key.startswith("supports_") else value
            for key, value in data.items()}


def _version(value: Any) -> Any:
    # YAML reads `version: 2026.05` as a float; a version is a label, so accept numbers as text.
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


Name = Annotated[str, AfterValidator(_name)]
TierName = Annotated[str, AfterValidator(_tier_name)]
Region = Annotated[str, AfterValidator(_region)]
Price = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class CostSpec(_Strict):
    input_per_1m: Price
    output_per_1m: Price


class Capabilities(BaseModel):
    # Providers keep inventing capabilities; unknown keys are kept as long as they are scalars.
    model_config = ConfigDict(extra="allow")
    _read_switches = model_validator(mode="before")(_switches)

    context_window: Annotated[int, Field(gt=0)] | None = None
    supports_function_calling: bool | None = None
    supports_vision: bool | None = None
    supports_json_schema: bool | None = None
    __pydantic_extra__: dict[str, Annotated[Any, AfterValidator(_scalar)]]


class ModelEntry(_Strict):
    cost: CostSpec | None = None
    capabilities: Capabilities | None = None
    regions: list[Region] = Field(default_factory=list)
    provider: Name | None = None


class ProviderEntry(_Strict):
    api_key_env: Annotated[str, AfterValidator(_env_name)] | None = None
    base_url: Annotated[str, AfterValidator(_base_url)] | None = None
    regions: list[Region] = Field(default_factory=list)
    tiers: dict[TierName, Name] = Field(default_factory=dict)


class RegistryDocument(_Strict):
    version: Annotated[str, BeforeValidator(_version), AfterValidator(_name)]
    note: str | None = None
    providers: dict[Name, ProviderEntry] = Field(default_factory=dict)
    models: dict[Name, ModelEntry] = Field(default_factory=dict)


def _problems(exc: ValidationError, prefix: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors(include_url=False):
        loc = prefix + tuple(str(part) for part in err["loc"] if part != "[key]")
        if err["type"] == "extra_forbidden":
            message = "unknown key (not part of the registry format)"
        elif err["type"] == "value_error" and "error" in err.get("ctx", {}):
            message = str(err["ctx"]["error"])
        else:
            message = err["msg"]
        out.append((".".join(loc) or "<top level>", message))
    return out


def _raise(source: str, problems: list[tuple[str, str]]) -> NoReturn:
    lines = "\n".join(f"  {path}: {message}" for path, message in problems)
    noun = "problem" if len(problems) == 1 else "problems"
    error = RegistryFormatError(f"{source}: {len(problems)} {noun} in the model registry:\n{lines}")
    error.problems = problems  # type: ignore[attr-defined]  # same shape as ConfigError.problems
    raise error


def _tier_collisions(path: str, tiers: Any) -> list[tuple[str, str]]:
    """Tier keys that differ only in case or spaces (``HIGH``, `` high``) name one tier, and which
    of their models wins would be an accident of order; they are an error, not a guess."""
    if not isinstance(tiers, dict):
        return []
    spellings: dict[str, list[str]] = {}
    for key in tiers:
        if isinstance(key, str):
            spellings.setdefault(key.strip().lower(), []).append(key)
    return [
        (path, f"tier keys {', '.join(map(repr, keys))} all name the tier {tier!r}; keep one")
        for tier, keys in spellings.items()
        if len(keys) > 1
    ]


def validate_document(data: Any, *, source: str = "<dict>") -> RegistryDocument:
    """Check a whole registry document; raise one :class:`RegistryFormatError` listing every problem."""
    if not isinstance(data, dict):
        _raise(source, [("<top level>", f"expected a mapping, got {type(data).__name__}")])
    problems: list[tuple[str, str]] = []
    document = None
    try:
        document = RegistryDocument.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems(exc))
    # Cross-references are checked on the raw data too, so that they are reported together with
    # any shape errors instead of only after those are fixed.
    providers = data.get("providers")
    models = data.get("models")
    if isinstance(providers, dict):
        for name, entry in providers.items():
            if isinstance(entry, dict):
                problems.extend(_tier_collisions(f"providers.{name}.tiers", entry.get("tiers")))
    if isinstance(models, dict):
        known = providers if isinstance(providers, dict) else {}
        for name, entry in models.items():
            owner = entry.get("provider") if isinstance(entry, dict) else None
            if isinstance(owner, str) and owner not in known:
                problems.append((f"models.{name}.provider", f"unknown provider {owner!r}"))
    if problems:
        _raise(source, problems)
    return document  # type: ignore[return-value]  # set whenever no problem was found


def validate_provider(
    name: str, entry: dict[str, Any], *, source: str = "<register_provider>"
) -> ProviderEntry:
    """Check one provider entry, reporting paths as ``providers.<name>....``."""
    problems: list[tuple[str, str]] = []
    try:
        _name(name)
    except ValueError as exc:
        problems.append((f"providers.{name}", str(exc)))
    try:
        provider = ProviderEntry.model_validate(entry)
    except ValidationError as exc:
        problems.extend(_problems(exc, ("providers", name)))
    problems.extend(_tier_collisions(f"providers.{name}.tiers", entry.get("tiers")))
    if problems:
        _raise(source, problems)
    return provider


def validate_cost(model: str, input_per_1m: Any, output_per_1m: Any) -> CostSpec:
    """Check one price pair, reporting paths as ``models.<model>.cost....``."""
    try:
        return CostSpec.model_validate({"input_per_1m": input_per_1m, "output_per_1m": output_per_1m})
    except ValidationError as exc:
        _raise("<register_model_cost>", _problems(exc, ("models", model, "cost")))


# -- the immutable specs a registry hands out, and their document form ----------------------------

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class ProviderSpec:
    """One provider: its model per tier (cheapest tier first), key variable, endpoint, regions."""

    name: str
    tiers: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False)
    api_key_env: str | None = None
    base_url: str | None = None
    regions: tuple[str, ...] = ()

    def api_key(self) -> str | None:
        """The key from ``api_key_env``, read now (never stored); None when unset or empty."""
        return key_from_env(self.api_key_env)


def key_from_env(variable: str | None) -> str | None:
    """A provider key from the environment variable a registry names (None: unset, empty or no
    variable): the one place dmr reads provider keys."""
    return (os.environ.get(variable) or None) if variable else None


@dataclass(frozen=True)
class ModelSpec:
    """One model. Prices are USD per million tokens, ``None`` when the registry has no price."""

    name: str
    input_per_1m: float | None = None
    output_per_1m: float | None = None
    context_window: int | None = None
    capabilities: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, hash=False)
    regions: tuple[str, ...] = ()
    provider: str | None = None

    @property
    def priced(self) -> bool:
        return self.input_per_1m is not None and self.output_per_1m is not None


def _tier_key(item: tuple[str, str]) -> int:
    levels = [str(level) for level in ModelTier.levels()]
    return levels.index(item[0]) if item[0] in levels else len(levels)


def provider_spec(name: str, entry: ProviderEntry) -> ProviderSpec:
    tiers = dict(sorted(entry.tiers.items(), key=_tier_key))
    return ProviderSpec(
        name, MappingProxyType(tiers), entry.api_key_env, entry.base_url, tuple(entry.regions)
    )


def model_spec(name: str, entry: ModelEntry) -> ModelSpec:
    caps = entry.capabilities.model_dump(exclude_none=True) if entry.capabilities else {}
    cost = entry.cost
    return ModelSpec(
        name,
        cost.input_per_1m if cost else None,
        cost.output_per_1m if cost else None,
        caps.get("context_window"),
        MappingProxyType(caps),
        tuple(entry.regions),
        entry.provider,
    )


def merge_provider(ours: ProviderSpec, theirs: ProviderSpec) -> ProviderSpec:
    tiers = dict(sorted({**ours.tiers, **theirs.tiers}.items(), key=_tier_key))
    return ProviderSpec(
        ours.name,
        MappingProxyType(tiers),
        theirs.api_key_env or ours.api_key_env,
        theirs.base_url or ours.base_url,
        theirs.regions or ours.regions,
    )


def merge_model(ours: ModelSpec, theirs: ModelSpec) -> ModelSpec:
    prices = theirs if theirs.priced else ours
    caps = {**ours.capabilities, **theirs.capabilities}
    return ModelSpec(
        ours.name,
        prices.input_per_1m,
        prices.output_per_1m,
        caps.get("context_window"),
        MappingProxyType(caps),
        theirs.regions or ours.regions,
        theirs.provider or ours.provider,
    )


def provider_dict(spec: ProviderSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if spec.api_key_env:
        out["api_key_env"] = spec.api_key_env
    if spec.base_url:
        out["base_url"] = spec.base_url
    if spec.regions:
        out["regions"] = list(spec.regions)
    out["tiers"] = dict(spec.tiers)
    return out


def model_dict(spec: ModelSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if spec.priced:
        out["cost"] = {"input_per_1m": spec.input_per_1m, "output_per_1m": spec.output_per_1m}
    if spec.capabilities:
        out["capabilities"] = dict(spec.capabilities)
    if spec.regions:
        out["regions"] = list(spec.regions)
    if spec.provider:
        out["provider"] = spec.provider
    return out
