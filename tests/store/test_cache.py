"""Decision caches: the in-memory LRU+TTL cache, the Redis cache, and how the Router uses them."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmr import Decision, ModelRegistry, ModelTier, Router, TaskComplexity, TaskType, Verdict
from dmr.store import MemoryCache, RedisCache, RedisCacheBackend, cache_key
from dmr.store.cache import decision_from_dict


def by_last_char(task, ctx):
    """A classifier whose answer depends only on the task's last character."""
    if task.endswith("x"):
        return Verdict(TaskType.CONVERSATION, TaskComplexity.SIMPLE, 0.99, 0.05, "custom", "ends in x")
    return Verdict(TaskType.REASONING, TaskComplexity.RESEARCH, 0.99, 0.95, "custom", "ends in something else")


def test_a_hit_returns_the_same_answer_with_a_new_id_and_says_it_came_from_the_cache():
    router = Router(cache_enabled=True)
    first = router.classify("Design a CQRS architecture for a payments ledger")
    second = router.classify("Design a CQRS architecture for a payments ledger")
    assert (second.tier, second.model_name, second.task_type, second.complexity, second.layer) == \
           (first.tier, first.model_name, first.task_type, first.complexity, first.layer)
    assert second.decision_id != first.decision_id
    assert "cache_hit" in second.policies_applied and "cache_hit" not in first.policies_applied
    assert [step.layer for step in second.trace] == ["cache"]
    assert first.decision_id in second.trace[0].detail
    assert router.cache.stats()["hits"] == 1


def test_two_long_tasks_that_differ_only_in_the_last_character_never_share_an_entry():
    common = "lorem ipsum dolor sit amet " * 4000  # ~108 KB, far beyond the analysis window
    x_task, y_task = common + "x", common + "y"
    assert len(x_task) > 100_000
    router = Router(cache_enabled=True, custom_classifier=by_last_char)
    low = router.classify(x_task)
    high = router.classify(y_task)
    assert low.tier == ModelTier.LOW and high.tier == ModelTier.HIGH
    assert router.classify(y_task).tier == ModelTier.HIGH
    assert router.classify(x_task).tier == ModelTier.LOW
    assert router.cache.stats() == {"entries": 2, "hits": 2, "misses": 2, "evictions": 0, "errors": 0}


def test_the_key_covers_history_tenant_and_router_fingerprint():
    base = cache_key("task", None, None, "fp1")
    assert cache_key("task", None, None, "fp1") == base
    assert cache_key("task", [{"role": "user", "content": "hi"}], None, "fp1") != base
    assert cache_key("task", None, {"tenant_id": "a"}, "fp1") != base
    assert cache_key("task", None, {"tenant_id": "a"}, "fp1") != cache_key("task", None, {"tenant_id": "b"}, "fp1")
    assert cache_key("task", None, None, "fp2") != base
    # Length prefixes: moving characters from one part to the next gives another key.
    assert cache_key("ab", None, None, "c") != cache_key("a", None, None, "bc")
    # Equal mappings in another order are the same tenant.
    assert cache_key("t", None, {"a": 1, "b": 2}, "f") == cache_key("t", None, {"b": 2, "a": 1}, "f")


def test_routers_with_different_configuration_sharing_one_cache_do_not_mix():
    shared = MemoryCache()
    cheap = Router(cache_backend=shared, tier_matrix={"reasoning": dict.fromkeys(["simple", "standard", "complex", "research"], "low")}, custom_classifier=by_last_char)
    normal = Router(cache_backend=shared, custom_classifier=by_last_char)
    assert cheap.classify("think hard, y").tier == ModelTier.LOW
    assert normal.classify("think hard, y").tier == ModelTier.HIGH
    assert shared.stats()["hits"] == 0


def test_a_registry_change_changes_the_key():
    registry = ModelRegistry.bundled()
    router = Router(cache_enabled=True, model_registry=registry)
    before = router.classify("Write a haiku about routers")
    provider = router.registry.providers()[0]
    registry.register_provider(provider, {tier: f"renamed-{tier}" for tier in ModelTier.levels()})
    after = router.classify("Write a haiku about routers")
    assert "cache_hit" not in after.policies_applied
    assert after.model_name != before.model_name


