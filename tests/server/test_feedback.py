"""Feedback through the proxy and the tenants it is sent for: what ``POST /v1/dmr/outcomes``
stores, and what a tenants file may name. The provider, when one is called, is the fault injector."""

from __future__ import annotations

import hashlib

import pytest
from fault_server import Reply
from proxy_support import EASY, HARD, MODELS, TestClient, make_router, registry_for

from dmr import Router
from dmr.errors import ConfigError
from dmr.server import create_app
from dmr.store.outcomes import read_outcomes, training_rows


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_a_tenant_naming_a_provider_the_registry_lacks_stops_the_proxy_at_start():
    # It was accepted, and then every request of the tenant failed as a 500 "misconfigured".
    router = make_router(None, layer3_enabled=False)
    tenants = {"tenants": {
        "typo": {"key_sha256": _sha("typo-key"), "provider": "lcoal"},
        "some": {"key_sha256": _sha("some-key"), "providers": ["local", "gone"]},
        "fine": {"key_sha256": _sha("fine-key"), "providers": ["local"]},
    }}
    with pytest.raises(ConfigError) as caught:
        create_app(router, tenants=tenants)
    assert [path for path, _ in caught.value.problems] == ["tenants.typo.provider", "tenants.some.providers"]
    assert "unknown provider 'lcoal' (the model registry has local)" in str(caught.value)
    del tenants["tenants"]["typo"], tenants["tenants"]["some"]
    with TestClient(create_app(router, tenants=tenants)) as client:
        decided = client.post("/v1/dmr/classify", headers={"Authorization": "Bearer fine-key"}, json={"task": HARD})
    router.close()
    assert decided.status_code == 200 and decided.json()["provider"] == "local"


@pytest.mark.parametrize(("field", "value"), [("tier", "huge"), ("tier", ["low"]), ("model", 5), ("model", " "),
                                              ("notes", {"why": "short"})])
def test_a_bad_outcome_field_is_a_400_naming_it(tmp_path, field, value):
    router = make_router(None, tmp_path, layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        decision_id = client.post("/v1/dmr/classify", json={"task": HARD}).json()["decision_id"]
        answer = client.post("/v1/dmr/outcomes", json={"decision_id": decision_id, "score": 1, field: value})
    router.close()
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == field


def test_the_outcome_answer_names_the_id_that_was_stored(tmp_path):
    router = make_router(None, tmp_path, layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        decision_id = client.post("/v1/dmr/classify", json={"task": HARD}).json()["decision_id"]
        answer = client.post("/v1/dmr/outcomes", json={"decision_id": f" {decision_id}\n", "score": 1})
    router.close()
    assert answer.status_code == 202
    [stored] = read_outcomes(tmp_path / "decisions.sqlite3")
    assert answer.json()["decision_id"] == decision_id == stored["decision_id"]


def test_feedback_on_an_answer_a_higher_tier_gave_is_kept_for_that_tier(fault_server, tmp_path):
    # The low model failed and, escalated, the medium one answered: the score is the medium
    # model's, though the decision (and x-dmr-tier) says low. It was recorded for low.
    fault_server.script(Reply.error(503), Reply.openai("fine"), Reply.error(503), Reply.openai("fine too"),
                        Reply.openai("first time"))
    router = make_router(fault_server.url + "/v1", tmp_path, layer3_enabled=False)
    with TestClient(create_app(router, escalate_on_failure=True)) as client:
        def ask():
            return client.post("/v1/chat/completions", json={"model": "dmr", "messages": [
                {"role": "user", "content": EASY}]})

        escalated, named, direct = ask(), ask(), ask()
        ids = [a.headers["x-dmr-decision-id"] for a in (escalated, named, direct)]
        sent = [client.post("/v1/dmr/outcomes", json={"decision_id": ids[0], "score": 0.9}),
                # the answering model, as x-dmr-model says, and no tier: the client cannot know it
                client.post("/v1/dmr/outcomes", json={"decision_id": ids[1], "score": 0.7,
                                                      "model": named.headers["x-dmr-model"]}),
                client.post("/v1/dmr/outcomes", json={"decision_id": ids[2], "score": 0.2})]
    router.close()
    assert [a.headers["x-dmr-tier"] for a in (escalated, named, direct)] == ["low"] * 3
    assert [a.headers["x-dmr-model"] for a in (escalated, named, direct)] == [
        MODELS["medium"], MODELS["medium"], MODELS["low"]]
    assert [r.status_code for r in sent] == [202] * 3
    log = tmp_path / "decisions.sqlite3"
    assert {row["id"]: row["outcomes"] for row in training_rows(log)} == {
        ids[0]: {"medium": 0.9}, ids[1]: {"medium": 0.7}, ids[2]: {"low": 0.2}}
    assert {row["id"]: row["outcomes"] for row in training_rows(log, key="model")} == {
        ids[0]: {MODELS["medium"]: 0.9}, ids[1]: {MODELS["medium"]: 0.7}, ids[2]: {MODELS["low"]: 0.2}}


def test_feedback_on_another_providers_answer_names_its_model(fault_server, tmp_path):
    fault_server.script(Reply.error(503), Reply.openai("from the second"))
    registry = registry_for(fault_server.url + "/v1", provider="first")
    registry["providers"]["second"] = {"base_url": fault_server.url + "/v1",
                                       "tiers": {tier: f"second-{name}" for tier, name in MODELS.items()}}
    router = Router(model_registry=registry, providers=["first", "second"], layer2_enabled=False,
                    layer3_enabled=False, decision_logger=str(tmp_path / "decisions.sqlite3"))
    with TestClient(create_app(router)) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": [
            {"role": "user", "content": EASY}]})
        decision_id = answer.headers["x-dmr-decision-id"]
        sent = client.post("/v1/dmr/outcomes", json={"decision_id": decision_id, "score": 0.6})
    router.close()
    assert answer.headers["x-dmr-model"] == f"second-{MODELS['low']}" and sent.status_code == 202
    log = tmp_path / "decisions.sqlite3"
    assert [row["outcomes"] for row in training_rows(log)] == [{"low": 0.6}]
    assert [row["outcomes"] for row in training_rows(log, key="model")] == [{f"second-{MODELS['low']}": 0.6}]
