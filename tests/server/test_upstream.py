"""Relaying the provider's answer: its HTTP errors keep their status and error object; a provider
that cannot be reached is a 502 and one that does not answer in time a 504, in OpenAI's shape;
a stream that breaks off ends with an error event. Faults a real server will not produce on
demand come from the fault injector (tests/fault_server.py)."""

from __future__ import annotations

import json
import logging
import socket

import httpx
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
    # Long enough for the headers to arrive on a busy machine (before them the timeout is a 504).
    with _client(fault_server, upstream_timeout=2) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "stream": True,
                                                           "messages": [{"role": "user", "content": HARD}]})
    assert answer.status_code == 200 and answer.headers["x-dmr-tier"] == "high"
    events = [line[6:] for line in answer.text.splitlines() if line.startswith("data: ")]
    assert json.loads(events[-1])["error"]["code"] == "upstream_timeout"


def test_a_full_pool_of_upstream_connections_is_a_503_proxy_busy(fault_server):
    # The first request holds the proxy's only upstream connection: its stream is far larger than
    # the socket buffers and the test reads none of it, so it cannot end while the second waits.
    huge = Reply(200, _chunk("x" * 1000), {"Content-Type": "text/event-stream"}, repeat=100_000)
    fault_server.script(huge, Reply.openai("ok"))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    app = create_app(router, max_upstream_connections=1, upstream_timeout=2)
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        with client.stream("POST", "/v1/chat/completions", json={"model": "dmr", "messages": USER,
                                                                  "stream": True}) as holding:
            assert holding.status_code == 200
            busy = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    assert busy.status_code == 503
    error = busy.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "proxy_busy")
    assert "max_upstream_connections" in error["message"]
    assert fault_server.count == 1


@pytest.mark.parametrize("close_delimited", [False, True], ids=["with Content-Length", "read until closed"])
def test_an_answer_over_the_cap_is_a_502_without_being_held_whole(fault_server, close_delimited):
    fault_server.script(Reply.openai("x" * 5000, close_delimited=close_delimited))
    with _client(fault_server, max_answer_bytes=4096) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert error["code"] == "bad_upstream_answer" and "4,096 bytes" in error["message"]
    assert answer.headers["x-dmr-model"] == "local-small"


def test_an_answer_under_the_cap_read_until_closed_is_relayed(fault_server):
    fault_server.script(Reply.openai("hello", close_delimited=True))
    with _client(fault_server, max_answer_bytes=4096) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "hello"


@pytest.mark.parametrize("status", [401, 403])
def test_a_provider_that_refuses_the_proxys_key_is_a_502_naming_the_variable(fault_server, monkeypatch, caplog,
                                                                              status):
    monkeypatch.setenv("DMR_TEST_UPSTREAM_KEY", "sk-test-secret-WXYZ")
    fault_server.script(Reply.json({"error": {"message": "Incorrect API key provided: sk-test-****WXYZ.",
                                              "type": "invalid_request_error", "code": "invalid_api_key"}},
                                   status=status))
    router = make_router(fault_server.url + "/v1", api_key_env="DMR_TEST_UPSTREAM_KEY", layer3_enabled=False)
    with caplog.at_level(logging.WARNING, logger="dmr.server"), TestClient(create_app(router)) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "upstream_auth_failed")
    assert "'local'" in error["message"] and "DMR_TEST_UPSTREAM_KEY" in error["message"]
    assert "WXYZ" not in answer.text  # the provider's message quotes part of the key
    assert answer.headers["x-should-retry"] == "false" and answer.headers["x-dmr-model"] == "local-small"
    assert "Incorrect API key provided: sk-test-****WXYZ." in caplog.text  # the detail is in the server's log


def test_a_transport_that_has_already_read_the_answer_still_streams():
    # httpx.MockTransport reads a Response built with content= at once: its stream is consumed.
    events = _chunk("Hello") + _chunk(" world") + b"data: [DONE]\n\n"
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=events))
    router = make_router("http://provider.invalid/v1", layer3_enabled=False)
    with TestClient(create_app(router, transport=transport)) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER, "stream": True})
    assert answer.status_code == 200 and answer.content == events
