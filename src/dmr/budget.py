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

A write that fails (the store is down, locked or slow) leaves nothing half-done: SQLite rolls the
transaction back, and Redis applies each amount under an operation id at most once, so the amount
is kept and written again later without being counted twice. ``close()`` makes a last attempt.
"""

from __future__ import annotations

import atexit
import logging
import math
import re
import sqlite3
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import Any, Mapping, Protocol

from dmr.errors import BudgetExceededError, ConfigError
from dmr.types import ModelTier

__all__ = ["Budget", "RedisSpendStore", "SQLiteSpendStore", "SpendStore", "open_store"]

log = logging.getLogger("dmr.budget")

_POLICY_DEFAULTS: Mapping[str, Any] = {"cap_at": 0.8, "cap_tier": "medium", "stop_at": 1.0,
                                       "stop_tier": "medium", "on_stop": "cap", "name": "default"}


_STORE_FORMS = ("a file path, sqlite:///path, redis://host:6379/0, rediss://host:6379/0 "
                "or unix:///path/to/redis.sock")
# "name:/…" with a name of two or more characters: a URL (a one-letter name is a Windows drive).
_URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")
# How long a SQLite store waits for another process's lock: briefly while a decision waits on it (a
# locked store then leaves the spend pending and the decision uses the last total read), longer for
# the last write at close.
_BUSY_WAIT = 0.25
_CLOSE_WAIT = 5.0


def _bad_store(spec: object, reason: str) -> ConfigError:
    return ConfigError(f"budget_store {spec!r}: {reason} (supported: {_STORE_FORMS})", [("budget_store", reason)])


def _busy(exc: BaseException) -> bool:
    """True for an SQLite error that passes once another connection lets go of the file."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    return isinstance(exc, sqlite3.OperationalError) and name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


class SpendStore(Protocol):
    def total(self) -> float: ...
    def add(self, usd: float, op_id: str | None = None) -> float: ...
    def reset(self) -> None: ...


class SQLiteSpendStore:
    """One row per budget name in a local SQLite file; safe across threads and processes.

    A file that cannot be a store (corrupt, a directory, not writable) is a :class:`ConfigError`;
    one that another process keeps locked for longer than ``busy_wait`` seconds raises
    ``sqlite3.OperationalError`` (the caller may retry)."""

    def __init__(self, path: str | Path, name: str = "default", *, busy_wait: float = _BUSY_WAIT) -> None:
        if not str(path).strip():
            raise _bad_store(str(path), "empty path")
        self.path = Path(path).expanduser()
        self.name = name
        self._lock = threading.Lock()
        self._busy_wait = busy_wait
        if self.path.is_dir():
            raise _bad_store(str(path), "is a directory")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One connection, used under the lock from any thread (opening one per read costs more
            # than the read); autocommit, with explicit transactions where it matters.
            self._db = self._connect()
        except (OSError, sqlite3.Error) as exc:
            raise _bad_store(str(path), f"cannot open: {exc}") from None
        weakref.finalize(self, self._db.close)
        try:
            # A write now, so that a file this process may not write is reported at once.
            self._write("CREATE TABLE IF NOT EXISTS spend (name TEXT PRIMARY KEY, usd REAL NOT NULL)")
        except sqlite3.Error as exc:
            if _busy(exc):
                raise
            self._db.close()
            raise _bad_store(str(path), f"not a usable SQLite file: {exc}") from None

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self._busy_wait, isolation_level=None, check_same_thread=False)

    def wait(self, seconds: float) -> None:
        """Wait up to ``seconds`` for another process's lock from now on (:meth:`Budget.close`)."""
        with self._lock:
            self._busy_wait = seconds
            self._db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> float | None:
        """Run one write in its own transaction; on any failure (COMMIT's included) roll it back, so
        that the connection is never left inside a transaction that holds the file's lock."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute(sql, params)
            row = db.execute("SELECT usd FROM spend WHERE name = ?", (self.name,)).fetchone() if params else None
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:  # the connection is unusable: start afresh
                    db.close()
                    self._db = self._connect()
                    weakref.finalize(self, self._db.close)
            raise
        return float(row[0]) if row else None

    def total(self) -> float:
        with self._lock:
            row = self._db.execute("SELECT usd FROM spend WHERE name = ?", (self.name,)).fetchone()
        return float(row[0]) if row else 0.0

    def add(self, usd: float, op_id: str | None = None) -> float:
        # op_id is not needed: a failed write is rolled back, so a retry cannot count twice.
        with self._lock:
            total = self._write("INSERT INTO spend (name, usd) VALUES (?, ?) "
                                "ON CONFLICT(name) DO UPDATE SET usd = usd + excluded.usd", (self.name, usd))
        return float(total or 0.0)

    def reset(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM spend WHERE name = ?", (self.name,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


# Add ARGV[1] to KEYS[1] unless operation KEYS[2] was already applied (it is remembered for ARGV[2]
# seconds): a client that timed out after Redis applied an increment retries it as a no-op.
_ADD_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  return redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
end
return redis.call('GET', KEYS[1]) or '0'
"""


