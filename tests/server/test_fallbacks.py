"""A routed request whose provider fails before answering goes to the same tier at the next provider
of the Router's ``providers`` list. The failing provider is the fault injector (or a closed port);
the one that answers is the real local LLM behind the recording pass-through."""

from __future__ import annotations

import dataclasses
import hashlib
import socket

import openai
import pytest
from fault_server import Reply
from proxy_support import EASY, HARD, MODELS, PRICES, LiveServer, TestClient

from dmr import Router
from dmr.server import create_app

FLAKY = {"low": "flaky-small", "medium": "flaky-medium", "high": "flaky-large"}
USER = [{"role": "user", "content": EASY}]


def _registry(first_url: str, second_url: str | None, *, regions: dict | None = None) -> dict:
    second = {"tiers": dict(MODELS), **({"base_url": second_url} if second_url else {})}
    models = {name: {"provider": "second", "cost": {"input_per_1m": i, "output_per_1m": o}}
              for name, (i, o) in PRICES.items()}
    models.update({name: {"provider": "first", "cost": {"input_per_1m": 50.0, "output_per_1m": 50.0}}
                   for name in FLAKY.values()})
    providers = {"first": {"base_url": first_url, "tiers": dict(FLAKY)}, "second": second}
    for name, where in (regions or {}).items():
        providers[name]["regions"] = where
    return {"version": "test", "providers": providers, "models": models}


def _router(first_url: str, second_url: str | None, tmp_path=None, **options) -> Router:
    options.setdefault("providers", ["first", "second"])
    if tmp_path is not None:
        options.update(budget_usd=100.0, budget_store=str(tmp_path / "budget.sqlite3"))
    return Router(model_registry=_registry(first_url, second_url), layer2_enabled=False, layer3_enabled=False,
                  **options)


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.mark.service("llm")
def test_a_failing_provider_hands_the_request_to_the_next_one(fault_server, recorder, tmp_path):
    fault_server.script(Reply.error(503), Reply.error(429, {"Retry-After": "1"}))
    router = _router(fault_server.url + "/v1", recorder.base_url, tmp_path)
    with LiveServer(create_app(router)) as live, \
            openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(model="dmr", messages=USER, max_tokens=8)
        stream = list(client.chat.completions.create(model="dmr", messages=USER, max_tokens=8, stream=True,
                                                     stream_options={"include_usage": True}))
    answer = raw.parse()
    assert [r["body"]["model"] for r in fault_server.requests] == ["flaky-small", "flaky-small"]
    assert recorder.models == ["local-small", "local-small"]
    assert (raw.headers["x-dmr-provider"], raw.headers["x-dmr-model"], raw.headers["x-dmr-tier"]) == (
        "second", "local-small", "low")
    assert raw.headers["x-dmr-fallback"] == "first/flaky-small (503 server_error)"
    assert answer.choices[0].message.content and answer.usage.completion_tokens > 0
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    # Charged at the price of the model that answered.
    used = [answer.usage, stream[-1].usage]
    assert router.budget.spent_usd == pytest.approx(
        sum(u.prompt_tokens * 0.1 + u.completion_tokens * 0.2 for u in used) / 1e6)


@pytest.mark.service("llm")
def test_an_unreachable_provider_falls_back_for_every_api(recorder):
    router = _router(_closed_port(), recorder.base_url)
    with TestClient(create_app(router)) as client:
        chat = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER, "max_tokens": 4})
        message = client.post("/v1/messages", json={"model": "dmr", "messages": USER, "max_tokens": 4})
        completion = client.post("/v1/completions", json={"model": "dmr", "prompt": EASY, "max_tokens": 4})
        streamed = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER, "max_tokens": 4,
                                                             "stream": True})
    for answer in (chat, message, completion, streamed):
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-dmr-fallback"] == "first/flaky-small (502 upstream_unreachable)"
    assert streamed.text.rstrip().endswith("data: [DONE]")
    assert recorder.models == ["local-small"] * 4


