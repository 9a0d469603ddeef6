"""The real cost of a forwarded call reaches the Router's budget: the usage the provider reports,
priced from the registry; nothing when the model has no price or the Router has no budget."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest
from fault_server import Reply
from proxy_support import EASY, LiveServer, TestClient, make_router, registry_for

from dmr import Router
from dmr.server import create_app
from dmr.server.usage import StreamUsage, usage_of

USER = [{"role": "user", "content": EASY}]
SSE = {"Content-Type": "text/event-stream"}


def _running_total(completion_tokens: int) -> bytes:
    """A stream event that carries the usage so far, as vLLM's continuous_usage_stats sends."""
    event = {"choices": [{"index": 0, "delta": {"content": "a"}}],
             "usage": {"prompt_tokens": 1_000_000, "completion_tokens": completion_tokens}}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


# local-small costs $0.10 per 1M input tokens and $0.20 per 1M output tokens.
RUNNING_TOTALS = _running_total(1) + _running_total(500_000) + _running_total(1_000_000)
FINAL_COST = 0.1 + 0.2


def test_the_usage_event_is_found_however_the_stream_is_cut():
    usage = {"prompt_tokens": 31, "completion_tokens": 8, "total_tokens": 39}
    stream = (b'data: {"choices": [{"delta": {"content": "hi"}}], "usage": null}\n\n'
              b'data: {"choices": [], "usage": ' + json.dumps(usage).encode() + b"}\n\ndata: [DONE]\n\n")
    for cut in range(1, len(stream)):
        watcher = StreamUsage()
        found = [watcher.feed(stream[:cut]), watcher.feed(stream[cut:])]
        assert [f for f in found if f is not None] == [(31, 8)], cut


@pytest.mark.parametrize("answer", [{}, {"usage": None}, {"usage": {"prompt_tokens": -1, "completion_tokens": 2}},
                                    {"usage": {"prompt_tokens": True, "completion_tokens": 2}}, []])
def test_usage_that_is_missing_or_bad_counts_nothing(answer):
    assert usage_of(answer) is None


@pytest.mark.service("llm")
def test_an_unpriced_model_or_a_router_without_budget_spends_nothing(recorder, tmp_path):
    document = registry_for(recorder.base_url)
    del document["models"]["local-medium"]  # routable, but the registry has no price for it
    budgeted = Router(model_registry=document, provider="local", layer2_enabled=False, layer3_enabled=False,
                      budget_usd=1.0, budget_store=str(tmp_path / "budget.sqlite3"))
    unbudgeted = Router(model_registry=document, provider="local", layer2_enabled=False, layer3_enabled=False)
    with TestClient(create_app(budgeted)) as client:
        unpriced = client.post("/v1/chat/completions", json={"model": "local-medium", "messages": USER,
                                                             "max_tokens": 1})
        priced = client.post("/v1/chat/completions", json={"model": "local-small", "messages": USER,
                                                           "max_tokens": 1})
    with TestClient(create_app(unbudgeted)) as client:
        answered = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER, "max_tokens": 1})
    assert unpriced.status_code == priced.status_code == answered.status_code == 200
    assert unbudgeted.budget is None
    usage = priced.json()["usage"]
    assert budgeted.budget.spent_usd == pytest.approx((usage["prompt_tokens"] * 0.1 + usage["completion_tokens"] * 0.2)
                                                      / 1e6)


class _RunningTotals(httpx.AsyncByteStream):
    """A provider's stream whose events arrive one read at a time (over TCP they may coalesce
    into one, which would hide which total is charged); ``then_wait``: it stays open after them."""

    def __init__(self, *, then_wait: bool) -> None:
        self._then_wait = then_wait

    async def __aiter__(self):
        for completion_tokens in (1, 500_000, 1_000_000):
            yield _running_total(completion_tokens)
        if self._then_wait:
            await anyio.sleep_forever()
        yield b"data: [DONE]\n\n"


def _provider(*, then_wait: bool) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200, headers=SSE,
                                                              stream=_RunningTotals(then_wait=then_wait)))


def test_a_stream_that_reports_running_totals_is_charged_its_last_total_once(tmp_path):
    router = make_router("http://provider.invalid/v1", tmp_path, layer3_enabled=False)
    with TestClient(create_app(router, transport=_provider(then_wait=False))) as client:
        answer = client.post("/v1/chat/completions", json={
            "model": "local-small", "messages": USER, "stream": True,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True}})
    assert answer.status_code == 200 and answer.content.endswith(b"data: [DONE]\n\n")
    assert router.budget.spent_usd == pytest.approx(FINAL_COST)
    router.close()


def test_a_client_that_hangs_up_mid_stream_leaves_the_totals_so_far_charged(tmp_path):
    # The provider sends three running totals and keeps the stream open; the client reads them
    # and goes away. Shutting the server down waits for the request to finish its clean-up.
    router = make_router("http://provider.invalid/v1", tmp_path, layer3_enabled=False)
    app = create_app(router, transport=_provider(then_wait=True))
    with LiveServer(app) as live, httpx.Client(timeout=60) as client:
        with client.stream("POST", f"{live.url}/v1/chat/completions", json={
                "model": "local-small", "messages": USER, "stream": True}) as answer:
            seen = 0
            for line in answer.iter_lines():
                seen += '"usage"' in line
                if seen == 3:
                    break
    assert router.budget.spent_usd == pytest.approx(FINAL_COST)
    router.close()


def test_a_proxied_calls_spend_never_lets_a_routed_request_past_a_spent_budget(fault_server, tmp_path):
    # Spend is recorded from a pooled worker thread, the same threads that then run decisions:
    # counted as a decision's own Layer 2 spend, it let one request through with on_stop: raise.
    fault_server.script(Reply.openai("ok", usage=(100_000, 100_000)))  # $3 on local-large
    router = make_router(fault_server.url + "/v1", tmp_path, layer3_enabled=False, budget_usd=1.0,
                         budget_policy={"on_stop": "raise"})
    with TestClient(create_app(router)) as client:
        spent = client.post("/v1/chat/completions", json={"model": "local-large", "messages": USER})
        after = [client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER}) for _ in range(4)]
    assert spent.status_code == 200 and router.budget.spent_usd == pytest.approx(3.0)
    assert [a.status_code for a in after] == [429] * 4
    assert {a.json()["error"]["code"] for a in after} == {"budget_exceeded"}
    assert fault_server.count == 1
    router.close()
