"""Where a chat completion goes: aliases are routed, registry models passed through to their
provider, native-API providers refused unless the registry gives them an OpenAI-compatible URL,
and each provider's key (from its environment variable) sent to it alone."""

from __future__ import annotations

import asyncio

import pytest
from fault_server import Reply
from proxy_support import EASY, HARD, MODELS, TestClient, make_router, registry_for

from dmr import Router
from dmr.server import create_app
from dmr.server.routing import destination

USER_EASY = [{"role": "user", "content": EASY}]
ALIASES = ("dmr", "dmr-auto", "auto")


@pytest.mark.service("llm")
def test_every_default_alias_routes_and_custom_aliases_replace_them(recorder):
    router = make_router(recorder.base_url, layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        for alias in ALIASES:
            assert client.post("/v1/chat/completions", json={"model": alias, "messages": USER_EASY,
                                                             "max_tokens": 1}).status_code == 200
    with TestClient(create_app(router, aliases=["cheapest-good"])) as client:
        routed = client.post("/v1/chat/completions", json={"model": "cheapest-good", "max_tokens": 1,
                                                           "messages": [{"role": "user", "content": HARD}]})
        old = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER_EASY})
    assert recorder.models == [MODELS["low"]] * 3 + [MODELS["high"]]
    assert routed.headers["x-dmr-tier"] == "high"
    assert old.status_code == 404 and "'cheapest-good'" in old.json()["error"]["message"]


@pytest.mark.service("llm")
def test_a_model_the_registry_prices_for_a_provider_is_passed_through(recorder):
    document = registry_for(recorder.base_url)
    document["models"]["local-xl"] = {"provider": "local", "cost": {"input_per_1m": 50, "output_per_1m": 90}}
    document["models"]["orphan"] = {"cost": {"input_per_1m": 1, "output_per_1m": 1}}
    router = Router(model_registry=document, provider="local", layer2_enabled=False, layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        offered = client.post("/v1/chat/completions", json={"model": "local-xl", "messages": USER_EASY,
                                                            "max_tokens": 1})
        orphan = client.post("/v1/chat/completions", json={"model": "orphan", "messages": USER_EASY})
    assert offered.status_code == 200 and offered.headers["x-dmr-model"] == "local-xl"
    assert recorder.models == ["local-xl"]
    assert orphan.status_code == 404 and "no provider offers it" in orphan.json()["error"]["message"]


@pytest.mark.service("llm")
def test_the_provider_key_comes_from_its_environment_variable(recorder, monkeypatch):
    monkeypatch.setenv("DMR_TEST_UPSTREAM_KEY", "upstream-secret")
    router = make_router(recorder.base_url, api_key_env="DMR_TEST_UPSTREAM_KEY", layer3_enabled=False)
    with TestClient(create_app(router, api_key="proxy-secret")) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER_EASY, "max_tokens": 1},
                             headers={"Authorization": "Bearer proxy-secret"})
    assert answer.status_code == 200
    [(_, headers)] = recorder.requests
    assert headers["authorization"] == "Bearer upstream-secret"


def test_a_provider_key_variable_that_is_not_set_is_a_clear_error(fault_server, monkeypatch):
    monkeypatch.delenv("DMR_TEST_UPSTREAM_KEY", raising=False)
    router = make_router(fault_server.url + "/v1", api_key_env="DMR_TEST_UPSTREAM_KEY", layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER_EASY})
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "provider_key_missing"
    assert "DMR_TEST_UPSTREAM_KEY" in answer.json()["error"]["message"]
    assert answer.headers["x-should-retry"] == "false" and answer.headers["x-dmr-tier"] == "low"
    assert fault_server.count == 0


@pytest.mark.parametrize(("provider", "base_url"), [("anthropic", "https://api.anthropic.com"),
                                                    ("google", "https://generativelanguage.googleapis.com/v1beta"),
                                                    ("google", None)])