def test_what_another_provider_cannot_fix_is_relayed(fault_server):
    second = _closed_port()  # never reached: each case must stop at the first provider
    fault_server.script(Reply.json({"error": {"message": "bad messages", "type": "invalid_request_error"}},
                                   status=400), Reply.error(503), Reply.error(503))
    cases = [(_router(fault_server.url + "/v1", second), {}, "dmr"),  # a 400 is the request's fault
             (_router(fault_server.url + "/v1", second), {"fallbacks": 0}, "dmr"),  # turned off
             (_router(fault_server.url + "/v1", second), {}, "flaky-small")]  # a model the client named
    statuses = []
    for router, options, model in cases:
        with TestClient(create_app(router, **options)) as client:
            answer = client.post("/v1/chat/completions", json={"model": model, "messages": USER})
        statuses.append(answer.status_code)
        assert "x-dmr-fallback" not in answer.headers
    assert statuses == [400, 503, 503] and fault_server.count == 3


def test_a_fallback_whose_context_window_cannot_hold_the_request_is_not_tried(fault_server):
    fault_server.script(Reply.error(503), Reply.error(503))
    registry = _registry(fault_server.url + "/v1", _closed_port())
    for name in MODELS.values():  # the second provider's models hold 500 tokens
        registry["models"][name]["capabilities"] = {"context_window": 500}
    router = Router(model_registry=registry, providers=["first", "second"], layer2_enabled=False,
                    layer3_enabled=False)
    long = [{"role": "system", "content": "Background: " + "the quarterly figures are attached. " * 300}, *USER]
    with TestClient(create_app(router)) as client:
        short_answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
        long_answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": long})
    # The short request is handed on (to a closed port here); the long one would overflow there.
    assert (short_answer.status_code, short_answer.headers["x-dmr-fallback"]) == (
        502, "first/flaky-small (503 server_error)")
    assert long_answer.status_code == 503 and "x-dmr-fallback" not in long_answer.headers
    assert fault_server.count == 2


def test_without_a_providers_list_there_is_no_fallback(fault_server):
    fault_server.script(Reply.error(503))
    router = _router(fault_server.url + "/v1", _closed_port(), providers=None, provider="first")
    with TestClient(create_app(router)) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    assert answer.status_code == 503 and "x-dmr-fallback" not in answer.headers
    assert router.fallbacks(router.classify(EASY)) == []


def test_when_every_provider_fails_the_last_error_names_the_ones_tried(fault_server):
    fault_server.script(Reply.error(500))
    with TestClient(create_app(_router(fault_server.url + "/v1", _closed_port()))) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    assert answer.status_code == 502 and answer.json()["error"]["code"] == "upstream_unreachable"
    assert answer.headers["x-dmr-provider"] == "second"
    assert answer.headers["x-dmr-fallback"] == "first/flaky-small (500 server_error)"


def test_fallbacks_keep_to_the_residency_and_skip_providers_the_proxy_cannot_reach(fault_server):
    registry = _registry(fault_server.url + "/v1", "http://127.0.0.1:9/v1", regions={"first": ["EU"], "second": ["US"]})
    registry["providers"]["third"] = {"base_url": "http://127.0.0.1:9/v1", "regions": ["EU"], "tiers": dict(MODELS)}
    eu = Router(model_registry=registry, providers=["first", "second", "third"], residency="EU",
                layer2_enabled=False, layer3_enabled=False)
    decision = eu.classify(EASY)
    assert (decision.provider, decision.model_name) == ("first", "flaky-small")
    assert eu.fallbacks(decision) == [("third", "local-small")]  # not "second": its models are in the US
    anywhere = Router(model_registry=registry, providers=["first", "second", "third"], layer2_enabled=False,
                      layer3_enabled=False)
    assert anywhere.fallbacks(anywhere.classify(EASY)) == [("second", "local-small"), ("third", "local-small")]
    # A provider whose key is not set is left out by the proxy, not tried and failed.
    registry["providers"]["second"]["api_key_env"] = "DMR_TEST_UNSET_KEY"
    fault_server.script(Reply.error(503))
    keyless = Router(model_registry=registry, providers=["first", "second"], layer2_enabled=False,
                     layer3_enabled=False)
    with TestClient(create_app(keyless)) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    assert answer.status_code == 503 and "x-dmr-fallback" not in answer.headers


def _one_provider(url: str, *, toolless: str | None = None, **options) -> Router:
    registry = _registry(url, None)
    del registry["providers"]["second"]
    registry["models"] = {name: spec for name, spec in registry["models"].items() if spec["provider"] == "first"}
    if toolless is not None:
        registry["models"][toolless]["capabilities"] = {"supports_function_calling": False}
    return Router(model_registry=registry, provider="first", layer2_enabled=False, layer3_enabled=False, **options)


