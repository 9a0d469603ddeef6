"""The policies a Router applies around the cascade: per-call tenant overrides (providers, tier
bounds, residency, a tenant's own budget), data residency and the latency budget. (The PII floor
and the Router-wide spend cap are applied with :mod:`dmr.pii` and :mod:`dmr.budget`.)

Every policy that changes a decision says so: a ``policies_applied`` entry (``residency:EU``,
``tenant_max_tier:medium``, ``latency_skip:layer2``…) and, where it moved the tier or the provider,
a sentence in ``reasoning``. None of them moves a decision to another region or tier silently.
"""

from __future__ import annotations

import hashlib
import math
import threading
from typing import Any, Iterable, Mapping, Sequence

from dmr.errors import BudgetExceededError, ConfigError, InputTypeError, ResidencyError
from dmr.registry import ModelRegistry
from dmr.types import LayerStep, ModelTier

__all__ = [
    "COST_CAPS",
    "RESIDENCY_FALLBACKS",
    "TENANT_KEYS",
    "LatencyEstimator",
    "ResidencyPlanner",
    "TenantBudgets",
    "allowed_providers",
    "apply_tenant",
    "check_tenant",
    "context_ceiling",
    "cost_ceiling",
    "escalation_tiers",
    "normalise_region",
    "place_in_region",
    "tier_bounds",
]

TENANT_KEYS = frozenset({"provider", "providers", "min_tier", "max_tier", "residency", "budget_usd", "tenant_id"})

# What a Router does when no allowed provider has a model in the required region at the tier
# the cascade chose. "error" (the default) raises ResidencyError; the others move the tier, and the
# decision records the move (``residency_fallback:high->medium``).
RESIDENCY_FALLBACKS = ("error", "higher_tier", "nearest_tier")


def normalise_region(value: Any, path: str = "residency") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: must be a region code such as 'EU'", [(path, "must be a region code")])
    return value.strip().upper()


# -- tenants -------------------------------------------------------------------------------------

def check_tenant(tenant: Mapping[str, Any], *, residency: str | None = None) -> None:
    """Validate a per-call ``tenant_config``; every problem is reported at once."""
    if not isinstance(tenant, Mapping):
        raise InputTypeError(f"tenant_config must be a mapping such as {{'tenant_id': 'acme', 'max_tier': 'medium'}}, "
                             f"not {type(tenant).__name__}")
    problems = [(f"tenant_config.{k}", f"unknown key (known: {', '.join(sorted(TENANT_KEYS))})")
                for k in sorted(set(tenant) - TENANT_KEYS, key=str)]
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
    region = tenant.get("residency")
    if region is not None:
        if not isinstance(region, str) or not region.strip():
            problems.append(("tenant_config.residency", "must be a region code such as 'EU'"))
        elif residency is not None and region.strip().upper() != residency:
            # The router's residency is the deployment's legal constraint; a tenant cannot leave it.
            problems.append(("tenant_config.residency",
                             f"{region!r} conflicts with the router's residency {residency!r}"))
    tenant_id = tenant.get("tenant_id")
    if tenant_id is not None and not isinstance(tenant_id, str):
        problems.append(("tenant_config.tenant_id", "must be a string"))
    budget = tenant.get("budget_usd")
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget < math.inf:
            problems.append(("tenant_config.budget_usd", "must be a finite amount in USD above 0"))
        if tenant_id is None:
            problems.append(("tenant_config.budget_usd", "needs a tenant_id: the spend is counted per tenant"))
    if problems:
        raise ConfigError("invalid tenant_config:\n" + "\n".join(f"  {p}: {m}" for p, m in problems), problems)


def apply_tenant(tenant: Mapping[str, Any], tier: ModelTier, provider: str | None,
                 policies: list[str], reasons: list[str]) -> tuple[ModelTier, str | None]:
    """The tenant's provider choice and tier bounds applied to the cascade's tier."""
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


def allowed_providers(registry: ModelRegistry, chosen: str | None, *, tenant: Mapping[str, Any] | None,
                      config_provider: str | None, config_providers: Sequence[str] | None) -> list[str]:
    """Providers a decision may use, preferred first. A tenant's ``providers`` list wins, then the
    Router's ``providers``; a single provider fixed by the tenant or the Router allows only itself;
    with none of these, every registered provider is allowed (in registry order)."""
    known = registry.providers()
    if tenant and tenant.get("providers"):
        pool = list(tenant["providers"])
    elif tenant and tenant.get("provider"):
        pool = [tenant["provider"]]
    elif config_providers:
        pool = list(config_providers)
    elif config_provider:
        pool = [config_provider]
    else:
        pool = known
    ordered = ([chosen] if chosen in pool else []) + [p for p in pool if p != chosen]
    return [p for p in ordered if p in known]


