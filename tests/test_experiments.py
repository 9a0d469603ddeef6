"""ABTest (sticky arms) and ShadowMode (off the caller's path, never raising into it)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import pytest

from dmr.errors import ConfigError
from dmr.experiments import ABTest, ShadowMode, same_route
from dmr.router import Router
from dmr.types import ModelTier, TaskComplexity, TaskType, Verdict

EASY = "What is 2+2?"
HARD = "Design a CQRS architecture for an order system that is distributed across regions, with event sourcing"


def fixed(tier_complexity: TaskComplexity):
    return Router(custom_classifier=lambda task, ctx: Verdict(TaskType.CONVERSATION, tier_complexity, 0.9, 0.5,
                                                              "custom", "fixed"))


# -- ABTest --------------------------------------------------------------------------------------

def test_the_arm_is_recorded_and_routes_to_its_router():
    ab = ABTest(fixed(TaskComplexity.SIMPLE), fixed(TaskComplexity.RESEARCH), split=0.5)
    arms = {}
    for user in range(40):
        decision = ab.classify(EASY, key=f"user-{user}")
        arms[user] = decision.policies_applied[-1]
        assert decision.tier is (ModelTier.HIGH if arms[user] == "ab:treatment" else ModelTier.LOW)
    assert set(arms.values()) == {"ab:control", "ab:treatment"}


def test_assignment_is_sticky_for_a_key():
    ab = ABTest(Router(), Router(), split=0.3)
    for user in ("alice", "bob", 42, "zoë"):
        assert len({ab.classify(task, key=user).policies_applied[-1] for task in (EASY, HARD, "Hi")}) == 1


def test_assignment_is_the_same_in_another_process():
    keys = [f"tenant-{i}" for i in range(50)]
    code = ("import json, sys; from dmr.experiments import ABTest; "
            "ab = ABTest(None, None, split=0.2, name='exp7'); "
            f"print(json.dumps([ab.arm(k) for k in {keys!r}]))")
    # A different hash seed proves the assignment does not use Python's salted hash().
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout
    ab = ABTest(None, None, split=0.2, name="exp7")
    assert other.strip() == str([ab.arm(k) for k in keys]).replace("'", '"')


def test_the_split_is_respected_and_experiments_are_independent():
    ab = ABTest(None, None, split=0.05)
    treated = [k for k in range(20_000) if ab.arm(k) == "treatment"]
    assert 800 <= len(treated) <= 1200  # 5% of 20,000 = 1,000; the hash is uniform
    other = ABTest(None, None, split=0.05, name="another")
    assert {k for k in range(20_000) if other.arm(k) == "treatment"} != set(treated)
    assert all(ABTest(None, None, split=0.0).arm(k) == "control" for k in range(500))
    assert all(ABTest(None, None, split=1.0).arm(k) == "treatment" for k in range(500))


def test_the_key_can_come_from_the_tenant_config_or_a_callable():
    by_tenant = ABTest(Router(), Router(), split=0.5, key="tenant_id", name="t")
    arm = by_tenant.arm("acme")
    for task in (EASY, HARD):
        assert by_tenant.classify(task, tenant_config={"tenant_id": "acme"}).policies_applied[-1] == f"ab:t:{arm}"
    by_call = ABTest(Router(), Router(), split=0.5, key=lambda task, tenant: "constant")
    assert len({by_call.classify(t).policies_applied[-1] for t in (EASY, HARD, "Hi", "Yo")}) == 1
    # Without any key the task text is the key: the same task always lands in the same arm.
    plain = ABTest(Router(), Router(), split=0.5)
    assert plain.classify(HARD).policies_applied == plain.classify(HARD).policies_applied


def test_aclassify_and_context_manager():
    closed = []

    class Closing(Router):
        def close(self):
            closed.append(self)

    with ABTest(Closing(), Closing(), split=1.0) as ab:
        decision = asyncio.run(ab.aclassify(EASY, key="k"))
    assert decision.policies_applied[-1] == "ab:treatment" and len(closed) == 2


def test_bad_split_or_key_is_a_config_error():
    with pytest.raises(ConfigError):
        ABTest(Router(), Router(), split=1.5)
    with pytest.raises(ConfigError):
        ABTest(Router(), Router(), key=3)


# -- ShadowMode ----------------------------------------------------------------------------------

class Gate:
    """A shadow router that blocks until released, and says when it has started."""

    def __init__(self, router: Router, *, error: Exception | None = None) -> None:
        self.router, self.error = router, error
        self.entered, self.release = threading.Event(), threading.Event()
        self.calls = 0

    def classify(self, task, **kwargs):
        self.calls += 1
        self.entered.set()
        assert self.release.wait(10), "test never released the shadow"
        if self.error is not None:
            raise self.error
        return self.router.classify(task, **kwargs)


def test_a_slow_shadow_adds_nothing_to_the_primary_path():
    diffs = []
    gate = Gate(fixed(TaskComplexity.RESEARCH))
    with ShadowMode(Router(), gate, lambda p, s: diffs.append((p, s))) as shadow:
        decision = shadow.classify(EASY)
        # The primary answered while the shadow is still blocked: it never waited for it.
        assert decision.tier is ModelTier.LOW and not gate.release.is_set()
        assert gate.entered.wait(10)
        gate.release.set()
        assert shadow.flush(10)
    assert len(diffs) == 1
    primary, shadowed = diffs[0]
    assert primary is decision and shadowed.tier is ModelTier.HIGH
    assert shadow.stats["diffs"] == 1 and shadow.stats["compared"] == 1


def test_a_failing_shadow_never_raises_into_the_primary():
    gate = Gate(Router(), error=RuntimeError("shadow exploded"))
    gate.release.set()
    diffs = []
    with ShadowMode(Router(), gate, lambda p, s: diffs.append(p)) as shadow:
        decisions = [shadow.classify(task) for task in (EASY, HARD)]
        assert shadow.flush(10)
    assert [d.tier for d in decisions] == [ModelTier.LOW, ModelTier.HIGH]
    assert shadow.stats["shadow_errors"] == 2 and diffs == []


def test_a_failing_callback_is_counted_not_raised():
    def on_diff(primary, shadow):
        raise ValueError("bad callback")

    with ShadowMode(fixed(TaskComplexity.SIMPLE), fixed(TaskComplexity.RESEARCH), on_diff) as shadow:
        shadow.classify(EASY)
        assert shadow.flush(10)
    assert shadow.stats["callback_errors"] == 1


def test_equal_routes_do_not_call_on_diff():
    calls = []
    with ShadowMode(Router(), Router(), lambda p, s: calls.append(1)) as shadow:
        for task in (EASY, HARD, "Translate 'hello' into French"):
            shadow.classify(task)
        assert shadow.flush(10)
    assert calls == [] and shadow.stats["compared"] == 3 and shadow.stats["diffs"] == 0


def test_a_full_queue_drops_and_counts():
    gate = Gate(Router())
    shadow = ShadowMode(Router(), gate, max_queue=2)
    shadow.classify(EASY)
    assert gate.entered.wait(10)  # the worker holds task 1; the queue is empty again
    for _ in range(5):
        assert shadow.classify(HARD).tier is ModelTier.HIGH
    stats = shadow.stats
    assert (stats["submitted"], stats["dropped"], stats["queued"]) == (3, 3, 2)
    gate.release.set()
    assert shadow.flush(10)
    shadow.close()
    assert shadow.stats["compared"] == 3
    shadow.classify(EASY)  # after close: still answers, the task is dropped
    assert shadow.stats["dropped"] == 4


def test_async_on_diff_and_aclassify():
    seen = []

    async def on_diff(primary, shadow):
        seen.append((primary.tier, shadow.tier))

    with ShadowMode(fixed(TaskComplexity.SIMPLE), fixed(TaskComplexity.RESEARCH), on_diff) as shadow:
        asyncio.run(shadow.aclassify(EASY))
        assert shadow.flush(10)
    assert seen == [(ModelTier.LOW, ModelTier.HIGH)]


def test_close_does_not_hang_on_a_stuck_shadow():
    gate = Gate(Router())
    shadow = ShadowMode(Router(), gate, max_queue=1)
    shadow.classify(EASY)
    assert gate.entered.wait(10)
    shadow.classify(EASY)  # fills the queue
    shadow.close(timeout=0.05)  # returns although the worker is stuck
    gate.release.set()


def test_same_route_ignores_ids_and_timing():
    router = Router()
    a, b = router.classify(EASY), router.classify(EASY)
    assert a.decision_id != b.decision_id and same_route(a, b)
    assert not same_route(a, router.classify(HARD))
