"""Where a chat completion goes: aliases are routed, registry models passed through to their
provider, native-API providers refused unless the registry gives them an OpenAI-compatible URL,
and each provider's key (from its environment variable) sent to it alone."""

from __future__ import annotations

import asyncio

import pytest
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
