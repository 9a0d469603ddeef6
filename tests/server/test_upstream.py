"""Relaying the provider's answer: its HTTP errors keep their status and error object; a provider
that cannot be reached is a 502 and one that does not answer in time a 504, in OpenAI's shape;
a stream that breaks off ends with an error event. Faults a real server will not produce on
demand come from the fault injector (tests/fault_server.py)."""

from __future__ import annotations

import json
import socket

import openai
import pytest
from fault_server import Reply
from proxy_support import EASY, HARD, LiveServer, TestClient, make_router

from dmr.server import create_app

USER = [{"role": "user", "content": EASY}]


def _chunk(text: str) -> bytes:
    event = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def _client(fault_server, **app_options):
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    return TestClient(create_app(router, **app_options))


@pytest.mark.service("llm")
def test_a_real_provider_error_is_relayed_with_its_status_and_message(router, recorder):
    with LiveServer(create_app(router)) as live, openai.OpenAI(base_url=f"{live.url}/v1", api_key="x",
                                                               max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="dmr", messages=USER, n=3)
    assert recorder.models == ["local-small"]
    assert refused.value.status_code == 400
    assert "Field 'n'" in refused.value.message
    assert refused.value.response.headers["x-dmr-model"] == "local-small"


def test_an_upstream_500_is_relayed(fault_server):
    fault_server.script(Reply.error(500))
    with _client(fault_server) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    assert answer.status_code == 500
    assert answer.json() == {"error": {"message": "injected 500", "type": "server_error", "param": None,
                                       "code": None}}
    assert answer.headers["x-dmr-model"] == "local-small" and answer.headers["x-dmr-decision-id"]
    assert fault_server.requests[0]["path"] == "/v1/chat/completions"
    assert fault_server.requests[0]["body"]["model"] == "local-small"


def test_a_rate_limit_keeps_its_retry_headers(fault_server):
    fault_server.script(Reply.error(429, {"Retry-After": "7", "x-ratelimit-remaining-requests": "0"}))
    with _client(fault_server) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "7" and answer.headers["x-ratelimit-remaining-requests"] == "0"


def test_an_error_that_is_not_in_openai_shape_is_put_in_it(fault_server):
    fault_server.script(Reply(503, b"<html>upstream maintenance</html>", {"Content-Type": "text/html"}))
    with _client(fault_server) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert "upstream maintenance" in error["message"] and "'local'" in error["message"]
    assert error["type"] == "server_error"


def test_a_garbage_answer_is_a_502(fault_server):
    fault_server.script(Reply(200, b"\x00\xffnot json", {"Content-Type": "application/json"}))
    with _client(fault_server) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "bad_upstream_answer"


def test_a_truncated_answer_is_a_502(fault_server):
    fault_server.script(Reply.openai("hello", declared_length=10_000))
    with _client(fault_server) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "upstream_unreachable"


def test_a_provider_that_does_not_answer_in_time_is_a_504(fault_server):
    fault_server.script(Reply.openai("late", delay=30))
    with _client(fault_server, upstream_timeout=0.2) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    assert answer.status_code == 504
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "upstream_timeout")
    assert answer.headers["x-dmr-tier"] == "low"


def test_a_provider_that_cannot_be_reached_is_a_502():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    router = make_router(f"http://127.0.0.1:{port}/v1", layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER, "stream": True})
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "upstream_unreachable"


def test_a_stream_flows_until_it_breaks_and_then_says_so(fault_server):
    # Two events arrive, then the connection drops short of its declared length: the client has
    # already had the status and the first events, so the failure comes as an error event.
    body = _chunk("Hello") + _chunk(" world")
    fault_server.script(Reply(200, body, {"Content-Type": "text/event-stream"}, declared_length=len(body) + 500))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    with LiveServer(create_app(router)) as live, openai.OpenAI(base_url=f"{live.url}/v1", api_key="x",
                                                               max_retries=0) as client:
        seen = []
        with pytest.raises(openai.APIError) as broken:
            for chunk in client.chat.completions.create(model="dmr", messages=USER, stream=True):
                seen.append(chunk.choices[0].delta.content)
    assert seen == ["Hello", " world"]
    assert "could not be reached or broke off" in broken.value.message


def test_a_stream_that_stalls_ends_with_a_timeout_event(fault_server):
    fault_server.script(Reply(200, _chunk("late"), {"Content-Type": "text/event-stream"}, stall_after_headers=30))
    with _client(fault_server, upstream_timeout=0.2) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "stream": True,
                                                           "messages": [{"role": "user", "content": HARD}]})
    assert answer.status_code == 200 and answer.headers["x-dmr-tier"] == "high"
    events = [line[6:] for line in answer.text.splitlines() if line.startswith("data: ")]
    assert json.loads(events[-1])["error"]["code"] == "upstream_timeout"