def test_a_native_api_provider_is_refused_with_how_to_configure_it(provider, base_url):
    router = make_router(base_url, provider=provider, layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        routed = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER_EASY})
        named = client.post("/v1/chat/completions", json={"model": "local-large", "messages": USER_EASY})
    for answer in (routed, named):
        assert answer.status_code == 501
        error = answer.json()["error"]
        assert error["code"] == "provider_not_openai_compatible"
        assert "OpenAI-compatible base_url" in error["message"] and provider in error["message"]
        assert answer.headers["x-should-retry"] == "false"
    assert routed.headers["x-dmr-provider"] == provider and routed.headers["x-dmr-decision-id"]


@pytest.mark.parametrize(("provider", "base_url"), [
    ("anthropic", "https://api.anthropic.com/v1/"),
    ("google", "https://generativelanguage.googleapis.com/v1beta/openai/"),
    ("google", "https://llm-gateway.example.com/v1")])
def test_a_native_provider_at_an_openai_compatible_url_is_used(provider, base_url):
    router = make_router(base_url, provider=provider, layer3_enabled=False)
    where = asyncio.run(destination(router, ALIASES, "dmr", [{"role": "user", "content": HARD}]))
    assert (where.provider, where.model) == (provider, "local-large")
    assert where.url == base_url.rstrip("/") + "/chat/completions"


@pytest.mark.service("llm")
def test_a_native_provider_name_pointed_at_a_compatible_server_is_forwarded(recorder):
    router = make_router(recorder.base_url, provider="anthropic", layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER_EASY, "max_tokens": 1})
    assert answer.status_code == 200 and answer.headers["x-dmr-provider"] == "anthropic"
    assert recorder.models == [MODELS["low"]]


def test_a_decision_without_a_model_is_a_clear_error():
    router = Router(model_registry={"version": "empty"}, layer2_enabled=False, layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER_EASY})
    assert answer.status_code == 500 and answer.json()["error"]["code"] == "no_model_for_tier"
    assert answer.headers["x-dmr-tier"] == "low"


def test_named_models_can_be_turned_off(fault_server):
    fault_server.script(Reply.openai("ok"))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    with TestClient(create_app(router, allow_named_models=False)) as client:
        named = client.post("/v1/chat/completions", json={"model": "local-large", "messages": USER_EASY})
        routed = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER_EASY})
        listed = [m["id"] for m in client.get("/v1/models").json()["data"]]
        one = client.get("/v1/models/local-large")
    assert named.status_code == 404
    error = named.json()["error"]
    assert (error["code"], error["param"]) == ("model_not_found", "model") and "only routes" in error["message"]
    assert routed.status_code == 200 and routed.headers["x-dmr-model"] == "local-small"
    assert listed == list(ALIASES) and one.status_code == 404
    assert [r["body"]["model"] for r in fault_server.requests] == ["local-small"]


@pytest.mark.parametrize(("on_stop", "forwarded"), [("raise", False), ("cap", True)])
def test_a_named_model_is_refused_when_the_budget_is_spent_and_its_policy_raises(fault_server, tmp_path, on_stop,
                                                                                 forwarded):
    fault_server.script(Reply.openai("ok"))
    router = make_router(fault_server.url + "/v1", tmp_path, layer3_enabled=False, budget_usd=0.01,
                         budget_policy={"on_stop": on_stop})
    router.budget.record_usd(0.02)
    with TestClient(create_app(router)) as client:
        answer = client.post("/v1/chat/completions", json={"model": "local-large", "messages": USER_EASY})
    router.close()
    if forwarded:  # a capped budget caps routing's tiers; a model the client names is its choice
        assert answer.status_code == 200 and fault_server.count == 1
    else:
        assert answer.status_code == 429 and fault_server.count == 0
        error = answer.json()["error"]
        assert (error["type"], error["code"]) == ("insufficient_quota", "budget_exceeded")
        assert answer.headers["x-should-retry"] == "false"


PII = "Email jane.doe@example.com her test results"


