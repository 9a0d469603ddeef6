"""POST /v1/embeddings: passed unrouted to the configured embeddings provider. The embeddings come
from a real llama.cpp server started for them (the local model, mean-pooled); the real chat-only
server stands for a provider that serves none; the fault injector only counts what reaches it."""

from __future__ import annotations

import json
import math

import openai
import pytest
from fault_server import Reply
from llm_server import local_embedder  # noqa: F401  (the fixture)
from proxy_support import LiveServer, TestClient, registry_for

from dmr import Router
from dmr.errors import ConfigError
from dmr.server import create_app

PRICE = 0.5  # USD per 1M input tokens of the embedding model


def _router(embeddings_url: str | None, tmp_path=None, **options) -> Router:
    registry = registry_for(None)
    registry["providers"]["embed"] = {"base_url": embeddings_url} if embeddings_url else {}
    registry["models"]["smollm2-embed"] = {"provider": "embed", "cost": {"input_per_1m": PRICE, "output_per_1m": 0}}
    if tmp_path is not None:
        options = {"budget_usd": 10.0, "budget_store": str(tmp_path / "budget.sqlite3"), **options}
    return Router(model_registry=registry, provider="local", layer2_enabled=False, layer3_enabled=False, **options)


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


@pytest.mark.service("llm")
def test_embeddings_are_passed_to_the_provider_and_charged(local_embedder, tmp_path):
    texts = ["The cat sat on the mat.", "A cat was sitting on a rug.", "Quarterly revenue rose by 4%."]
    with openai.OpenAI(base_url=local_embedder.base_url, api_key="x", max_retries=0) as direct:
        expected = direct.embeddings.create(model="smollm2-embed", input=texts)
    router = _router(local_embedder.base_url, tmp_path)
    with LiveServer(create_app(router, embeddings_provider="embed")) as live, \
            openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0) as client:
        raw = client.embeddings.with_raw_response.create(model="smollm2-embed", input=texts)
        tokens = client.embeddings.create(model="smollm2-embed", input=[[1, 2, 3]])
    got = raw.parse()
    assert raw.headers["x-dmr-provider"] == "embed" and raw.headers["x-dmr-model"] == "smollm2-embed"
    assert "x-dmr-tier" not in raw.headers  # not routed
    assert [d.index for d in got.data] == [0, 1, 2] and len(got.data[0].embedding) == len(expected.data[0].embedding)
    assert all(_cosine(g.embedding, e.embedding) > 0.9999 for g, e in zip(got.data, expected.data))
    assert len(tokens.data) == 1
    spent = (got.usage.prompt_tokens + tokens.usage.prompt_tokens) * PRICE / 1e6
    assert got.usage.prompt_tokens > 0 and router.budget.spent_usd == pytest.approx(spent)


@pytest.mark.service("llm")
def test_a_provider_that_serves_no_embeddings_has_its_error_relayed(local_llm):
    # The chat server was not started for embeddings: llama.cpp refuses, and its answer reaches the client.
    with TestClient(create_app(_router(local_llm.base_url), embeddings_provider="embed")) as client:
        answer = client.post("/v1/embeddings", json={"model": "smollm2-embed", "input": "hello"})
    # llama.cpp's own status and words (501, "does not support embeddings"), as it sent them.
    assert answer.status_code == 501 and "does not support embeddings" in answer.json()["error"]["message"]


def test_without_an_embeddings_provider_the_endpoint_says_how_to_set_one():
    with TestClient(create_app(_router(None))) as client:
        answer = client.post("/v1/embeddings", json={"model": "m", "input": "hello"})
    assert answer.status_code == 501 and answer.headers["x-should-retry"] == "false"
    error = answer.json()["error"]
    assert error["code"] == "embeddings_not_configured" and "--embeddings-provider" in error["message"]


def test_an_embeddings_provider_not_in_the_registry_is_a_configuration_error():
    with pytest.raises(ConfigError, match="'nope' is not a provider of the model registry.*embed, local"):
        create_app(_router(None), embeddings_provider="nope")
    with pytest.raises(ConfigError, match="embeddings_provider"):
        create_app(_router(None), embeddings_provider="  ")


def test_personal_data_is_blocked_before_it_reaches_the_provider(fault_server):
    fault_server.script(Reply.json({"object": "list", "data": []}))
    router = _router(fault_server.url + "/v1", pii_policy={"block": True})
    with TestClient(create_app(router, embeddings_provider="embed")) as client:
        blocked = client.post("/v1/embeddings", json={"model": "m", "input": [
            "a harmless sentence", "mail jane.doe@example.com the report"]})
        passed = client.post("/v1/embeddings", json={"model": "m", "input": "a harmless sentence"})
    assert blocked.status_code == 400 and blocked.json()["error"]["code"] == "pii_blocked"
    assert "input[1] contains personal data" in blocked.json()["error"]["message"]
    assert passed.status_code == 200 and fault_server.count == 1
    assert fault_server.requests[0]["body"] == {"model": "m", "input": "a harmless sentence"}


@pytest.mark.parametrize("body, param, code", [
    ({"input": "hi"}, "model", "missing_required_parameter"),
    ({"model": 3, "input": "hi"}, "model", "invalid_type"),
    ({"model": "m"}, "input", "missing_required_parameter"),
    ({"model": "m", "input": []}, "input", "invalid_type"),
    ({"model": "m", "input": ["a", 2]}, "input", "invalid_type"),
    ({"model": "m", "input": [[1, 2], []]}, "input", "invalid_type"),
    ({"model": "m", "input": {"text": "a"}}, "input", "invalid_type"),
    ({"model": "m", "input": "\ud800"}, "input", "invalid_encoding"),
])
def test_a_malformed_request_is_a_400_naming_the_parameter(fault_server, body, param, code):
    fault_server.script(Reply.json({"object": "list", "data": []}))
    with TestClient(create_app(_router(fault_server.url + "/v1"), embeddings_provider="embed")) as client:
        # As JSON escapes: a lone surrogate has no UTF-8 form.
        answer = client.post("/v1/embeddings", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert (answer.json()["error"]["param"], answer.json()["error"]["code"]) == (param, code)
    assert fault_server.count == 0