def test_history_and_tenant_config_are_part_of_the_key():
    router = Router(cache_enabled=True)
    router.classify("Summarise this thread")
    with_history = router.classify("Summarise this thread", history=[{"role": "user", "content": "earlier"}])
    assert "cache_hit" not in with_history.policies_applied
    tenant = router.classify("Summarise this thread", tenant_config={"max_tier": "low"})
    assert "cache_hit" not in tenant.policies_applied and tenant.tier == ModelTier.LOW
    again = router.classify("Summarise this thread", tenant_config={"max_tier": "low"})
    assert "cache_hit" in again.policies_applied and again.tier == ModelTier.LOW


def test_post_hooks_run_on_hits_and_errors_are_not_cached():
    seen = []
    router = Router(cache_enabled=True, post_classify_hooks=[lambda d: seen.append(d.decision_id)],
                    pii_policy={"block": True})
    router.classify("Hello there")
    router.classify("Hello there")
    assert len(seen) == 2
    from dmr.errors import PIIBlockedError

    for _ in range(2):
        with pytest.raises(PIIBlockedError):
            router.classify("mail me at someone@example.com")
    assert len(router.cache) == 1


def test_memory_cache_evicts_least_recently_used_and_expires(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("dmr.store.cache.time.monotonic", lambda: clock[0])
    cache = MemoryCache(max_entries=2, ttl_s=60)
    decision = Router().classify("Hello")
    cache.set("a", decision)
    cache.set("b", decision)
    assert cache.get("a") is decision  # "a" is now the most recently used
    cache.set("c", decision)
    assert cache.get("b") is None and cache.get("a") is decision and cache.get("c") is decision
    assert cache.stats()["evictions"] == 1
    clock[0] += 61
    assert cache.get("a") is None and len(cache) == 1
    with pytest.raises(ValueError):
        MemoryCache(max_entries=0)


def test_cache_enabled_false_wins_over_a_backend():
    router = Router(cache_enabled=False, cache_backend=MemoryCache())
    assert router.cache is None


def test_a_decision_survives_the_json_round_trip():
    decision = Router().classify("Prove that there are infinitely many primes")
    again = decision_from_dict(json.loads(json.dumps(decision.to_dict())))
    assert isinstance(again, Decision)
    assert again == decision and again.trace == decision.trace


def test_bad_cache_backend_is_a_config_error():
    from dmr.errors import ConfigError

    with pytest.raises(ConfigError):
        Router(cache_backend=object())
    with pytest.raises(ConfigError):
        Router(cache_backend={"type": "memcached"})


# -- Redis ---------------------------------------------------------------------------------------

@pytest.fixture
def redis_cache(redis_server):
    cache = RedisCache(url=redis_server.url, prefix=f"test-{uuid.uuid4().hex}:")
    yield cache
    if redis_server.running:
        cache.clear()
    cache.close()


@pytest.mark.service("redis")
def test_redis_cache_is_shared_by_replicas_and_holds_json(redis_server, redis_cache):
    one = Router(cache_backend=redis_cache)
    two = Router(cache_backend=RedisCache(url=redis_server.url, prefix=redis_cache.prefix))
    first = one.classify("Implement Dijkstra's algorithm in Rust")
    hit = two.classify("Implement Dijkstra's algorithm in Rust")
    assert "cache_hit" in hit.policies_applied and hit.tier == first.tier and hit.layer == first.layer
    import redis

    client = redis.Redis.from_url(redis_server.url)
    keys = client.keys(f"{redis_cache.prefix}*")
    assert len(keys) == 1
    stored = json.loads(client.get(keys[0]))
    assert stored["decision_id"] == first.decision_id and stored["tier"] == str(first.tier)
    assert 0 < client.pttl(keys[0]) <= 3_600_000
    client.close()


@pytest.mark.service("redis")
def test_redis_cache_from_the_seed_name_and_from_yaml_style_options(redis_server, tmp_path):
    seed = Router(cache_backend=RedisCacheBackend(host="127.0.0.1", port=redis_server.port, prefix="seed:"))
    seed.classify("Translate 'good morning' to French")
    assert "cache_hit" in seed.classify("Translate 'good morning' to French").policies_applied
    (tmp_path / "dmr.yaml").write_text(f"cache_backend:\n  type: redis\n  url: {redis_server.url}\n  prefix: yaml-\n")
    router = Router.from_yaml(tmp_path / "dmr.yaml")
    assert isinstance(router.cache, RedisCache) and router.cache.prefix == "yaml-"
    seed.cache.clear()
    router.cache.clear()


@pytest.mark.service("redis")
def test_redis_down_means_misses_not_failures_and_the_cache_comes_back(redis_server, redis_cache):
    redis_cache.retry_after_s = 0.0
    router = Router(cache_backend=redis_cache)
    router.classify("What is the capital of France?")
    redis_server.stop()
    try:
        for _ in range(3):
            decision = router.classify("What is the capital of France?")
            assert "cache_hit" not in decision.policies_applied
        assert redis_cache.stats()["errors"] >= 1 and redis_cache.stats()["last_error"]
    finally:
        redis_server.start()
    router.classify("What is the capital of France?")  # fills the (restarted, empty) server
    assert "cache_hit" in router.classify("What is the capital of France?").policies_applied


@pytest.mark.service("redis")
def test_an_unreadable_redis_entry_is_a_miss(redis_server, redis_cache):
    import redis

    router = Router(cache_backend=redis_cache)
    router.classify("Hello")
    client = redis.Redis.from_url(redis_server.url)
    for key in client.keys(f"{redis_cache.prefix}*"):
        client.set(key, b"\x80not json")
    client.close()
    assert "cache_hit" not in router.classify("Hello").policies_applied
    assert redis_cache.stats()["errors"] == 1


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1), st.text(min_size=1), st.text(max_size=3))
def test_distinct_tasks_never_share_a_key(prefix, tail_a, tail_b):
    a, b = prefix + tail_a, prefix + tail_b
    assert (cache_key(a, None, None, "fp") == cache_key(b, None, None, "fp")) == (a == b)


