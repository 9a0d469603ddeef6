"""Every error the proxy answers is in OpenAI's shape, with a status an SDK acts on correctly."""

from __future__ import annotations

import pytest
from proxy_support import HARD, TestClient, make_router

from dmr.server import create_app

USER = [{"role": "user", "content": HARD}]


def _shape(answer) -> dict:
    error = answer.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"} and error["message"]
    return error


@pytest.fixture
def client():
    with TestClient(create_app(make_router(None, layer3_enabled=False))) as test_client:
        yield test_client


def test_an_unknown_path_and_a_wrong_method_are_in_openai_shape(client):
    missing = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "hi"})
    wrong = client.get("/v1/chat/completions")
    assert missing.status_code == 404 and _shape(missing)["type"] == "not_found_error"
    assert "/v1/chat/completions" in _shape(missing)["message"]
    assert wrong.status_code == 405 and _shape(wrong)["type"] == "invalid_request_error"
    assert wrong.headers["allow"] == "POST"


def test_a_task_the_pii_policy_blocks_is_a_400():
    router = make_router(None, layer3_enabled=False, pii_policy={"block": True})
    with TestClient(create_app(router)) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": [
            {"role": "user", "content": "Email jane.doe@example.com her test results"}]})
    assert answer.status_code == 400
    error = _shape(answer)
    assert error["code"] == "pii_blocked" and "email" in error["message"]
    assert answer.headers["x-should-retry"] == "false"


def test_a_spent_budget_is_openai_insufficient_quota(tmp_path):
    router = make_router(None, layer3_enabled=False, budget_usd=0.01, budget_policy={"on_stop": "raise"},
                         budget_store=str(tmp_path / "budget.sqlite3"))
    router.budget.record_usd(0.02)
    with TestClient(create_app(router)) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER})
    assert answer.status_code == 429
    error = _shape(answer)
    assert (error["type"], error["code"]) == ("insufficient_quota", "budget_exceeded")
    assert answer.headers["x-should-retry"] == "false"


def test_a_bug_is_a_500_in_openai_shape_that_names_no_internals():
    def broken(task, ctx):
        raise RuntimeError("secret internal detail")

    router = make_router(None, layer3_enabled=False, custom_classifier=broken)
    with TestClient(create_app(router), raise_server_exceptions=False) as client:
        answer = client.post("/v1/dmr/classify", json={"task": HARD})
    assert answer.status_code == 500
    error = _shape(answer)
    assert error["code"] == "internal_error" and "secret" not in error["message"]
    assert "RuntimeError" in error["message"]
