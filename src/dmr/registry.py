"""The model registry: the model each provider offers at each tier, its price and capabilities.

No model name or price lives in code; it all comes from a registry document (format and rules in
:mod:`dmr.registry_schema`). The process-wide default registry is built on first use:

1. ``DMR_REGISTRY`` set → that path or https URL, and nothing else;
2. otherwise the bundled ``dmr/data/registry/default.yaml`` — or an empty registry when
   ``DMR_NO_DEFAULT_REGISTRY`` is ``1``/``true``/``yes`` —
   with the user's saved registry (``dmr models load``/``pull``) merged on top, or replacing it
   when it was saved with ``--replace``. It lives in ``platformdirs.user_config_dir("dmr")``, or in
   ``DMR_CONFIG_DIR`` when that is set.

The module-level :func:`register_provider` and :func:`register_model_cost` change that default
registry in place, so every router using it sees the change.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import re
import secrets
import ssl
import threading
from collections.abc import Iterator
from dataclasses import replace as _replace_fields
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import yaml

from dmr import yamlfile
from dmr.errors import RegistryError, RegistryFormatError, UnknownProviderError
from dmr.registry_schema import (
    ModelSpec,
    ProviderSpec,
    merge_model,
    merge_provider,
    model_dict,
    model_spec,
    provider_dict,
    provider_spec,
    validate_cost,
    validate_document,
    validate_provider,
)
from dmr.types import ModelTier

__all__ = [
    "ModelRegistry",
    "ModelSpec",
    "ProviderSpec",
    "clear_user_registry",
    "default_registry",
    "read_user_registry",
    "register_model_cost",
    "register_provider",
    "registry_changes",
    "reset_default_registry",
    "save_user_registry",
    "update_user_registry",
    "user_registry_in_effect",
    "user_registry_path",
    "write_atomically",
]


class _Content(NamedTuple):
    version: str
    note: str | None
    providers: dict[str, ProviderSpec]
    models: dict[str, ModelSpec]
    source: str


class ModelRegistry:
    """Providers × tiers → models, with prices and capabilities. Safe to share between threads:
    every read and write holds an internal lock, and what queries return is immutable."""

    def __init__(self, *, version: str = "0", note: str | None = None, source: str = "<empty>") -> None:
        self._lock = threading.RLock()
        self._version = version
        self._note = note
        self._providers: dict[str, ProviderSpec] = {}
        self._models: dict[str, ModelSpec] = {}
        self._fingerprint: str | None = None
        # Bumped on every change, so callers can cache answers cheaply (the Router does).
        self.revision = 0
        self.source = source  # where the content came from; informational, not part of the fingerprint

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def empty(cls) -> ModelRegistry:
        return cls()

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<dict>") -> ModelRegistry:
        """Validate a registry document (every problem reported at once) and build a registry."""
        document = validate_document(data, source=source)
        registry = cls(version=document.version, note=document.note, source=source)
        registry._providers = {n: provider_spec(n, e) for n, e in document.providers.items()}
        registry._models = {n: model_spec(n, e) for n, e in document.models.items()}
        return registry

    @classmethod
    def from_text(cls, text: str, *, source: str = "<text>") -> ModelRegistry:
        try:
            data = yamlfile.load(text)
        except yaml.YAMLError as exc:
            raise RegistryFormatError(f"{source}: not valid YAML: {exc}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> ModelRegistry:
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RegistryError(f"{path}: no such registry file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RegistryError(f"{path}: cannot read the registry file ({exc})") from None
        return cls.from_text(text, source=str(path))

    @classmethod
    def load(
        cls,
        path_or_url: str | os.PathLike[str],
        *,
        timeout: float = 10.0,
        max_bytes: int = 1_000_000,
        verify: Any = True,
    ) -> ModelRegistry:
        """Load a local file, or fetch an ``https://`` URL (no other scheme) of at most
        ``max_bytes``. ``verify`` is True, a CA bundle path or an ``ssl.SSLContext``. Nothing is
        returned unless the whole document validates."""
        target = os.fspath(path_or_url)
        scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", target)
        if scheme is None:
            return cls.from_yaml(target)
        if scheme.group(1).lower() != "https":
            raise RegistryError(
                f"refusing to load a registry from {target!r}: only https:// URLs or local paths"
            )
        return cls.from_text(_fetch_https(target, timeout, max_bytes, verify), source=target)

    @classmethod
    def bundled(cls) -> ModelRegistry:
        """The snapshot shipped in the package — prices go stale; override it in production."""
        resource = resources.files("dmr") / "data" / "registry" / "default.yaml"
        return cls.from_text(resource.read_text(encoding="utf-8"), source="bundled")

    # -- queries --------------------------------------------------------------------------------

    @property
    def version(self) -> str:
        return self._version

    @property
    def note(self) -> str | None:
        return self._note

    def providers(self) -> list[str]:
        with self._lock:
            return list(self._providers)

    def provider(self, name: str) -> ProviderSpec:
        with self._lock:
            spec = self._providers.get(name)
            if spec is None:
                close = difflib.get_close_matches(name, list(self._providers), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                known = ", ".join(self._providers) or "none"
                raise UnknownProviderError(f"unknown provider {name!r} (registered: {known}){hint}")
            return spec

    def model(self, name: str) -> ModelSpec | None:
        with self._lock:
            return self._models.get(name)

    def models(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def resolve(self, provider: str, tier: ModelTier | str, *, lower: bool = False) -> tuple[str, ModelTier]:
        """The provider's model for ``tier`` and the tier actually used: that tier if the provider
        has it, else its nearest higher tier (never answer worse than asked), else the nearest lower;
        with ``lower`` (a cost cap holds the tier), the nearest lower first."""
        wanted = _tier(tier)
        spec = self.provider(provider)
        levels = ModelTier.levels()
        offered = {level: spec.tiers[level.value] for level in levels if level.value in spec.tiers}
        if not offered:
            raise RegistryError(
                f"provider {provider!r} has no model for any tier in force ({', '.join(levels)})"
            )
        if wanted in offered:
            return offered[wanted], wanted
        higher = [level for level in levels if level > wanted and level in offered]
        below = [level for level in levels if level < wanted and level in offered]
        if lower and below:
            return offered[below[-1]], below[-1]
        used = higher[0] if higher else below[-1]
        return offered[used], used

    def models_for(
        self, tier: ModelTier | str, provider: str | None = None, region: str | None = None
    ) -> list[tuple[str, str]]:
        """``(provider, model)`` pairs offering exactly ``tier``, optionally for one provider and
        only models available in ``region`` (see :meth:`regions_of`)."""
        wanted = _tier(tier).value
        with self._lock:
            names = [self.provider(provider).name] if provider is not None else list(self._providers)
            pairs = [
                (n, self._providers[n].tiers[wanted]) for n in names if wanted in self._providers[n].tiers
            ]
            if region is not None:
                pairs = [(p, m) for p, m in pairs if region.upper() in self.regions_of(m, provider=p)]
            return pairs

    def tiers_of(self, model: str, *, provider: str) -> tuple[ModelTier, ...]:
        """The tiers at which ``provider`` uses ``model``, lowest first (:class:`UnknownProviderError`
        for a provider the registry lacks)."""
        return tuple(sorted((ModelTier(tier) for tier, name in self.provider(provider).tiers.items() if name == model),
                            key=lambda tier: tier.rank))

    def regions_of(self, model: str, *, provider: str | None = None) -> tuple[str, ...]:
        """The model's own regions; else those of ``provider``, of the model's ``provider:``, or of
        every provider naming it. Empty means the registry does not know — treat it as "nowhere"."""
        with self._lock:
            spec = self._models.get(model)
            if spec is not None and spec.regions:
                return spec.regions
            owner = provider or (spec.provider if spec is not None else None)
            if owner is not None:
                return self._providers[owner].regions if owner in self._providers else ()
            union: dict[str, None] = {}
            for p in self._providers.values():
                if model in p.tiers.values():
                    union.update(dict.fromkeys(p.regions))
            return tuple(union)

    def estimate_cost(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        """USD for one call, or ``None`` when the model has no price in this registry."""
        if input_tokens < 0 or output_tokens < 0:
            raise ValueError("token counts cannot be negative")
        spec = self.model(model)
        if spec is None or not spec.priced:
            return None
        return (input_tokens * spec.input_per_1m + output_tokens * spec.output_per_1m) / 1_000_000  # type: ignore[operator]

    @property
    def fingerprint(self) -> str:
        """Short sha256 of the canonical content: equal content, equal fingerprint."""
        with self._lock:
            if self._fingerprint is None:
                blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                self._fingerprint = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
            return self._fingerprint

    # -- mutation -------------------------------------------------------------------------------

    def register_provider(
        self,
        name: str,
        tiers: Mapping[ModelTier | str, str],
        *,
        api_key_env: str | None = None,
        base_url: str | None = None,
        regions: list[str] | tuple[str, ...] | str | None = None,
    ) -> ProviderSpec:
        """Add a provider, or merge ``tiers`` (and any non-None option) into an existing one."""
        entry: dict[str, Any] = {
            "tiers": {str(k): v for k, v in tiers.items()} if isinstance(tiers, Mapping) else tiers
        }
        for key, value in (("api_key_env", api_key_env), ("base_url", base_url)):
            if value is not None:
                entry[key] = value
        if regions is not None:
            entry["regions"] = [regions] if isinstance(regions, str) else list(regions)
        spec = provider_spec(name, validate_provider(name, entry))
        with self._lock:
            existing = self._providers.get(name)
            self._providers[name] = merge_provider(existing, spec) if existing else spec
            self._fingerprint = None
            self.revision += 1
            return self._providers[name]

    def register_model_cost(self, model: str, *, input_per_1m: float, output_per_1m: float) -> ModelSpec:
        """Set a model's price (USD per million tokens), adding the model if it is new."""
        cost = validate_cost(model, input_per_1m, output_per_1m)
        with self._lock:
            spec = self._models.get(model) or ModelSpec(model)
            spec = _replace_fields(spec, input_per_1m=cost.input_per_1m, output_per_1m=cost.output_per_1m)
            self._models[model] = spec
            self._fingerprint = None
            self.revision += 1
            return spec

    def merge(self, other: ModelRegistry) -> ModelRegistry:
        """Lay ``other`` over this registry: its tiers, prices, capabilities and settings win;
        what it does not mention stays. Returns ``self``."""
        theirs = other._content()
        with self._lock:
            for name, spec in theirs.providers.items():
                ours = self._providers.get(name)
                self._providers[name] = merge_provider(ours, spec) if ours else spec
            for name, model in theirs.models.items():
                known = self._models.get(name)
                self._models[name] = merge_model(known, model) if known else model
            self._version = theirs.version
            self._note = theirs.note or self._note
            self.source = f"{self.source} + {theirs.source}"
            self._fingerprint = None
            self.revision += 1
        return self

    def replace(self, other: ModelRegistry) -> ModelRegistry:
        """Make this registry's content ``other``'s, in place. Returns ``self``."""
        theirs = other._content()
        with self._lock:
            self._version, self._note = theirs.version, theirs.note
            self._providers, self._models = theirs.providers, theirs.models
            self.source = theirs.source
            self._fingerprint = None
            self.revision += 1
        return self

    # -- export ---------------------------------------------------------------------------------

    def _content(self) -> _Content:
        with self._lock:
            return _Content(self._version, self._note, dict(self._providers), dict(self._models), self.source)

    def copy(self) -> ModelRegistry:
        return ModelRegistry(source=self.source).replace(self)

    def to_dict(self) -> dict[str, Any]:
        """The registry as a plain document that :meth:`from_dict` accepts."""
        content = self._content()
        out: dict[str, Any] = {"version": content.version}
        if content.note:
            out["note"] = content.note
        out["providers"] = {n: provider_dict(p) for n, p in content.providers.items()}
        out["models"] = {n: model_dict(m) for n, m in content.models.items()}
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)

    def __repr__(self) -> str:
        content = self._content()
        return (
            f"<ModelRegistry version={content.version!r} providers={len(content.providers)} "
            f"models={len(content.models)} fingerprint={self.fingerprint}>"
        )


