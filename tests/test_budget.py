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


@pytest.fixture
def short_sqlite_timeout(monkeypatch):
    """SQLite waits 0.1 s (not 5 s) for another connection's lock, so a lock fails fast."""
    import sqlite3

    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **kw: connect(*a, **{**kw, "timeout": 0.1}))


def test_a_failed_commit_is_rolled_back_and_its_spend_written_once(tmp_path, short_sqlite_timeout):
    import sqlite3

    path = tmp_path / "spend.sqlite3"
    budget = Budget(10.0, store=str(path))
    budget.record_usd(1.0)
    reader = sqlite3.connect(path, isolation_level=None)  # e.g. a dashboard holding a read transaction
    reader.execute("BEGIN")
    reader.execute("SELECT usd FROM spend").fetchall()
    budget.record_usd(2.0)  # its COMMIT cannot take the file while the reader holds it
    assert "locked" in budget.store_error
    reader.execute("COMMIT")
    assert reader.execute("SELECT usd FROM spend").fetchall() == [(1.0,)]  # nothing half-written
    budget.record_usd(0.5)
    assert budget.store_error is None
    assert budget.spent_usd == pytest.approx(3.5)
    assert reader.execute("SELECT usd FROM spend").fetchall() == [(3.5,)]
    assert Budget(10.0, store=str(path)).spent_usd == pytest.approx(3.5)
    reader.close()


def test_a_locked_store_never_fails_router_construction(tmp_path, short_sqlite_timeout):
    import sqlite3

    path = tmp_path / "spend.sqlite3"
    Budget(10.0, store=str(path)).record_usd(1.0)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        router = Router(budget_usd=10.0, budget_store=str(path), layer3_enabled=False)
        assert "locked" in router.budget.store_error
        router.classify("What is 2+2?")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert router.budget.spent_usd == pytest.approx(1.0)
    assert router.budget.store_error is None


@pytest.mark.parametrize("store, reason", [
    ("", "non-empty"), ("REDIS:/h:6379", "not a supported store URL"), ("redis:/h:6379", "not a supported store URL"),
    ("postgres://x/y", "not a supported store URL"), ("sqlite://relative.db", "not a supported store URL"),
])
def test_a_mistyped_store_is_a_config_error(store, reason, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=reason) as info:
        Router(budget_usd=1.0, budget_store=store)
    assert [path for path, _ in info.value.problems] == ["budget_store"]
    assert "redis://host:6379/0" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no stray SQLite file named after the URL


@pytest.mark.service("redis")
def test_redis_schemes_are_case_insensitive(redis_server):
    budget = Budget(1.0, {"name": "case-test"}, redis_server.url.replace("redis://", "REDIS://"))
    budget.reset()
    budget.record_usd(0.25)
    assert Budget(1.0, {"name": "case-test"}, redis_server.url).spent_usd == pytest.approx(0.25)


def _file_of(content: bytes):
    def make(directory):
        (directory / "x.sqlite3").write_bytes(content)
        return directory / "x.sqlite3"
    return make


def _under_a_file(directory):
    (directory / "file").write_text("")
    return directory / "file" / "spend.sqlite3"  # a directory that cannot be made, as if unwritable


@pytest.mark.parametrize("make, reason", [
    (_file_of(b"not a database " * 300), "not a database"),
    (_file_of(b"SQLite format 3\0" + b"\xff" * 4000), "not a database"),
    (lambda directory: directory, "is a directory"),
    (_under_a_file, "cannot open"),
])
def test_a_store_file_that_cannot_be_used_is_a_config_error(make, reason, tmp_path):
    with pytest.raises(ConfigError, match=reason) as info:
        Router(budget_usd=1.0, budget_store=str(make(tmp_path)))
    assert [path for path, _ in info.value.problems] == ["budget_store"]


@pytest.mark.service("redis")
def test_a_redis_timeout_never_counts_spend_twice(redis_server):
    import redis

    budget = Budget(10.0, {"name": "timeout-test"}, redis_server.url)
    budget.reset()
    admin = redis.Redis.from_url(redis_server.url)
    # Writes wait until unpaused: the budget's client times out, yet Redis applies the increment
    # (and any the client itself retried) once the pause ends.
    admin.execute_command("CLIENT", "PAUSE", 60_000, "WRITE")
    try:
        budget.record_usd(1.0)
        assert budget.store_error is not None
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
    budget.record_usd(0.0)  # the retry of the same operation
    assert budget.store_error is None
    assert float(admin.get("dmr:budget:timeout-test")) == pytest.approx(1.0)
    assert budget.spent_usd == pytest.approx(1.0)
    admin.close()