class TenantBudgets:
    """One :class:`~dmr.budget.Budget` per ``tenant_id``, opened on first use with the Router's
    ``budget_policy`` and ``budget_store`` (counter ``tenant-<id>``), so a tenant's spend is shared by
    every replica using the same store. ``tenant_config={"tenant_id": ..., "budget_usd": ...}`` caps
    that tenant's tiers as the policy says (``tenant_budget_cap:medium``); the application records the
    tenant's spend with ``router.tenant_budget(tenant_id).record_usd(usd)``."""

    def __init__(self, policy: Mapping[str, Any] | None, store: str | None) -> None:
        self._policy, self._store = dict(policy or {}), store
        self._budgets: dict[str, Any] = {}
        self._lock = threading.Lock()

    @staticmethod
    def counter(tenant_id: str) -> str:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in tenant_id)[:40]
        digest = hashlib.blake2b(tenant_id.encode("utf-8"), digest_size=4).hexdigest()
        return f"tenant-{safe}-{digest}"

    def close(self) -> None:
        """Close every tenant's budget (its pending spend written, its store released)."""
        with self._lock:
            budgets = list(self._budgets.values())
        for budget in budgets:
            budget.close()

    def get(self, tenant_id: str, limit_usd: float | None = None) -> Any:
        """The tenant's budget; ``limit_usd`` (re)sets its cap."""
        budget = self._budgets.get(tenant_id)
        if budget is None:
            if limit_usd is None:
                raise KeyError(f"no budget for tenant {tenant_id!r} yet: pass budget_usd in its tenant_config")
            from dmr.budget import Budget

            with self._lock:
                budget = self._budgets.get(tenant_id)
                if budget is None:
                    policy = {**self._policy, "name": self.counter(tenant_id)}
                    budget = self._budgets[tenant_id] = Budget(limit_usd, policy, self._store)
        if limit_usd is not None and budget.limit_usd != float(limit_usd):
            budget.limit_usd = float(limit_usd)
        return budget

    def apply(self, tenant: Mapping[str, Any], tier: ModelTier, policies: list[str], reasons: list[str]) -> ModelTier:
        budget = self.get(tenant["tenant_id"], tenant["budget_usd"])
        added: list[str] = []
        said: list[str] = []
        try:
            tier = budget.apply(tier, added, said)
        except BudgetExceededError as exc:
            raise BudgetExceededError(f"tenant {tenant['tenant_id']}: {exc}") from None
        policies.extend(f"tenant_{policy}" for policy in added)
        reasons.extend(f"tenant {tenant['tenant_id']}: {reason}" for reason in said)
        return tier


# Policies that held a decision's tier down for cost: a failure must not lift it past them.
COST_CAPS = ("budget_cap:", "budget_exhausted:", "tenant_budget_cap:", "tenant_budget_exhausted:",
             "tenant_max_tier:")


def cost_ceiling(tenant: Mapping[str, Any] | None, budgets: Iterable[Any]) -> ModelTier | None:
    """The lowest of the tenant's ``max_tier`` and what each of ``budgets`` (the Router's, the
    tenant's) allows at its current spend (None: no ceiling)."""
    ceilings = [budget.ceiling() for budget in budgets]
    if tenant and tenant.get("max_tier") is not None:
        ceilings.append(ModelTier(tenant["max_tier"]))
    found = [c for c in ceilings if c is not None]
    return min(found, key=lambda c: c.rank) if found else None


def context_ceiling(tier: ModelTier, tenant: Mapping[str, Any] | None, policies: Sequence[str],
                    budgets: Iterable[Any]) -> ModelTier | None:
    """The highest tier a decision at ``tier`` may be raised to for its input to fit a context
    window: ``tier`` itself when a budget or the tenant held it down, else :func:`cost_ceiling`."""
    if any(policy.startswith(COST_CAPS) for policy in policies):
        return tier
    return cost_ceiling(tenant, budgets)


def escalation_tiers(decision: Any, tenant: Mapping[str, Any] | None, budget: Any) -> list[ModelTier]:
    """The tiers above ``decision``'s that a request may go up to when its model fails, lowest
    first: none when a budget capped the decision or the Router's ``budget`` has reached its cap
    since, and none above the tenant's ``max_tier``."""
    if any(policy.startswith(COST_CAPS) for policy in decision.policies_applied):
        return []
    if budget is not None and budget.fraction >= budget.policy["cap_at"]:
        return []
    ceiling = ModelTier(tenant["max_tier"]).rank if tenant and tenant.get("max_tier") is not None else None
    return [tier for tier in ModelTier.levels()
            if tier.rank > ModelTier(decision.tier).rank and (ceiling is None or tier.rank <= ceiling)]


