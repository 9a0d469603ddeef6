"""budget_usd: real spend from the provider's reported usage × registry prices, the 80 % / 100 %
policy, and a total that survives restarts (SQLite by default, Redis when configured)."""

from __future__ import annotations

import pytest
from fault_server import FaultServer, Reply
from services import redis_server  # noqa: F401  (the fixture)

from dmr import BudgetExceededError, ConfigError, ModelRegistry, ModelTier, Router
from dmr.budget import Budget

ANSWER = {"task_type": "code_creation", "complexity": "complex", "confidence": 0.9}
HARD = "Design and implement a distributed rate limiter service with Redis and failover."
# $10 per 1M tokens: 30,000 reported input tokens cost $0.30.
USAGE = (30_000, 0)


@pytest.fixture
def server():
    with FaultServer() as running:
        running.script(Reply.openai(ANSWER, usage=USAGE))
        yield running


def _registry():
    registry = ModelRegistry.bundled()
    registry.register_model_cost("fake-model", input_per_1m=10.0, output_per_1m=10.0)
    return registry


def _router(server, **options):
    return Router(layer2_provider="openai", layer2_model="fake-model", layer2_base_url=server.url + "/v1",
                  escalation_threshold=1.0, layer3_enabled=False, model_registry=_registry(), provider="openai",
                  l2_retry_policy={"max_attempts": 1}, **options)


def test_spend_is_priced_from_the_reported_usage(server):
    router = _router(server, budget_usd=10.0)
    decision = router.classify(HARD)
    assert decision.layer == "layer2"
    assert router.budget.spent_usd == pytest.approx(0.30)
    assert "$0.300000" in decision.reasoning


def test_spend_survives_a_restart(server, _isolated_user_state):
    _router(server, budget_usd=10.0).classify(HARD)
    assert (_isolated_user_state / "budget.sqlite3").is_file()
    again = _router(server, budget_usd=10.0)
    assert again.budget.spent_usd == pytest.approx(0.30)
    again.classify(HARD)
    assert _router(server, budget_usd=10.0).budget.spent_usd == pytest.approx(0.60)


def test_at_80_percent_decisions_are_capped_at_medium(server):
    router = _router(server, budget_usd=1.0)
    assert router.classify(HARD).tier == ModelTier.HIGH          # 30 % spent after this call
    router.classify(HARD)                                          # 60 %
    capped = router.classify(HARD)                                 # 90 %: this decision is capped
    assert capped.tier == ModelTier.MEDIUM
    assert "budget_cap:medium" in capped.policies_applied
    assert "budget" in capped.reasoning
    assert server.count == 3


def test_at_100_percent_layer2_stops_and_decisions_stay_capped(server):
    router = _router(server, budget_usd=0.6)
    router.classify(HARD)
    router.classify(HARD)  # 100 % spent
    stopped = router.classify(HARD)
    step = next(s for s in stopped.trace if s.layer == "layer2")
    assert step.outcome == "passed" and "budget" in step.detail
    assert server.count == 2
    assert stopped.tier.rank <= ModelTier.MEDIUM.rank
    assert any(p.startswith("budget_exhausted:") for p in stopped.policies_applied) or stopped.tier != ModelTier.HIGH


def test_the_policy_is_configurable(server):
    router = _router(server, budget_usd=0.3,
                     budget_policy={"stop_at": 1.0, "stop_tier": "low", "on_stop": "raise", "cap_at": 0.5})
    router.classify(HARD)
    with pytest.raises(BudgetExceededError, match="used up"):
        router.classify(HARD)
    relaxed = _router(server, budget_usd=0.3, budget_policy={"stop_tier": "low"})
    decision = relaxed.classify(HARD)
    assert decision.tier == ModelTier.LOW and "budget_exhausted:low" in decision.policies_applied


def test_the_application_can_add_its_own_spend(tmp_path):
    budget = Budget(5.0, store=str(tmp_path / "spend.sqlite3"))
    budget.record_usd(4.5)
    policies, reasons = [], []
    assert budget.apply(ModelTier.HIGH, policies, reasons) == ModelTier.MEDIUM
    assert policies == ["budget_cap:medium"]
    assert Budget(5.0, store=f"sqlite:///{tmp_path / 'spend.sqlite3'}").spent_usd == pytest.approx(4.5)
    with pytest.raises(ValueError):
        budget.record_usd(-1)
    budget.reset()
    assert Budget(5.0, store=str(tmp_path / "spend.sqlite3")).spent_usd == 0.0


def test_spend_outside_a_decision_never_lets_the_next_decision_through(tmp_path):
    # A proxy or an application records its calls' spend from pooled threads that also run
    # decisions: that spend must not count as the next decision's own Layer 2 spend.
    budget = Budget(1.0, {"on_stop": "raise"}, store=str(tmp_path / "spend.sqlite3"))
    budget.record_usd(3.0)  # the default: not a decision's own spend
    with pytest.raises(BudgetExceededError, match="used up"):
        budget.apply(ModelTier.HIGH, [], [])


def test_separate_budgets_by_name(tmp_path):
    store = str(tmp_path / "spend.sqlite3")
    Budget(1.0, {"name": "team-a"}, store).record_usd(0.5)
    assert Budget(1.0, {"name": "team-b"}, store).spent_usd == 0.0


def test_bad_policies_are_reported_together():
    with pytest.raises(ConfigError) as info:
        Router(budget_usd=1.0, budget_policy={"cap_at": 2.0, "stop_at": 1.0, "cap_tier": "huge",
                                              "on_stop": "explode", "color": "red"})
    paths = {path for path, _ in info.value.problems}
    assert paths == {"budget_policy.cap_at", "budget_policy.cap_tier", "budget_policy.on_stop",
                     "budget_policy.color"}


@pytest.mark.service("redis")
def test_replicas_share_spend_in_redis(server, redis_server):
    url = redis_server.url
    one = _router(server, budget_usd=10.0, budget_store=url, budget_policy={"name": "shared-test"})
    one.budget.reset()
    two = _router(server, budget_usd=10.0, budget_store=url, budget_policy={"name": "shared-test"})
    one.classify(HARD)
    two.classify(HARD)
    fresh = _router(server, budget_usd=10.0, budget_store=url, budget_policy={"name": "shared-test"})
    assert fresh.budget.spent_usd == pytest.approx(0.60)


@pytest.mark.service("redis")
def test_a_redis_outage_never_fails_a_decision_and_loses_no_spend(server, redis_server):
    url = redis_server.url
    router = _router(server, budget_usd=10.0, budget_store=url, budget_policy={"name": "outage-test"})
    router.budget.reset()
    redis_server.stop()
    try:
        decision = router.classify(HARD)
        assert decision.layer == "layer2"
        assert router.budget.store_error is not None
        assert router.budget.spent_usd == pytest.approx(0.30)
    finally:
        redis_server.start()
    router.classify(HARD)  # the pending spend goes in with this one
    fresh = _router(server, budget_usd=10.0, budget_store=url, budget_policy={"name": "outage-test"})
    assert fresh.budget.spent_usd == pytest.approx(0.60)