def _fetch_https(url: str, timeout: float, max_bytes: int, verify: Any) -> str:
    import httpx  # deferred: `import dmr` stays light, and the network is touched only here

    if isinstance(verify, (str, os.PathLike)):
        verify = ssl.create_default_context(cafile=os.fspath(verify))
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL as exc:
        raise RegistryError(f"{url!r} is not a valid URL: {exc}") from None
    if not host:
        raise RegistryError(f"{url!r} is not a valid URL: it names no host")

    def https_only(request: httpx.Request) -> None:
        if request.url.scheme != "https":
            raise RegistryError(f"refusing to follow {url} to {request.url}: https only")

    def too_big() -> RegistryError:
        return RegistryError(f"{url}: the registry is larger than max_bytes={max_bytes}")

    body = bytearray()
    try:
        with (
            httpx.Client(
                timeout=timeout,
                verify=verify,
                follow_redirects=True,
                max_redirects=5,
                event_hooks={"request": [https_only]},
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise RegistryError(f"{url}: HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise too_big()
            for chunk in response.iter_bytes():  # decoded bytes, so a compressed bomb is caught too
                body += chunk
                if len(body) > max_bytes:
                    raise too_big()
    except httpx.InvalidURL as exc:  # not an HTTPError, since nothing was sent
        raise RegistryError(f"{url!r} is not a valid URL: {exc}") from None
    except httpx.HTTPError as exc:
        raise RegistryError(f"cannot fetch the registry from {url}: {exc}") from None
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RegistryFormatError(f"{url}: the registry is not UTF-8 text") from None


def _tier(tier: ModelTier | str) -> ModelTier:
    try:
        level = ModelTier(tier)
        level.rank  # noqa: B018  # raises when the tier is not among the levels in force
    except ValueError as exc:
        raise RegistryError(str(exc)) from None
    return level


def registry_changes(before: ModelRegistry, after: ModelRegistry) -> dict[str, dict[str, list[str]]]:
    """What differs between two registries: ``{"providers"|"models": {"added", "removed", "changed"}}``."""
    old, new = before.to_dict(), after.to_dict()
    out = {}
    for part in ("providers", "models"):
        a, b = old[part], new[part]
        out[part] = {
            "added": sorted(set(b) - set(a)),
            "removed": sorted(set(a) - set(b)),
            "changed": sorted(n for n in set(a) & set(b) if a[n] != b[n]),
        }
    return out


# -- the process-wide default ------------------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_HEADER = (
    "# dmr user registry, mode: {mode}\n"
    "# Written by `dmr models load`/`pull`; `dmr models reset` removes it.\n"
)
_MODE_LINE = re.compile(r"^# dmr user registry, mode: (merge|replace)\s*$")
_default: ModelRegistry | None = None
_default_lock = threading.Lock()


class _Env(NamedTuple):
    registry: str | None
    no_default: bool
    config_dir: str | None


def _env() -> _Env:
    """Every environment variable the registry reads (the docs list these)."""
    return _Env(
        registry=os.environ.get("DMR_REGISTRY") or None,
        no_default=os.environ.get("DMR_NO_DEFAULT_REGISTRY", "").strip().lower() in _TRUE,
        config_dir=os.environ.get("DMR_CONFIG_DIR") or None,
    )


def user_registry_path() -> Path:
    """Where ``dmr models load``/``pull`` save the user's registry."""
    config_dir = _env().config_dir
    if config_dir is None:
        import platformdirs  # only needed when no directory is configured

        config_dir = platformdirs.user_config_dir("dmr")
    return Path(config_dir) / "registry.yaml"


def user_registry_in_effect() -> bool:
    """False when ``DMR_REGISTRY`` is set: the default registry then ignores the saved one."""
    return _env().registry is None


_RECOVER = "`dmr models reset` removes it, or `dmr models load --replace FILE` overwrites it"


def read_user_registry() -> tuple[ModelRegistry, bool] | None:
    """The saved user registry and whether it replaces (True) or merges into the base, or None."""
    return _read_saved(user_registry_path())


def _read_saved(path: Path) -> tuple[ModelRegistry, bool] | None:
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: cannot read the saved registry ({exc}); {_RECOVER}") from None
    mode = _MODE_LINE.match(text.partition("\n")[0])
    try:
        registry = ModelRegistry.from_text(text, source=str(path))
    except RegistryFormatError as exc:
        # Every command reads this file, so say how to get out of a broken one.
        error = RegistryFormatError(f"{exc}\nto recover: {_RECOVER}")
        error.problems = getattr(exc, "problems", [])  # type: ignore[attr-defined]
        raise error from None
    # A hand-edited file without the header merges: the less destructive reading.
    return registry, bool(mode and mode.group(1) == "replace")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` so that concurrent ``dmr models load``s take turns
    at reading, merging and writing the saved registry instead of dropping each other's changes."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; concurrent saves can still lose one another's changes
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path.with_name(path.name + ".lock"), "a")  # noqa: SIM115  # closed below
    except OSError as exc:
        raise RegistryError(f"cannot lock the user registry {path}: {exc}") from None
    with handle:  # closing the file releases the lock
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def write_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and one rename, so an
    interrupted write leaves the old file whole. A symlink is written through: its target is
    replaced and the link kept. An existing file keeps its permissions. Raises ``OSError``."""
    target = Path(os.path.realpath(path))
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, os.stat(target).st_mode & 0o7777)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def _write_saved(path: Path, registry: ModelRegistry, replace: bool) -> None:
    text = _HEADER.format(mode="replace" if replace else "merge") + registry.to_yaml()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
    except OSError as exc:
        raise RegistryError(f"cannot save the user registry to {path}: {exc}") from None


def save_user_registry(registry: ModelRegistry, *, replace: bool) -> Path:
    """Write the user registry atomically; the default registry is rebuilt on next use."""
    path = user_registry_path()
    with _locked(path):
        _write_saved(path, registry, replace)
    reset_default_registry()
    return path


def update_user_registry(incoming: ModelRegistry, *, replace: bool) -> tuple[ModelRegistry, bool, Path]:
    """Save ``incoming`` as the user registry: with ``replace``, as it is; otherwise laid over the
    saved one, which keeps its mode. The read, merge and write happen under one lock, so concurrent
    updates all survive. Returns what was saved, whether it replaces the base, and where."""
    path = user_registry_path()
    with _locked(path):
        saved = None if replace else _read_saved(path)
        if saved is not None:
            previous, replace = saved
            incoming = previous.merge(incoming)
        _write_saved(path, incoming, replace)
    reset_default_registry()
    return incoming, replace, path


def clear_user_registry() -> bool:
    """Remove the saved user registry; True if there was one."""
    path = user_registry_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    reset_default_registry()
    return True


def _build_default() -> ModelRegistry:
    env = _env()
    if env.registry is not None:
        return ModelRegistry.load(env.registry)
    base = ModelRegistry.empty() if env.no_default else ModelRegistry.bundled()
    saved = read_user_registry()
    if saved is not None:
        user, replace = saved
        user.source = f"{user.source} ({'replace' if replace else 'merge'})"
        if replace:
            return user
        base.merge(user)
    return base


def default_registry() -> ModelRegistry:
    """The process-wide registry (built once, on first use; see the module docstring)."""
    global _default
    registry = _default
    if registry is None:
        with _default_lock:
            if _default is None:
                _default = _build_default()
            registry = _default
    return registry


def reset_default_registry() -> None:
    """Forget the default registry (and changes made to it); the next use rebuilds it."""
    global _default
    with _default_lock:
        _default = None


def register_provider(name: str, tiers: Mapping[ModelTier | str, str], **options: Any) -> ProviderSpec:
    """Add or extend a provider in the default registry (see :meth:`ModelRegistry.register_provider`)."""
    return default_registry().register_provider(name, tiers, **options)


def register_model_cost(model: str, *, input_per_1m: float, output_per_1m: float) -> ModelSpec:
    """Set a model's price in the default registry."""
    return default_registry().register_model_cost(
        model, input_per_1m=input_per_1m, output_per_1m=output_per_1m
    )
