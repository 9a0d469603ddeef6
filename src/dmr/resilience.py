"""Keeping a flaky dependency (a Layer 2 provider) from taking the router down with it: a retry
policy with exponential backoff and jitter, a circuit breaker and a rate limit.

All three are small, thread-safe and clock-driven (``time.monotonic``); none of them sleeps on its
own — the caller decides whether a wait fits its deadline.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from dmr.errors import ConfigError

__all__ = ["CircuitBreaker", "RateLimiter", "RetryPolicy"]

Clock = Callable[[], float]


def _numbers(option: str, given: Mapping[str, Any] | None, spec: Mapping[str, tuple[type, float, float]],
             problems: list[tuple[str, str]]) -> dict[str, float]:
    """Check a dict option against ``{key: (type, min, max)}``; collect every problem."""
    out: dict[str, float] = {}
    if given is None:
        return out
    if not isinstance(given, Mapping):
        problems.append((option, "must be a mapping"))
        return out
    for key, value in given.items():
        if key not in spec:
            problems.append((f"{option}.{key}", f"unknown key (known: {', '.join(spec)})"))
            continue
        kind, low, high = spec[key]
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or (kind is int and float(value) != int(value))):
            problems.append((f"{option}.{key}", f"must be {'an integer' if kind is int else 'a number'}, got {value!r}"))
        elif not low <= value <= high:
            problems.append((f"{option}.{key}", f"must be between {low:g} and {high:g}, got {value!r}"))
        else:
            out[key] = kind(value)
    return out


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` calls in all; before attempt *n* + 1 wait ``initial_delay × backoff**(n-1)``
    (at most ``max_delay``) with equal jitter, or longer if the provider sent ``Retry-After``."""

    max_attempts: int = 2
    initial_delay: float = 0.25
    backoff: float = 2.0
    max_delay: float = 5.0

    _SPEC = {"max_attempts": (int, 1, 10), "initial_delay": (float, 0.0, 60.0),
             "backoff": (float, 1.0, 10.0), "max_delay": (float, 0.0, 300.0)}

    @classmethod
    def from_option(cls, given: Mapping[str, Any] | None, problems: list[tuple[str, str]]) -> RetryPolicy:
        return cls(**_numbers("l2_retry_policy", given, cls._SPEC, problems))  # type: ignore[arg-type]

    def delay(self, failed_attempts: int, retry_after: float | None = None,
              rng: Callable[[], float] = random.random) -> float:
        base = min(self.max_delay, self.initial_delay * self.backoff ** max(0, failed_attempts - 1))
        wait = base / 2 + rng() * base / 2
        return max(wait, retry_after) if retry_after is not None else wait


class CircuitBreaker:
    """Closed → (``failure_threshold`` failures in a row) → open for ``cooldown_secs`` → half-open:
    one trial call; its success closes the breaker, its failure opens it again. ``hold(seconds)``
    keeps calls away for as long as a provider asked (``Retry-After``) without counting a failure."""

    _SPEC = {"failure_threshold": (int, 1, 1000), "cooldown_secs": (float, 0.0, 86400.0)}

    def __init__(self, failure_threshold: int = 5, cooldown_secs: float = 30.0, *, clock: Clock = time.monotonic) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_secs = cooldown_secs
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False
        self._hold_until = 0.0
        self.opened = 0  # how many times it opened (for metrics and tests)

    @classmethod
    def from_option(cls, given: Mapping[str, Any] | None, problems: list[tuple[str, str]]) -> CircuitBreaker:
        return cls(**_numbers("l2_circuit_breaker", given, cls._SPEC, problems))  # type: ignore[arg-type]

    @property
    def state(self) -> str:
        with self._lock:
            return self._state(self._clock())

    def _state(self, now: float) -> str:
        if self._opened_at is None:
            return "closed"
        return "open" if now - self._opened_at < self.cooldown_secs else "half_open"

    def allow(self) -> str | None:
        """None when a call may go ahead, else why not."""
        with self._lock:
            now = self._clock()
            if now < self._hold_until:
                return f"provider asked to wait {self._hold_until - now:.1f} s more (Retry-After)"
            state = self._state(now)
            if state == "closed":
                return None
            if state == "open":
                return (f"circuit breaker open after {self._failures} failures in a row; "
                        f"retrying in {self.cooldown_secs - (now - self._opened_at):.1f} s")  # type: ignore[operator]
            if self._trial:
                return "circuit breaker half-open: a trial call is already in flight"
            self._trial = True
            return None

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial = False

    def record_failure(self) -> None:
        with self._lock:
            now = self._clock()
            self._failures += 1
            if self._trial or (self._opened_at is None and self._failures >= self.failure_threshold):
                self.opened += 1
                self._opened_at = now
            self._trial = False

    def release(self) -> None:
        """A trial call ended without telling whether the provider is healthy."""
        with self._lock:
            self._trial = False

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._hold_until = max(self._hold_until, self._clock() + seconds)


class RateLimiter:
    """A token bucket: at most ``calls`` per ``per_secs``, with bursts up to ``calls``. It never
    waits: a call over the limit is refused, and Layer 2 passes instead of queueing."""

    _SPEC = {"calls": (int, 1, 1_000_000), "per_secs": (float, 0.001, 86400.0)}

    def __init__(self, calls: int, per_secs: float = 1.0, *, clock: Clock = time.monotonic) -> None:
        self.calls = calls
        self.per_secs = per_secs
        self._rate = calls / per_secs
        self._tokens = float(calls)
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    @classmethod
    def from_option(cls, given: Mapping[str, Any] | None, problems: list[tuple[str, str]]) -> RateLimiter | None:
        if given is None:
            return None
        values = _numbers("l2_rate_limit", given, cls._SPEC, problems)
        if isinstance(given, Mapping) and "calls" not in given:
            problems.append(("l2_rate_limit.calls", "is required"))
        return cls(**values) if "calls" in values else None  # type: ignore[arg-type]

    def acquire(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.calls), self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


def raise_problems(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise ConfigError("invalid Layer 2 configuration:\n" + "\n".join(f"  {p}: {m}" for p, m in problems),
                          problems)