HARD = "Prove that there are infinitely many primes and formalise the proof in Lean."


def _spend(budget, usd):
    budget.record_usd(usd)
    budget._read_at = float("-inf")  # read the store now, not after the refresh interval


@pytest.mark.parametrize("on_stop", ["raise", "cap"])
def test_a_decision_cached_before_a_budget_is_spent_is_not_served_after(tmp_path, on_stop):
    # The key once left out the budget: a spent budget was ignored until the entry expired.
    from dmr.errors import BudgetExceededError

    router = Router(budget_usd=1, budget_store=str(tmp_path / "spend.sqlite3"), cache_enabled=True,
                    budget_policy={"on_stop": on_stop})
    first = router.classify(HARD)
    assert first.tier == ModelTier.HIGH and "cache_hit" not in first.policies_applied
    _spend(router.budget, 0.9)  # past cap_at (80 %): medium at most
    capped = router.classify(HARD)
    assert capped.tier == ModelTier.MEDIUM and "cache_hit" not in capped.policies_applied
    assert router.classify(HARD).policies_applied[-1] == "cache_hit"  # same stage: served again
    _spend(router.budget, 5)
    if on_stop == "raise":
        with pytest.raises(BudgetExceededError):
            router.classify(HARD)
    else:
        assert any(p.startswith("budget_exhausted") for p in router.classify(HARD).policies_applied)


def test_a_tenant_s_spent_budget_is_not_bypassed_by_the_cache(tmp_path):
    router = Router(budget_store=str(tmp_path / "spend.sqlite3"), cache_enabled=True)
    tenant = {"tenant_id": "acme", "budget_usd": 1}
    assert router.classify(HARD, tenant_config=tenant).tier == ModelTier.HIGH
    _spend(router.tenant_budget("acme"), 5)
    after = router.classify(HARD, tenant_config=tenant)
    assert after.tier != ModelTier.HIGH and "cache_hit" not in after.policies_applied