class RedisSpendStore:
    """The total under ``dmr:budget:<name>``; each amount is added once per operation id (a Lua
    script: ``SET dmr:budget:<name>:op:<id> NX EX`` then INCRBYFLOAT, atomically)."""

    op_ttl_secs = 86_400  # how long a retry of the same operation is recognised

    def __init__(self, url: str, name: str = "default", *, timeout: float = 0.5) -> None:
        from dmr.redis_client import connect

        self.key = f"dmr:budget:{name}"
        self._client = connect(url, "budget_store", self, timeout=timeout)
        self._add_once = self._client.register_script(_ADD_ONCE)

    def total(self) -> float:
        value = self._client.get(self.key)
        return float(value) if value is not None else 0.0

    def add(self, usd: float, op_id: str | None = None) -> float:
        op_key = f"{self.key}:op:{op_id or uuid.uuid4().hex}"
        return float(self._add_once(keys=[self.key, op_key], args=[repr(float(usd)), self.op_ttl_secs]))

    def reset(self) -> None:
        self._client.delete(self.key)

    def close(self) -> None:
        self._client.close()


def open_store(spec: str | None, name: str) -> SpendStore:
    """``None`` → ``budget.sqlite3`` beside the user registry; ``redis://…``/``rediss://…``/``unix://…``
    → Redis; ``sqlite:///path`` or a plain path → that SQLite file. Anything else that looks like a
    URL, or an empty string, is a :class:`ConfigError`."""
    if spec is None:
        from dmr.registry import user_registry_path

        return SQLiteSpendStore(user_registry_path().parent / "budget.sqlite3", name)
    from dmr.redis_client import REDIS_SCHEMES

    if not isinstance(spec, str) or not spec.strip():
        raise _bad_store(spec, "must be a non-empty string")
    scheme, sep, rest = spec.partition("://")
    if sep and (scheme.lower() + sep) in REDIS_SCHEMES:
        return RedisSpendStore(scheme.lower() + sep + rest, name)
    if spec.lower().startswith("sqlite:///"):
        return SQLiteSpendStore(spec[len("sqlite:///") - 1:], name)
    if sep or _URL_LIKE.match(spec):
        raise _bad_store(spec, "not a supported store URL")
    return SQLiteSpendStore(spec, name)


class Budget:
    """The spend against ``limit_usd`` and what the policy makes of it. Reads of the shared total
    are cached for ``refresh_secs``, so a decision costs no store round trip; a store that is down
    never fails a decision (its spend is kept and added once it is back, at the next record or
    refresh, or at :meth:`close`)."""

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
        self._pending = 0.0  # spend not yet sent to the store
        # Writes that failed but may have been applied (a timeout after the store did the work):
        # sent again under the same operation id, which the store applies at most once.
        self._unsure: list[tuple[str, float]] = []
        self.store_error: str | None = None
        # Spend recorded by the decision running on this thread, so that a decision whose own
        # Layer 2 call used the budget up still gets its (capped) answer rather than an error.
        self._this_decision = threading.local()
        try:
            self.store  # noqa: B018  # open it now: a bad store is a configuration error, reported at once
        except ConfigError:
            raise
        except Exception as exc:  # busy or down: opened again on first use, like a Redis that is down
            self.store_error = f"{type(exc).__name__}: {exc}"

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
        if not problems and ModelTier(out["stop_tier"]).rank > ModelTier(out["cap_tier"]).rank:
            # A spent budget that allowed a higher tier than a nearly spent one would loosen the cap.
            problems.append(("budget_policy.stop_tier",
                             f"must not be above cap_tier ({out['stop_tier']} above {out['cap_tier']})"))
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
            total = self._flush()
            if total is not None:
                with self._lock:
                    self._spent, self._read_at, self.store_error = total + self.pending_usd, now, None
        return self._spent

    @property
    def pending_usd(self) -> float:
        """Spend recorded here that the store has not confirmed yet."""
        return self._pending + sum(usd for _, usd in self._unsure)

    def _flush(self) -> float | None:
        """Write what is pending and return the store's total; None if the store failed (a store
        outage must not fail a decision: ``store_error`` says why and the amount stays pending)."""
        with self._lock:
            ops, self._unsure = self._unsure, []
            if self._pending:
                ops.append((uuid.uuid4().hex, self._pending))
                self._pending = 0.0
        done, total = 0, None
        try:
            store = self.store
            for op_id, usd in ops:
                total = store.add(usd, op_id)
                done += 1
            if total is None:
                total = store.total()
        except Exception as exc:
            with self._lock:
                self._unsure[:0] = ops[done:done + 1]
                self._pending += sum(usd for _, usd in ops[done + 1:])  # never sent
            if self.pending_usd:
                _unflushed.add(self)
            self.store_error = f"{type(exc).__name__}: {exc}"
            return None
        return total

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
            self._pending += usd
        total = self._flush()
        with self._lock:
            if total is None:
                self._spent += usd
            else:
                self._spent, self._read_at, self.store_error = total + self.pending_usd, time.monotonic(), None
        return self._spent

    def reset(self) -> None:
        self.store.reset()
        with self._lock:
            self._spent, self._pending, self._unsure, self._read_at = 0.0, 0.0, [], -math.inf

    def close(self) -> None:
        """Write what is still pending (one last try) and release the store's connection; the budget
        opens it again if used after this. Spend that cannot be written is logged as lost."""
        if self.pending_usd:
            if hasattr(self._store, "wait"):  # an open SQLite store: the last chance is worth a wait
                self._store.wait(_CLOSE_WAIT)
            self._flush()
        if self.pending_usd:
            log.warning("budget %r: $%.6f of spend could not be written to the store and is lost (%s)",
                        self.policy["name"], self.pending_usd, self.store_error)
        _unflushed.discard(self)
        store, self._store = self._store, None
        if store is not None and hasattr(store, "close"):
            store.close()

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


# Budgets holding spend their store has not taken: closed (one last write) at interpreter exit,
# for an application that never calls close().
_unflushed: weakref.WeakSet[Budget] = weakref.WeakSet()


@atexit.register
def _close_unflushed() -> None:
    for budget in list(_unflushed):
        budget.close()