# -- residency -----------------------------------------------------------------------------------

def tier_bounds(tenant: Mapping[str, Any] | None, floor: ModelTier | None) -> tuple[ModelTier | None, ModelTier | None]:
    """The lowest and highest tier a residency fallback may move to: the tenant's ``min_tier`` (or
    ``floor``, e.g. the PII floor, if higher) and the tenant's ``max_tier``."""
    low = ModelTier(tenant["min_tier"]) if tenant and tenant.get("min_tier") is not None else None
    if floor is not None and (low is None or floor.rank > low.rank):
        low = floor
    high = ModelTier(tenant["max_tier"]) if tenant and tenant.get("max_tier") is not None else None
    return low, high


def _fallback_tiers(tier: ModelTier, fallback: str, low: ModelTier | None, high: ModelTier | None) -> list[ModelTier]:
    levels = [t for t in ModelTier.levels()
              if (low is None or t.rank >= low.rank) and (high is None or t.rank <= high.rank)]
    higher = [t for t in levels if t.rank > tier.rank]
    if fallback == "higher_tier":
        return higher
    if fallback == "nearest_tier":
        # Nearest first; between two equally near tiers, the higher (never answer worse than asked).
        others = [t for t in levels if t != tier]
        return sorted(others, key=lambda t: (abs(t.rank - tier.rank), t.rank < tier.rank))
    return []


def place_in_region(registry: ModelRegistry, region: str, tier: ModelTier, providers: Sequence[str],
                    fallback: str, policies: list[str], reasons: list[str], *,
                    bounds: tuple[ModelTier | None, ModelTier | None] = (None, None)) -> tuple[str, str, ModelTier]:
    """The ``(provider, model, tier)`` to use under ``residency=region``: the tier the cascade chose
    at the first allowed provider with a model in that region; then, with a fallback other than
    ``"error"``, the nearest tier within ``bounds`` (see :func:`tier_bounds`) that has one.
    Raises :class:`ResidencyError` when none fits."""
    policies.append(f"residency:{region}")
    for candidate in [tier, *_fallback_tiers(tier, fallback, *bounds)]:
        for provider in providers:
            pairs = registry.models_for(candidate, provider, region)
            if not pairs:
                continue
            model = pairs[0][1]
            if provider != providers[0]:
                policies.append(f"residency_provider:{provider}")
                reasons.append(f"{providers[0]} has no model in {region} at {tier}; used {provider}'s")
            if candidate != tier:
                policies.append(f"residency_fallback:{tier}->{candidate}")
                reasons.append(f"no allowed provider has a model in {region} at {tier}; "
                               f"residency_fallback={fallback!r} moved it to {candidate}")
            return provider, model, candidate
    raise ResidencyError(_no_region_message(registry, region, tier, providers, fallback))


class ResidencyPlanner:
    """Residency for one Router: :func:`allowed_providers`, :func:`tier_bounds` and
    :func:`place_in_region`, memoised. The answer depends only on the registry's content, the tiers
    in force, the region, the tier, the preferred provider, the tenant's provider and tier keys and
    the floor — and those repeat. The memo is dropped whenever the registry or the tiers change."""

    _MAX = 4096

    def __init__(self, fallback: str, provider: str | None = None, providers: Sequence[str] | None = None) -> None:
        self.fallback, self._provider, self._providers = fallback, provider, providers
        self._stamp: Any = None
        self._memo: dict[tuple[Any, ...], Any] = {}

    def place(self, registry: ModelRegistry, region: str, tier: ModelTier, chosen: str | None,
              tenant: Mapping[str, Any] | None, policies: list[str], reasons: list[str], *,
              floor: ModelTier | None = None) -> tuple[str, str, ModelTier]:
        # The registry itself, not its id(): a stamp holding it keeps a freed id from being reused.
        stamp = (registry, getattr(registry, "revision", None), ModelTier.levels())
        if stamp != self._stamp:
            self._memo, self._stamp = {}, stamp
        shaping = () if not tenant else (tenant.get("provider"), tuple(tenant.get("providers") or ()),
                                         tenant.get("min_tier"), tenant.get("max_tier"))
        key = (region, tier, chosen, floor, shaping)
        found = self._memo.get(key)
        if found is None:
            found = self._place(registry, region, tier, chosen, tenant, floor)
            if len(self._memo) >= self._MAX:
                self._memo = {}
            self._memo[key] = found
        if isinstance(found, str):
            raise ResidencyError(found)
        placed, added, said = found
        policies.extend(added)
        reasons.extend(said)
        return placed

    def _place(self, registry: ModelRegistry, region: str, tier: ModelTier, chosen: str | None,
               tenant: Mapping[str, Any] | None, floor: ModelTier | None) -> Any:
        allowed = allowed_providers(registry, chosen, tenant=tenant, config_provider=self._provider,
                                    config_providers=self._providers)
        added: list[str] = []
        said: list[str] = []
        try:
            placed = place_in_region(registry, region, tier, allowed, self.fallback, added, said,
                                     bounds=tier_bounds(tenant, floor))
        except ResidencyError as exc:
            return str(exc)
        return placed, tuple(added), tuple(said)


