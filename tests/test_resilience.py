"""Retry policy, circuit breaker and rate limit, driven by a hand-turned clock."""

from __future__ import annotations

import pytest

from dmr import ConfigError, Router
from dmr.resilience import CircuitBreaker, RateLimiter, RetryPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_backoff_grows_exponentially_with_jitter_and_a_ceiling():
    policy = RetryPolicy(max_attempts=5, initial_delay=0.5, backoff=2.0, max_delay=3.0)
    lows = [policy.delay(n, rng=lambda: 0.0) for n in (1, 2, 3, 4)]
    highs = [policy.delay(n, rng=lambda: 1.0) for n in (1, 2, 3, 4)]
    assert lows == [0.25, 0.5, 1.0, 1.5]
    assert highs == [0.5, 1.0, 2.0, 3.0]


def test_retry_after_wins_when_longer():
    policy = RetryPolicy(initial_delay=0.1)
    assert policy.delay(1, retry_after=4.0) == 4.0
    assert policy.delay(1, retry_after=0.0, rng=lambda: 1.0) == pytest.approx(0.1)


def test_the_breaker_cycle():
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_secs=10, clock=clock)
    for _ in range(2):
        assert breaker.allow() is None
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open" and "open" in breaker.allow()
    clock.now += 10
    assert breaker.state == "half_open"
    assert breaker.allow() is None            # one trial
    assert "trial" in breaker.allow()         # and only one
    breaker.record_failure()
    assert breaker.state == "open" and breaker.opened == 2
    clock.now += 10
    assert breaker.allow() is None
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow() is None


def test_a_success_resets_the_count():
    breaker = CircuitBreaker(failure_threshold=2, cooldown_secs=1, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == "closed"


def test_hold_keeps_calls_away_without_opening():
    clock = Clock()
    breaker = CircuitBreaker(clock=clock)
    breaker.hold(30)
    assert "Retry-After" in breaker.allow()
    clock.now += 30
    assert breaker.allow() is None and breaker.state == "closed"


def test_the_token_bucket():
    clock = Clock()
    limiter = RateLimiter(2, 1.0, clock=clock)
    assert limiter.acquire() and limiter.acquire() and not limiter.acquire()
    clock.now += 0.5
    assert limiter.acquire() and not limiter.acquire()


def test_bad_options_are_reported_together_with_their_paths():
    with pytest.raises(ConfigError) as info:
        Router(l2_retry_policy={"max_attempts": 0, "jitter": 1},
               l2_circuit_breaker={"failure_threshold": 2.5}, l2_rate_limit={"per_secs": 1})
    paths = {path for path, _ in info.value.problems}
    assert paths == {"l2_retry_policy.max_attempts", "l2_retry_policy.jitter",
                     "l2_circuit_breaker.failure_threshold", "l2_rate_limit.calls"}