@pytest.mark.service("redis")
def test_close_writes_the_spend_held_while_redis_was_down(redis_server, caplog):
    url = redis_server.url
    budget = Budget(10.0, {"name": "close-test"}, url)
    budget.reset()
    redis_server.stop()
    try:
        budget.record_usd(3.0)
        assert budget.store_error is not None
    finally:
        redis_server.start()
    budget.close()
    assert Budget(10.0, {"name": "close-test"}, url).spent_usd == pytest.approx(3.0)


@pytest.mark.service("redis")
def test_close_warns_of_spend_it_cannot_write(redis_server, caplog):
    budget = Budget(10.0, {"name": "lost-test"}, redis_server.url)
    redis_server.stop()
    try:
        budget.record_usd(3.0)
        budget.close()
    finally:
        redis_server.start()
    assert any("$3.000000" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


@pytest.mark.service("redis")
def test_closing_the_router_writes_the_spend_its_budgets_hold(redis_server):
    # Router.close() once left a budget's pending spend in memory: lost when the process exited.
    from dmr import Router

    url = redis_server.url
    router = Router(budget_usd=10, budget_store=url, budget_policy={"name": "router-close"})
    router.budget.reset()
    tenant = router.tenant_budget("acme", 5)
    tenant.reset()
    redis_server.stop()
    try:
        router.budget.record_usd(2.0)
        tenant.record_usd(1.0)
        assert router.budget.pending_usd == pytest.approx(2.0) and tenant.pending_usd == pytest.approx(1.0)
    finally:
        redis_server.start()
    router.close()
    assert Budget(10.0, {"name": "router-close"}, url).spent_usd == pytest.approx(2.0)
    assert Budget(5.0, {"name": tenant.policy["name"]}, url).spent_usd == pytest.approx(1.0)


def test_a_policy_whose_stop_tier_is_above_its_cap_tier_is_refused(tmp_path):
    # {cap_tier: low, stop_tier: high} capped at low from 80 % and then allowed high once spent.
    from dmr.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        Budget(1.0, {"cap_tier": "low", "stop_tier": "high"}, str(tmp_path / "spend.sqlite3"))
    assert caught.value.problems == [("budget_policy.stop_tier", "must not be above cap_tier (high above low)")]
    Budget(1.0, {"cap_tier": "medium", "stop_tier": "low"}, str(tmp_path / "spend.sqlite3"))  # tightening: fine


def test_a_decision_does_not_wait_for_a_store_another_process_keeps_locked(tmp_path):
    import sqlite3
    import threading
    import time

    path = tmp_path / "spend.sqlite3"
    router = Router(budget_usd=10.0, budget_store=str(path), layer3_enabled=False)
    router.budget.record_usd(1.0)
    writer = sqlite3.connect(path, isolation_level=None)  # another process, holding the file's lock
    writer.execute("BEGIN EXCLUSIVE")
    try:
        router.budget.record_usd(2.0)  # it cannot be written: it stays pending
        assert "locked" in router.budget.store_error
        time.sleep(0.6)  # past the re-read interval: the next decision tries the store again
        done = threading.Event()
        worker = threading.Thread(target=lambda: (router.classify("What is 2+2?"), done.set()))
        worker.start()
        assert done.wait(3.0), "a decision waited for the budget store's lock"
        worker.join()
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    time.sleep(0.6)
    assert router.budget.spent_usd == pytest.approx(3.0)  # the pending spend went in once it could
    router.close()
    assert Budget(10.0, store=str(path)).spent_usd == pytest.approx(3.0)


def test_close_waits_for_a_lock_to_write_the_spend_still_pending(tmp_path):
    import sqlite3
    import threading

    path = tmp_path / "spend.sqlite3"
    budget = Budget(10.0, store=str(path))
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN EXCLUSIVE")
    budget.record_usd(1.5)
    assert budget.pending_usd == pytest.approx(1.5)
    release = threading.Timer(0.8, lambda: (writer.execute("ROLLBACK"), writer.close()))
    release.start()
    budget.close()  # its last write waits for the lock, longer than a decision would
    release.join()
    assert Budget(10.0, store=str(path)).spent_usd == pytest.approx(1.5)