@pytest.mark.parametrize(("model", "messages", "turn"), [
    pytest.param("dmr", [{"role": "system", "content": PII}, {"role": "user", "content": "summarize"}], 0,
                 id="system prompt"),
    pytest.param("dmr", [{"role": "developer", "content": [{"type": "text", "text": PII}]},
                         {"role": "user", "content": "summarize"}], 0, id="developer prompt as parts"),
    pytest.param("dmr", [{"role": "user", "content": PII}, {"role": "assistant", "content": "ok"},
                         {"role": "user", "content": "go on"}], 0, id="an earlier user turn"),
    pytest.param("local-large", [{"role": "user", "content": PII}], 0, id="a named model"),
    pytest.param("local-large", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                                 {"role": "user", "content": [{"type": "text", "text": PII}]}], 2,
                 id="a named model, latest turn as parts"),
])
def test_the_pii_block_looks_at_every_user_turn_and_the_system_prompt(fault_server, model, messages, turn):
    router = make_router(fault_server.url + "/v1", layer3_enabled=False, pii_policy={"block": True})
    with TestClient(create_app(router)) as client:
        answer = client.post("/v1/chat/completions", json={"model": model, "messages": messages})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "pii_blocked" and f"messages[{turn}]" in error["message"] and "email" in error["message"]
    assert answer.headers["x-should-retry"] == "false"
    assert fault_server.count == 0


def test_the_pii_block_leaves_the_models_own_turns_and_unblocked_policies_alone(fault_server):
    fault_server.script(Reply.openai("ok"))
    quoted = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": PII},
              {"role": "user", "content": "thanks"}]
    blocking = make_router(fault_server.url + "/v1", layer3_enabled=False, pii_policy={"block": True})
    flagging = make_router(fault_server.url + "/v1", layer3_enabled=False, pii_policy={"min_tier": "medium"})
    with TestClient(create_app(blocking)) as client:
        assert client.post("/v1/chat/completions", json={"model": "dmr", "messages": quoted}).status_code == 200
    # The proxy's block and the Router's policy both read the two user turns; each is scanned once.
    scans = blocking._pii._memo.cache_info()
    assert scans.misses == 2 and scans.hits >= 2
    with TestClient(create_app(flagging)) as client:
        assert client.post("/v1/chat/completions", json={"model": "local-small", "messages": [
            {"role": "user", "content": PII}]}).status_code == 200
    assert fault_server.count == 2


def test_the_pii_floor_sees_an_earlier_user_turn_and_not_the_models_own(fault_server):
    fault_server.script(Reply.openai("ok"), Reply.openai("ok"))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False, pii_policy={"min_tier": "high"})
    told = [{"role": "user", "content": PII}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": EASY}]
    quoted = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": PII},
              {"role": "user", "content": EASY}]
    with TestClient(create_app(router)) as client:
        raised = client.post("/v1/chat/completions", json={"model": "dmr", "messages": told})
        left = client.post("/v1/chat/completions", json={"model": "dmr", "messages": quoted})
    assert (raised.headers["x-dmr-tier"], left.headers["x-dmr-tier"]) == ("high", "low")
    assert fault_server.count == 2


def test_a_short_follow_up_is_routed_at_the_tier_of_the_request_it_follows(fault_server):
    fault_server.script(Reply.openai("ok"), Reply.openai("ok"))
    router = make_router(fault_server.url + "/v1")
    alone = [{"role": "user", "content": "continue"}]
    following = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": HARD},
                 {"role": "assistant", "content": "Here is the first part."}, {"role": "user", "content": "continue"}]
    with TestClient(create_app(router)) as client:
        low = client.post("/v1/chat/completions", json={"model": "dmr", "messages": alone})
        raised = client.post("/v1/chat/completions", json={"model": "dmr", "messages": following})
    assert (low.headers["x-dmr-tier"], raised.headers["x-dmr-tier"]) == ("low", "high")
    assert [r["body"]["model"] for r in fault_server.requests] == [MODELS["low"], MODELS["high"]]
