"""A spend cap (``budget_usd``) that survives restarts.

Spend is real: the token usage each provider reports for Layer 2's calls, priced from the model
registry (``ModelRegistry.estimate_cost``); an application may add its own calls' spend with
``router.budget.record_usd(usd)``. The running total lives in a store shared by every
process that names the same budget: a small SQLite file in the user config directory by default, or
Redis (``budget_store="redis://host:6379/0"``) so that every replica sees the same spend.

Policy (``budget_policy``; defaults shown)::

    {"cap_at": 0.8, "cap_tier": "medium",     # from 80 % of the budget, no decision above medium
     "stop_at": 1.0, "stop_tier": "medium",   # from 100 %, Layer 2 stops and decisions are capped
     "on_stop": "cap",                        # or "raise": BudgetExceededError instead of a decision
     "name": "default"}                       # the counter's name in the store
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Mapping, Protocol

from dmr.errors import BudgetExceededError, ConfigError
from dmr.types import ModelTier

__all__ = ["Budget", "RedisSpendStore", "SQLiteSpendStore", "SpendStore", "open_store"]

_POLICY_DEFAULTS: Mapping[str, Any] = {"cap_at": 0.8, "cap_tier": "medium", "stop_at": 1.0,
                                       "stop_tier": "medium", "on_stop": "cap", "name": "default"}


class SpendStore(Protocol):
    def total(self) -> float: ...
    def add(self, usd: float) -> float: ...
    def reset(self) -> None: ...


class SQLiteSpendStore:
    """One row per budget name in a local SQLite file; safe across threads and processes."""

    def __init__(self, path: str | Path, name: str = "default") -> None:
        self.path = Path(path)
        self.name = name
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, used under the lock from any thread (opening one per read costs more
        # than the read); autocommit, with explicit transactions where it matters.
        self._db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        weakref.finalize(self, self._db.close)
        self._db.execute("CREATE TABLE IF NOT EXISTS spend (name TEXT PRIMARY KEY, usd REAL NOT NULL)")

    def total(self) -> float:
        with self._lock:
            row = self._db.execute("SELECT usd FROM spend WHERE name = ?", (self.name,)).fetchone()
        return float(row[0]) if row else 0.0

    def add(self, usd: float) -> float:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT INTO spend (name, usd) VALUES (?, ?) "
                           "ON CONFLICT(name) DO UPDATE SET usd = usd + excluded.usd", (self.name, usd))
                total = db.execute("SELECT usd FROM spend WHERE name = ?", (self.name,)).fetchone()[0]
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return float(total)

    def reset(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM spend WHERE name = ?", (self.name,))


class RedisSpendStore:
    """The total under ``dmr:budget:<name>``, updated atomically with INCRBYFLOAT."""

    def __init__(self, url: str, name: str = "default", *, timeout: float = 0.5) -> None:
        from dmr.redis_client import connect

        self.key = f"dmr:budget:{name}"
        self._client = connect(url, "budget_store", self, timeout=timeout)

    def total(self) -> float:
        value = self._client.get(self.key)
        return float(value) if value is not None else 0.0

    def add(self, usd: float) -> float:
        return float(self._client.incrbyfloat(self.key, usd))

    def reset(self) -> None:
        self._client.delete(self.key)


def open_store(spec: str | None, name: str) -> SpendStore:
    """``None`` → ``budget.sqlite3`` beside the user registry; ``redis://…``/``rediss://…`` → Redis;
    ``sqlite:///path`` or a plain path → that SQLite file."""
    if spec is None:
        from dmr.registry import user_registry_path

        return SQLiteSpendStore(user_registry_path().parent / "budget.sqlite3", name)
    from dmr.redis_client import REDIS_SCHEMES

    if spec.startswith(REDIS_SCHEMES):
        return RedisSpendStore(spec, name)
    return SQLiteSpendStore(spec[len("sqlite:///") - 1:] if spec.startswith("sqlite:///") else spec, name)