def test_escalating_on_failure_goes_up_the_tiers_of_the_same_provider(fault_server, tmp_path):
    fault_server.script(Reply.error(429), Reply.openai("fine", usage=(10, 5)))
    router = _one_provider(fault_server.url + "/v1", budget_usd=100.0, budget_store=str(tmp_path / "b.sqlite3"))
    with TestClient(create_app(router, escalate_on_failure=True)) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    assert answer.status_code == 200, answer.text
    assert [r["body"]["model"] for r in fault_server.requests] == ["flaky-small", "flaky-medium"]
    assert (answer.headers["x-dmr-model"], answer.headers["x-dmr-tier"]) == ("flaky-medium", "low")
    assert answer.headers["x-dmr-fallback"] == "first/flaky-small (429 server_error)"
    assert router.budget.spent_usd == pytest.approx((10 + 5) * 50.0 / 1e6)  # at the medium model's price
    decision = router.classify(EASY)
    assert router.fallbacks(decision) == []  # off unless asked for
    assert router.fallbacks(decision, higher_tiers=True) == [("first", "flaky-medium"), ("first", "flaky-large")]
    assert router.fallbacks(decision, {"max_tier": "medium"}, higher_tiers=True) == [("first", "flaky-medium")]
    capped = dataclasses.replace(decision, policies_applied=("budget_cap:low",))
    assert router.fallbacks(capped, higher_tiers=True) == []  # a budget held this decision down
    router.budget.record_usd(85.0)  # past the policy's cap_at (80 %): failures no longer cost more
    assert router.fallbacks(decision, higher_tiers=True) == []


def test_escalation_stops_at_what_capped_the_decision(fault_server):
    fault_server.script(Reply.error(503))
    router = _one_provider(fault_server.url + "/v1")
    tenants = {"tenants": {"low-only": {"key_sha256": hashlib.sha256(b"k").hexdigest(), "max_tier": "low"}}}
    with TestClient(create_app(router, escalate_on_failure=True, fallbacks=5)) as client:
        everyone = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    with TestClient(create_app(router, escalate_on_failure=True, tenants=tenants)) as client:
        capped = client.post("/v1/chat/completions", headers={"Authorization": "Bearer k"},
                             json={"model": "dmr", "messages": [{"role": "user", "content": HARD}]})
    # Every tier failed: small, medium, large tried once each, then the last error relayed.
    assert everyone.status_code == 503
    assert everyone.headers["x-dmr-fallback"] == ("first/flaky-small (503 server_error), "
                                                  "first/flaky-medium (503 server_error)")
    assert capped.status_code == 503 and "x-dmr-fallback" not in capped.headers
    assert [r["body"]["model"] for r in fault_server.requests] == ["flaky-small", "flaky-medium", "flaky-large",
                                                                   "flaky-small"]


def test_fallbacks_skip_models_that_cannot_do_what_the_request_needs(fault_server):
    fault_server.script(Reply.error(503), Reply.openai("calling", usage=(10, 5)))
    router = _one_provider(fault_server.url + "/v1", toolless="flaky-medium")
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    with TestClient(create_app(router, escalate_on_failure=True)) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER, "tools": tools})
    assert answer.status_code == 200, answer.text
    assert [r["body"]["model"] for r in fault_server.requests] == ["flaky-small", "flaky-large"]
    decision = router.classify(EASY)
    assert router.fallbacks(decision, higher_tiers=True, needs=["function_calling"]) == [("first", "flaky-large")]
    assert router.fallbacks(decision, higher_tiers=True) == [("first", "flaky-medium"), ("first", "flaky-large")]


@pytest.mark.service("llm")
def test_an_input_too_long_for_one_models_window_goes_to_the_next_provider(fault_server, recorder):
    # The local LLM's window is 2,048 tokens: llama.cpp refuses this input with its own 400.
    fault_server.script(Reply.openai("read it all", usage=(5000, 5)))
    router = _router(recorder.base_url, fault_server.url + "/v1")  # first: the local LLM; second: the injector
    long = [{"role": "user", "content": "Count the words: " + "word " * 5000}]
    with TestClient(create_app(router)) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": long, "max_tokens": 4})
        short = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER, "max_tokens": 4})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-dmr-provider"] == "second"
    tried = answer.headers["x-dmr-fallback"]
    assert tried.startswith("first/flaky-") and tried.endswith("(400 exceed_context_size_error)")
    assert short.status_code == 200 and "x-dmr-fallback" not in short.headers
    assert len(recorder.models) == 2 and fault_server.count == 1
