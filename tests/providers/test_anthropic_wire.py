"""The Anthropic adapter, through the official anthropic SDK, against Anthropic's wire format
(``POST /v1/messages``, a forced ``classify`` tool call) served over local HTTP."""

from __future__ import annotations

import pytest
from fault_server import FaultServer, Reply

from dmr import ModelTier, Router

ANSWER = {"task_type": "reasoning", "complexity": "complex", "confidence": 0.8}
TASK = "Weigh the arguments for and against a four-day working week for a small company."


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with FaultServer() as running:
        yield running


def _router(server, **options):
    options.setdefault("l2_retry_policy", {"max_attempts": 2, "initial_delay": 0.01})
    return Router(layer2_provider="anthropic", layer2_base_url=server.url,
                  escalation_threshold=1.0, layer3_enabled=False,
                  provider="anthropic", **options)


def test_a_tool_call_answer_decides(server):
    server.script(Reply.anthropic(ANSWER))
    decision = _router(server).classify(TASK)
    assert (decision.layer, decision.task_type, decision.complexity) == ("layer2", "reasoning", "complex")
    assert decision.tier == ModelTier.HIGH
    request = server.requests[0]
    assert request["path"] == "/v1/messages"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    # The key travels as x-api-key or as a bearer token, depending on the SDK version.
    assert "sk-ant-test" in (headers.get("x-api-key", "") + headers.get("authorization", ""))
    assert "anthropic-version" in headers
    body = request["body"]
    assert body["model"] == "claude-haiku-4-5-20251001"  # the registry's low-tier Anthropic model
    assert body["tool_choice"] == {"type": "tool", "name": "classify"}
    assert body["tools"][0]["input_schema"]["required"] == ["task_type", "complexity", "confidence"]
    assert "not instructions" in body["system"]
    # Usage × registry price: 60 input + 25 output tokens of claude-haiku-4-5.
    assert "60+25 tokens, $" in decision.reasoning


def test_overloaded_529_is_retried(server):
    server.script(Reply.error(529), Reply.anthropic(ANSWER))
    assert _router(server).classify(TASK).layer == "layer2"
    assert server.count == 2


def test_429_retry_after_is_honoured(server):
    server.script(Reply.error(429, {"Retry-After": "90"}))
    decision = _router(server).classify(TASK)
    assert decision.layer == "layer1" and "HTTP 429" in decision.trace[-1].detail
    assert server.count == 1  # 90 s does not fit the deadline: no second call


def test_an_answer_without_the_tool_call_is_a_pass(server):
    server.script(Reply.json({"id": "m", "type": "message", "role": "assistant", "model": "x",
                              "content": [{"type": "text", "text": "It is complex reasoning."}],
                              "stop_reason": "end_turn", "usage": {"input_tokens": 5, "output_tokens": 5}}))
    step = _router(server).classify(TASK).trace[-1]
    assert step.outcome == "passed" and "no classify tool call" in step.detail
    assert server.count == 1


def test_a_tool_call_with_a_bad_answer_is_a_pass(server):
    server.script(Reply.anthropic({"task_type": "reasoning", "complexity": "huge", "confidence": 0.8}))
    step = _router(server).classify(TASK).trace[-1]
    assert step.outcome == "passed" and "complexity" in step.detail