class Budget:
    """The spend against ``limit_usd`` and what the policy makes of it. Reads of the shared total
    are cached for ``refresh_secs``, so a decision costs no store round trip; a store that is down
    never fails a decision (its spend is kept and added once it is back)."""

    def __init__(self, limit_usd: float, policy: Mapping[str, Any] | None = None, store: str | None = None,
                 *, refresh_secs: float = 0.5) -> None:
        self.limit_usd = float(limit_usd)
        self.policy = self._check(policy)
        self._store_spec = store
        self._store: SpendStore | None = None
        self._refresh = refresh_secs
        self._lock = threading.Lock()
        self._spent = 0.0
        self._read_at = -math.inf
        self._pending = 0.0
        self.store_error: str | None = None
        # Spend recorded by the decision running on this thread, so that a decision whose own
        # Layer 2 call used the budget up still gets its (capped) answer rather than an error.
        self._this_decision = threading.local()
        self.store  # noqa: B018  # open it now: a bad store is a configuration error, reported at once

    @staticmethod
    def _check(policy: Mapping[str, Any] | None) -> dict[str, Any]:
        out = dict(_POLICY_DEFAULTS)
        problems: list[tuple[str, str]] = []
        if policy is not None and not isinstance(policy, Mapping):
            raise ConfigError("budget_policy must be a mapping", [("budget_policy", "must be a mapping")])
        for key, value in (policy or {}).items():
            path = f"budget_policy.{key}"
            if key not in _POLICY_DEFAULTS:
                problems.append((path, f"unknown key (known: {', '.join(_POLICY_DEFAULTS)})"))
            elif key in ("cap_at", "stop_at"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 10:
                    problems.append((path, f"must be a fraction of the budget in (0, 10], got {value!r}"))
                else:
                    out[key] = float(value)
            elif key in ("cap_tier", "stop_tier"):
                try:
                    ModelTier(value).rank  # noqa: B018
                    out[key] = ModelTier(value)
                except (ValueError, TypeError) as exc:
                    problems.append((path, str(exc)))
            elif key == "on_stop":
                if value not in ("cap", "raise"):
                    problems.append((path, f"must be 'cap' or 'raise', got {value!r}"))
                out[key] = value
            elif not isinstance(value, str) or not value or not value.replace("-", "").replace("_", "").isalnum():
                problems.append((path, "must be a name of letters, digits, '-' or '_'"))
            else:
                out[key] = value
        if out["cap_at"] > out["stop_at"]:
            problems.append(("budget_policy.cap_at", "must not be above stop_at"))
        if problems:
            raise ConfigError("invalid budget_policy:\n" + "\n".join(f"  {p}: {m}" for p, m in problems), problems)
        out["cap_tier"] = ModelTier(out["cap_tier"])
        out["stop_tier"] = ModelTier(out["stop_tier"])
        return out

    @property
    def store(self) -> SpendStore:
        if self._store is None:
            self._store = open_store(self._store_spec, self.policy["name"])
        return self._store

    @property
    def spent_usd(self) -> float:
        now = time.monotonic()
        if now - self._read_at >= self._refresh:
            try:
                total = self.store.total()
            except Exception as exc:  # a store outage must not fail a decision
                self.store_error = f"{type(exc).__name__}: {exc}"
            else:
                with self._lock:
                    self._spent, self._read_at, self.store_error = total + self._pending, now, None
        return self._spent

    @property
    def fraction(self) -> float:
        return self.spent_usd / self.limit_usd

    def ceiling(self) -> ModelTier | None:
        """The highest tier the policy allows a decision at the current spend (None: any)."""
        fraction = self.fraction
        if fraction >= self.policy["stop_at"]:
            return self.policy["stop_tier"]
        if fraction >= self.policy["cap_at"]:
            return self.policy["cap_tier"]
        return None

    @property
    def stopped(self) -> bool:
        """True once Layer 2 must stop spending."""
        return self.fraction >= self.policy["stop_at"]

    def record_usd(self, usd: float, *, in_decision: bool = False) -> float:
        """Add spend (USD) to the shared total; returns the new total as far as it is known.

        ``in_decision=True`` is for Layer 2 only: spend the decision being made on this thread made
        itself, which ``on_stop: raise`` does not hold against that decision. Any other spend (an
        application's calls, the proxy's forwarded calls) must never count as the next decision's
        own on the same thread, or a spent budget would let that decision through."""
        if isinstance(usd, bool) or not isinstance(usd, (int, float)) or not math.isfinite(usd) or usd < 0:
            raise ValueError(f"spend must be a finite amount >= 0, got {usd!r}")
        if in_decision:
            self._this_decision.usd = getattr(self._this_decision, "usd", 0.0) + usd
        with self._lock:
            amount = self._pending + usd
            self._pending = 0.0
        try:
            total = self.store.add(amount)
        except Exception as exc:
            with self._lock:
                self._pending += amount
                self._spent += usd
            self.store_error = f"{type(exc).__name__}: {exc}"
            return self._spent
        with self._lock:
            self._spent, self._read_at, self.store_error = total + self._pending, time.monotonic(), None
        return self._spent

    def reset(self) -> None:
        self.store.reset()
        with self._lock:
            self._spent, self._pending, self._read_at = 0.0, 0.0, -math.inf

    def apply(self, tier: ModelTier, policies: list[str], reasons: list[str]) -> ModelTier:
        """Cap ``tier`` as the policy says for the current spend; raise when it says so."""
        fraction = self.fraction
        policy = self.policy
        own, self._this_decision.usd = getattr(self._this_decision, "usd", 0.0), 0.0
        if fraction >= policy["stop_at"]:
            if policy["on_stop"] == "raise" and fraction - own / self.limit_usd >= policy["stop_at"]:
                raise BudgetExceededError(
                    f"budget of ${self.limit_usd:g} used up (${self.spent_usd:.4f} spent)")
            cap, label = policy["stop_tier"], "budget_exhausted"
        elif fraction >= policy["cap_at"]:
            cap, label = policy["cap_tier"], "budget_cap"
        else:
            return tier
        if tier.rank > cap.rank:
            policies.append(f"{label}:{cap}")
            reasons.append(f"{fraction:.0%} of the ${self.limit_usd:g} budget spent: capped at {cap}")
            return cap
        return tier