def _no_region_message(registry: ModelRegistry, region: str, tier: ModelTier, providers: Sequence[str],
                       fallback: str) -> str:
    where = []
    for provider in providers:
        for _, model in registry.models_for(tier, provider):
            regions = ", ".join(registry.regions_of(model, provider=provider)) or "no region listed"
            where.append(f"{provider}: {model} ({regions})")
    found = "; ".join(where) or "none of them offers that tier"
    allowed = ", ".join(providers) or "none"
    hint = ("set residency_fallback='nearest_tier' to allow another tier, or allow more providers"
            if fallback == "error" else "allow more providers or add a model in that region to the registry")
    return (f"no model in region {region} for tier {tier} at the allowed providers ({allowed}); "
            f"{found}. The task was not routed to another region: {hint}")


# -- latency budget ------------------------------------------------------------------------------

# Used for a built-in layer that does not declare ``expected_ms`` itself: what the design expects
# of the embedding classifier and of one LLM call, until the layer's own runs are measured.
_BUILTIN_EXPECTED_MS = {"layer3": 15.0, "layer2": 500.0}


def _declared_ms(layer: Any) -> float:
    declared = getattr(layer, "expected_ms", None)
    if declared is None:
        declared = _BUILTIN_EXPECTED_MS.get(layer.name, 0.0)
    return float(declared)


class LatencyEstimator:
    """What each layer is expected to take, in milliseconds, learned from the layer's own runs.

    A layer's estimate starts at its ``expected_ms`` attribute (for the built-in Layer 3 and Layer 2
    without one: 15 and 500 ms; for any other layer without one: 0, so it runs and is measured) and follows a smoothed mean plus twice the smoothed mean deviation of its
    measured latencies — a high-percentile estimate that needs O(1) work per step. A layer that is
    skipped is not measured, so its estimate drifts back towards its ``expected_ms`` on every skip:
    one slow outlier cannot bar a layer for good.
    """

    def __init__(self, layers: Iterable[Any], *, alpha: float = 0.2, spread: float = 2.0,
                 recovery: float = 0.1) -> None:
        self._alpha, self._spread, self._recovery = alpha, spread, recovery
        self._seed = {layer.name: _declared_ms(layer) for layer in layers}
        self._mean = dict(self._seed)
        self._dev = dict.fromkeys(self._seed, 0.0)
        self._lock = threading.Lock()

    def expected(self, name: str) -> float:
        return self._mean.get(name, 0.0) + self._spread * self._dev.get(name, 0.0)

    def observe(self, step: LayerStep) -> None:
        """Learn from one step of a trace (skips are not measurements)."""
        if step.outcome == "skipped":
            return
        name, ms, a = step.layer, step.latency_ms, self._alpha
        with self._lock:
            mean = self._mean.get(name)
            if mean is None:
                self._mean[name], self._dev[name] = ms, 0.0
                return
            self._dev[name] = (1 - a) * self._dev[name] + a * abs(ms - mean)
            self._mean[name] = (1 - a) * mean + a * ms

    def skip(self, name: str, remaining_ms: float) -> str | None:
        """Why the layer should be skipped with ``remaining_ms`` left, or None to run it."""
        expected = self.expected(name)
        if expected <= remaining_ms:
            return None
        with self._lock:
            seed, r = self._seed.get(name, 0.0), self._recovery
            self._mean[name] = (1 - r) * self._mean.get(name, seed) + r * seed
            self._dev[name] = (1 - r) * self._dev.get(name, 0.0)
        return f"expected {expected:.1f} ms, {max(remaining_ms, 0.0):.1f} ms left of the latency budget"
