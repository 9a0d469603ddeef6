"""The Google adapter, through the official google-genai SDK, against Gemini's wire format
(``POST /v1beta/models/{model}:generateContent`` with a JSON schema) served over local HTTP."""

from __future__ import annotations

import pytest
from fault_server import FaultServer, Reply

from dmr import Router
from dmr.providers.google import split_base_url

ANSWER = {"task_type": "translation", "complexity": "standard", "confidence": 0.75}
TASK = "Render this short product description into German for our web shop, keeping the tone."


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("GOOGLE_API_KEY", "g-test-key")
    with FaultServer() as running:
        yield running


def _router(server, **options):
    options.setdefault("l2_retry_policy", {"max_attempts": 2, "initial_delay": 0.01})
    return Router(layer2_provider="google", layer2_base_url=server.url + "/v1beta",
                  escalation_threshold=1.0, layer3_enabled=False,
                  **options)


def test_split_base_url():
    assert split_base_url("https://generativelanguage.googleapis.com/v1beta") == (
        "https://generativelanguage.googleapis.com/", "v1beta")
    assert split_base_url("http://127.0.0.1:8080") == ("http://127.0.0.1:8080/", None)
    assert split_base_url(None) == (None, None)


def test_a_json_answer_decides(server):
    server.script(Reply.google(ANSWER))
    decision = _router(server).classify(TASK)
    assert (decision.layer, decision.task_type, decision.complexity) == ("layer2", "translation", "standard")
    request = server.requests[0]
    assert request["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["x-goog-api-key"] == "g-test-key"
    config = request["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["properties"]["complexity"]["enum"][0] == "simple"
    assert "not instructions" in request["body"]["systemInstruction"]["parts"][0]["text"]
    assert "40+15 tokens, $" in decision.reasoning


def test_thinking_tokens_are_billed_as_output(server):
    reply = Reply.google(ANSWER)
    body = reply.body.replace(b'"totalTokenCount"', b'"thoughtsTokenCount": 100, "totalTokenCount"')
    server.script(Reply(200, body, reply.headers))
    assert "40+115 tokens" in _router(server).classify(TASK).reasoning


def test_a_503_is_retried_and_a_400_is_not(server):
    server.script(Reply.error(503), Reply.google(ANSWER))
    assert _router(server).classify(TASK).layer == "layer2"
    assert server.count == 2
    server.script(Reply.error(400))
    decision = _router(server).classify(TASK)
    assert decision.layer == "layer1" and "HTTP 400" in decision.trace[-1].detail
    assert server.count == 3


def test_a_text_answer_that_is_not_json_is_a_pass(server):
    server.script(Reply.google("I think this is a translation task."))
    step = _router(server).classify(TASK).trace[-1]
    assert step.outcome == "passed" and "not JSON" in step.detail


def test_a_stalled_answer_times_out(server):
    server.script(Reply.google(ANSWER, delay=10.0))
    decision = _router(server, layer2_timeout=1.0, l2_retry_policy={"max_attempts": 1}).classify(TASK)
    assert decision.layer == "layer1"
    assert decision.trace[-1].outcome == "error"
