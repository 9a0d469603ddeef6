"""The real cost of a forwarded call reaches the Router's budget: the usage the provider reports,
priced from the registry; nothing when the model has no price or the Router has no budget."""

from __future__ import annotations

import json

import pytest
from proxy_support import EASY, TestClient, registry_for

from dmr import Router
from dmr.server import create_app
from dmr.server.usage import StreamUsage, usage_of

USER = [{"role": "user", "content": EASY}]


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
