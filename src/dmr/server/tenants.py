"""Tenants of the proxy: several teams behind one ``dmr serve``, each known by its own key.

A tenants file (``dmr serve --tenants tenants.yaml``, ``create_app(tenants=...)``) names each
tenant, the key its clients send, and its ``tenant_config`` (:mod:`dmr.policies`)::

    tenants:
      search-team:
        key_env: SEARCH_TEAM_DMR_KEY   # the key, read from the proxy's environment at start
        providers: [openai, groq]      # the providers it may use, in order of preference
        max_tier: medium
        budget_usd: 50                 # its own budget, beside the Router's
        rpm: 600                       # at most 600 requests in any 60 seconds
      legal:
        key_sha256: 5e884898da28...    # or the key's SHA-256, so that the file holds no secret
        residency: EU

A request with a tenant's key is routed with that tenant's config (``tenant_id`` is its name, so
the decision log and ``dmr stats`` count it per tenant); a model the tenant names, and the
embeddings it sends, must be one it could have been routed to (its providers, its residency, at
most its ``max_tier``), and are refused once its budget is spent with ``on_stop: raise``. Its
spend is charged to its own budget and to the Router's. ``rpm`` limits how many requests it may
send in any 60 seconds; past it, 429 with ``retry-after``. Requests are counted by this proxy
process, or, with ``rate_store: redis://host:6379/0`` beside ``tenants:`` in the file, in Redis, so
that every replica sharing it counts the same requests (:mod:`dmr.server.rate`); while that Redis
cannot answer, each process counts its own, and no request fails for it. The proxy's own key
(``--api-key``), when set, still serves requests under no tenant.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from dmr import yamlfile
from dmr.config import unknown_providers
from dmr.datafiles import not_utf8
from dmr.errors import BudgetExceededError, ConfigError
from dmr.policies import TENANT_KEYS, check_tenant
from dmr.redis_client import REDIS_SCHEMES
from dmr.registry import ModelRegistry
from dmr.registry_schema import key_from_env
from dmr.server.rate import LocalWindows, RedisWindows
from dmr.types import ModelTier

__all__ = ["Tenant", "Tenants", "load_tenants"]

_KEY_FIELDS = ("key_env", "key_sha256")
_PROXY_FIELDS = ("rpm",)
log = logging.getLogger("dmr.server")
_CONFIG_FIELDS = TENANT_KEYS - {"tenant_id"}
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Tenant:
    """One tenant: its name, the ``tenant_config`` its requests are routed with, and how many
    requests it may send a minute (None: no limit)."""

    name: str
    config: Mapping[str, Any]
    rpm: int | None = None

    def providers(self) -> tuple[str, ...] | None:
        """The providers it may use, in order (None: any the Router may)."""
        if self.config.get("providers"):
            return tuple(self.config["providers"])
        if self.config.get("provider"):
            return (self.config["provider"],)
        return None

    def refusal(self, registry: ModelRegistry, provider: str, model: str, residency: str | None) -> str | None:
        """Why this tenant may not call ``model`` at ``provider`` (None: it may)."""
        allowed = self.providers()
        if allowed is not None and provider not in allowed:
            return f"provider {provider!r} is not one of its providers ({', '.join(allowed)})"
        region = residency or self.config.get("residency")
        if region and region.strip().upper() not in registry.regions_of(model, provider=provider):
            return f"{model!r} is not served in its residency region {region.strip().upper()}"
        ceiling = self.config.get("max_tier")
        if ceiling is not None:
            tiers = registry.tiers_of(model, provider=provider)
            if not tiers:
                return f"{model!r} has no tier at {provider!r}, and its tiers are capped at {ceiling}"
            if tiers[0].rank > ModelTier(ceiling).rank:
                return f"{model!r} is above its highest tier, {ceiling}"
        return None

    def refuse_when_spent(self, router: Any) -> None:
        """Raise :class:`BudgetExceededError` when its budget is spent and the policy says ``raise``."""
        limit = self.config.get("budget_usd")
        if limit is None:
            return
        budget = router.tenant_budget(self.name, limit)
        if budget.policy["on_stop"] == "raise" and budget.stopped:
            raise BudgetExceededError(f"tenant {self.name}: budget of ${budget.limit_usd:g} used up "
                                      f"(${budget.spent_usd:.4f} spent)")

    def charge(self, router: Any, usd: float) -> None:
        """Add ``usd`` to its own budget, when it has one."""
        limit = self.config.get("budget_usd")
        if limit is not None:
            router.tenant_budget(self.name, limit).record_usd(usd)


class Tenants:
    """The tenants of a proxy, found by the key a request sends."""

    def __init__(self, by_digest: Mapping[bytes, Tenant], rate_store: str | None = None) -> None:
        self._by_digest = dict(by_digest)
        self._local = LocalWindows()
        self._shared = RedisWindows(rate_store) if rate_store else None
        self._store_down = False

    @property
    def shared(self) -> bool:
        """Whether requests are counted in a store shared with other processes (a blocking call)."""
        return self._shared is not None

    def admit(self, tenant: Tenant, now: float | None = None) -> float | None:
        """Count a request of ``tenant`` against its ``rpm``: None when it may go, else the seconds
        until the oldest request in the window leaves it (the request is then not counted).
        ``now`` (seconds, monotonic) is for this process's own count; a shared store uses its own
        clock. Without a shared store it is called on the event loop only, so it needs no lock."""
        if tenant.rpm is None:
            return None
        if self._shared is not None and now is None:
            try:
                wait = self._shared.admit(tenant.name, tenant.rpm)
            except self._shared.errors as exc:
                if not self._store_down:
                    log.warning("rate_store %s cannot answer (%s): counting requests in this process "
                                "until it is back", self._shared.url, exc)
                self._store_down = True
            else:
                if self._store_down:
                    log.warning("rate_store %s is back: counting requests there again", self._shared.url)
                self._store_down = False
                return wait
        return self._local.admit(tenant.name, tenant.rpm, now)

    def __len__(self) -> int:
        return len(self._by_digest)

    def names(self) -> list[str]:
        return sorted(t.name for t in self._by_digest.values())

    def find(self, key: str) -> Tenant | None:
        """The tenant whose key is ``key``. Keys are compared by digest: a lookup's time says
        nothing about how much of a key was right."""
        return self._by_digest.get(_digest(key))


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.strip().encode("utf-8")).digest()


def load_tenants(source: str | Path | Mapping[str, Any], *, residency: str | None = None,
                 proxy_key: str | None = None, providers: Iterable[str] | None = None) -> Tenants:
    """Read and check a tenants file (or its parsed mapping); every problem is reported at once.
    ``residency``: the Router's, which no tenant may leave; ``proxy_key``: the proxy's own key,
    which no tenant may share; ``providers``: those of the Router's registry, the only ones a
    tenant may name (None: not checked)."""
    known = None if providers is None else set(providers)
    data = _read(source) if isinstance(source, (str, Path)) else source
    if (not isinstance(data, Mapping) or "tenants" not in data or set(data) - {"tenants", "rate_store"}
            or not isinstance(data["tenants"], Mapping)):
        raise ConfigError("tenants: expected a mapping with the key 'tenants', of tenant names to their settings "
                          "(and optionally 'rate_store', a redis:// URL)", [("tenants", "wrong shape")])
    rate_store = data.get("rate_store")
    if rate_store is not None and (not isinstance(rate_store, str) or not rate_store.startswith(REDIS_SCHEMES)):
        raise ConfigError(f"tenants: rate_store must be a redis://, rediss:// or unix:// URL, got {rate_store!r}",
                          [("rate_store", "not a Redis URL")])
    problems: list[tuple[str, str]] = []
    by_digest: dict[bytes, Tenant] = {}
    for name, entry in data["tenants"].items():
        where = f"tenants.{name}"
        if not isinstance(name, str) or not name.strip() or not isinstance(entry, Mapping):
            problems.append((where, "a tenant is a non-empty name with a mapping of settings"))
            continue
        unknown = set(entry) - set(_KEY_FIELDS) - set(_PROXY_FIELDS) - _CONFIG_FIELDS
        if unknown:
            problems.append((where, f"unknown keys {', '.join(sorted(map(str, unknown)))} (known: "
                                    f"{', '.join(sorted([*_KEY_FIELDS, *_PROXY_FIELDS, *_CONFIG_FIELDS]))})"))
            continue
        digest = _key_digest(entry, where, problems)
        rpm = entry.get("rpm")
        if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int) or rpm < 1):
            problems.append((f"{where}.rpm", f"must be a number of requests >= 1, got {rpm!r}"))
        config = {key: value for key, value in entry.items() if key in _CONFIG_FIELDS}
        config["tenant_id"] = name
        try:
            check_tenant(config, residency=residency)
        except ConfigError as exc:
            problems.extend((f"{where}.{path.removeprefix('tenant_config.')}", message)
                            for path, message in exc.problems)
        else:
            problems.extend(_unknown_providers(config, where, known))
        if digest is None:
            continue
        if digest in by_digest:
            problems.append((where, f"has the same key as tenant {by_digest[digest].name!r}"))
        elif proxy_key is not None and hmac.compare_digest(digest, _digest(proxy_key)):
            problems.append((where, "has the proxy's own key (--api-key), which serves requests under no tenant"))
        else:
            by_digest[digest] = Tenant(name, config, rpm)
    if problems:
        raise ConfigError("invalid tenants:\n" + "\n".join(f"  {p}: {m}" for p, m in problems), problems)
    if not by_digest:
        raise ConfigError("tenants: the file names no tenant", [("tenants", "empty")])
    return Tenants(by_digest, rate_store)


def _unknown_providers(config: Mapping[str, Any], where: str, known: set[str] | None) -> list[tuple[str, str]]:
    # Found here, not on each of the tenant's requests: there every one would fail as a 500.
    if known is None:
        return []
    return [(f"{where}.{key.split('.')[0]}", f"unknown provider {name!r} (the model registry has "
                                              f"{', '.join(sorted(known)) or 'none'})")
            for key, name in unknown_providers(config.get("provider"), config.get("providers"), known)]


def _key_digest(entry: Mapping[str, Any], where: str, problems: list[tuple[str, str]]) -> bytes | None:
    given = [field for field in _KEY_FIELDS if entry.get(field) is not None]
    if len(given) != 1:
        problems.append((where, "needs exactly one of key_env (a variable holding its key) and key_sha256"))
        return None
    if given == ["key_sha256"]:
        value = entry["key_sha256"]
        if not isinstance(value, str) or not _SHA256.fullmatch(value.strip().lower()):
            problems.append((f"{where}.key_sha256", "must be 64 hex digits (sha256sum of the key)"))
            return None
        return bytes.fromhex(value.strip())
    variable = entry["key_env"]
    if not isinstance(variable, str) or not variable.strip():
        problems.append((f"{where}.key_env", "must be the name of an environment variable"))
        return None
    key = key_from_env(variable.strip())
    if key is None or not key.strip():
        problems.append((f"{where}.key_env", f"{variable} is not set (or empty) in the proxy's environment"))
        return None
    return _digest(key)


def _read(path: str | Path) -> Any:
    import yaml

    file = Path(path).expanduser()
    try:
        return yamlfile.load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the tenants file {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the tenants file: {not_utf8(file, exc)}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the tenants file {file} is not valid YAML: {exc}") from None
