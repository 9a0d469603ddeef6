"""Tenants of the proxy: each key is routed with its tenant's config, charged to its budget, and
kept to the models it may use. The answering model is the real local LLM behind the recording
pass-through; a failing provider is the fault injector."""

from __future__ import annotations

import hashlib

import openai
import pytest
from fault_server import Reply
from proxy_support import EASY, HARD, MODELS, PRICES, LiveServer, TestClient, make_router, registry_for
from services import redis_server  # noqa: F401  (the fixture)

from dmr import Router
from dmr.errors import ConfigError
from dmr.server import create_app
from dmr.server.tenants import load_tenants
from dmr.store.outcomes import read_outcomes, training_rows
from dmr.store.sqlite import read_records


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


TENANTS = {"tenants": {
    "acme": {"key_sha256": _sha("acme-key"), "max_tier": "medium", "budget_usd": 5.0},
    "lab": {"key_env": "LAB_DMR_KEY", "min_tier": "high"},
}}


def _ask(client, key: str, content: str, model: str = "dmr"):
    return client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                       json={"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 4})


def _cost(answer) -> float:
    usage = answer.json()["usage"]
    price_in, price_out = PRICES[answer.headers["x-dmr-model"]]
    return (usage["prompt_tokens"] * price_in + usage["completion_tokens"] * price_out) / 1e6


@pytest.mark.service("llm")
def test_each_tenants_key_is_routed_with_its_config_and_charged_to_its_budget(router, recorder, tmp_path,
                                                                              monkeypatch):
    monkeypatch.setenv("LAB_DMR_KEY", "lab-key")
    with TestClient(create_app(router, api_key="ops-key", tenants=TENANTS)) as client:
        acme = _ask(client, "acme-key", HARD)
        lab = _ask(client, "lab-key", EASY)
        ops = _ask(client, "ops-key", HARD)
        refused = [_ask(client, key, EASY).status_code for key in ("wrong", "", " acme-key-2")]
    assert refused == [401, 401, 401]
    # acme's hard task is capped at medium, lab's easy one raised to high, the operator's routed as is.
    assert recorder.models == [MODELS["medium"], MODELS["high"], MODELS["high"]]
    assert [(a.headers["x-dmr-tier"], a.headers.get("x-dmr-tenant")) for a in (acme, lab, ops)] == [
        ("medium", "acme"), ("high", "lab"), ("high", None)]
    assert router.tenant_budget("acme").spent_usd == pytest.approx(_cost(acme))
    assert router.budget.spent_usd == pytest.approx(_cost(acme) + _cost(lab) + _cost(ops))
    router.decision_logger.flush()
    logged = list(read_records(tmp_path / "decisions.sqlite3"))
    assert [(r["tenant"], r["tier"]) for r in logged] == [("acme", "medium"), ("lab", "high"), (None, "high")]
    assert "tenant_max_tier:medium" in logged[0]["policies_applied"]


def test_a_tenants_outcomes_rate_only_its_own_decisions(router, tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_DMR_KEY", "lab-key")
    with TestClient(create_app(router, api_key="ops-key", tenants=TENANTS)) as client:
        def post(key, path, body):
            return client.post(path, headers={"Authorization": f"Bearer {key}"}, json=body)

        classified = post("acme-key", "/v1/dmr/classify", {"task": HARD})
        assert classified.headers["x-dmr-tenant"] == "acme"  # as a routed call's answer says it
        ours = classified.json()["decision_id"]
        theirs = post("lab-key", "/v1/dmr/classify", {"task": EASY}).json()["decision_id"]
        sent = [post("acme-key", "/v1/dmr/outcomes", {"decision_id": ours, "score": 0.9}),
                post("lab-key", "/v1/dmr/outcomes", {"decision_id": ours, "score": 0.0}),
                post("ops-key", "/v1/dmr/outcomes", {"decision_id": theirs, "score": 0.4})]
    assert [r.status_code for r in sent] == [202, 202, 202]
    router.decision_logger.flush()
    log = tmp_path / "decisions.sqlite3"
    assert [o["tenant"] for o in read_outcomes(log)] == ["acme", "lab", None]
    rows = {row["id"]: row["outcomes"] for row in training_rows(log)}
    assert rows == {ours: {"medium": 0.9}, theirs: {"high": 0.4}}  # lab's later 0.0 on acme's decision: left out


@pytest.mark.service("llm")
def test_a_tenant_names_only_the_models_it_could_be_routed_to(router, recorder, monkeypatch):
    monkeypatch.setenv("LAB_DMR_KEY", "lab-key")
    with LiveServer(create_app(router, tenants=TENANTS)) as live, \
            openai.OpenAI(base_url=f"{live.url}/v1", api_key="acme-key", max_retries=0) as client:
        listed = [m.id for m in client.models.list()]
        small = client.chat.completions.create(model=MODELS["low"], max_tokens=4,
                                               messages=[{"role": "user", "content": EASY}])
        with pytest.raises(openai.PermissionDeniedError) as above:
            client.chat.completions.create(model=MODELS["high"], messages=[{"role": "user", "content": EASY}])
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve(MODELS["high"])
        decided = client.post("/dmr/classify", body={"task": HARD}, cast_to=object)
    assert listed == ["dmr", "dmr-auto", "auto", MODELS["low"], MODELS["medium"]]
    assert small.choices[0].message.content is not None
    assert above.value.code == "model_not_allowed" and "above its highest tier, medium" in above.value.message
    assert recorder.models == [MODELS["low"]]
    assert decided["tier"] == "medium" and "tenant_max_tier:medium" in decided["policies_applied"]


@pytest.mark.service("llm")
def test_a_tenant_whose_budget_is_spent_is_refused_routed_and_named_alike(recorder, tmp_path):
    router = make_router(recorder.base_url, budget_policy={"on_stop": "raise"})
    tenants = {"tenants": {"tiny": {"key_sha256": _sha("tiny-key"), "budget_usd": 1e-9},
                           "other": {"key_sha256": _sha("other-key")}}}
    with TestClient(create_app(router, tenants=tenants)) as client:
        first = _ask(client, "tiny-key", EASY)
        routed = _ask(client, "tiny-key", EASY)
        named = _ask(client, "tiny-key", EASY, model=MODELS["low"])
        other = _ask(client, "other-key", EASY)
    router.close()
    assert first.status_code == 200 and other.status_code == 200
    for refused in (routed, named):
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "budget_exceeded"
    assert all("tenant tiny" in r.json()["error"]["message"] for r in (routed, named))
    assert recorder.models == [MODELS["low"], MODELS["low"]]


@pytest.mark.service("llm")
def test_fallbacks_follow_the_tenants_own_providers(fault_server, recorder):
    fault_server.script(Reply.error(503), Reply.error(503))
    registry = registry_for(recorder.base_url, provider="second")
    registry["providers"]["first"] = {"base_url": fault_server.url + "/v1", "tiers": dict(MODELS)}
    router = Router(model_registry=registry, providers=["first", "second"], layer2_enabled=False,
                    layer3_enabled=False)
    tenants = {"tenants": {"pinned": {"key_sha256": _sha("pinned-key"), "providers": ["first"]},
                           "spread": {"key_sha256": _sha("spread-key"), "providers": ["first", "second"]}}}
    with TestClient(create_app(router, tenants=tenants)) as client:
        pinned = _ask(client, "pinned-key", EASY)
        spread = _ask(client, "spread-key", EASY)
    assert pinned.status_code == 503 and "x-dmr-fallback" not in pinned.headers
    assert spread.status_code == 200, spread.text
    assert (spread.headers["x-dmr-provider"], spread.headers["x-dmr-tenant"]) == ("second", "spread")
    assert spread.headers["x-dmr-fallback"] == f"first/{MODELS['low']} (503 server_error)"
    assert len(fault_server.requests) == 2 and recorder.models == [MODELS["low"]]


def test_named_models_and_embeddings_stay_inside_the_residency_region():
    registry = registry_for("http://127.0.0.1:9/v1")
    registry["providers"]["local"]["regions"] = ["EU"]
    registry["providers"]["abroad"] = {"base_url": "http://127.0.0.1:9/v1", "regions": ["US"],
                                       "tiers": {"low": "us-small"}}
    tenants = {"tenants": {"eu-only": {"key_sha256": _sha("eu-key"), "residency": "eu"}}}
    unbound = Router(model_registry=registry, provider="local", layer2_enabled=False, layer3_enabled=False)
    resident = Router(model_registry=registry, provider="local", residency="EU", layer2_enabled=False,
                      layer3_enabled=False)
    with TestClient(create_app(unbound, tenants=tenants, api_key="ops-key",
                               embeddings_provider="abroad")) as client:
        tenant = _ask(client, "eu-key", EASY, model="us-small")
        embedded = client.post("/v1/embeddings", headers={"Authorization": "Bearer eu-key"},
                               json={"model": "us-small", "input": "hello"})
        listed = [m["id"] for m in client.get("/v1/models", headers={"Authorization": "Bearer eu-key"}).json()["data"]]
        operator = client.get("/v1/models", headers={"Authorization": "Bearer ops-key"}).json()["data"]
    with TestClient(create_app(resident)) as client:
        refused = _ask(client, "", EASY, model="us-small")
    for answer in (tenant, embedded, refused):
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["code"] == "model_not_allowed"
        assert "not served in" in answer.json()["error"]["message"]
    assert "tenant 'eu-only'" in tenant.json()["error"]["message"]
    assert "us-small" not in listed and MODELS["low"] in listed
    assert "us-small" in [m["id"] for m in operator]


def test_a_tenants_file_is_checked_whole_when_the_proxy_starts(tmp_path, monkeypatch):
    monkeypatch.delenv("MISSING_DMR_KEY", raising=False)
    bad = {"tenants": {
        "a": {"key_sha256": _sha("k"), "colour": "red"},
        "b": {"key_sha256": _sha("k"), "key_env": "X"},
        "c": {"key_env": "MISSING_DMR_KEY"},
        "d": {"key_sha256": "not-hex"},
        "e": {"key_sha256": _sha("k2"), "max_tier": "huge", "residency": "US"},
        "f": {"key_sha256": _sha("k2")},
        "g": {"key_sha256": _sha("ops")},
    }}
    with pytest.raises(ConfigError) as caught:
        load_tenants(bad, residency="EU", proxy_key="ops")
    paths = [path for path, _ in caught.value.problems]
    assert paths == ["tenants.a", "tenants.b", "tenants.c.key_env", "tenants.d.key_sha256", "tenants.e.max_tier",
                     "tenants.e.residency", "tenants.f", "tenants.g"]
    assert "same key as tenant 'e'" in str(caught.value) and "MISSING_DMR_KEY is not set" in str(caught.value)
    for shape in ({}, {"tenants": {}}, {"tenants": []}, {"tenants": {"a": {"key_sha256": _sha("k")}}, "x": 1}):
        with pytest.raises(ConfigError):
            load_tenants(shape)
    (tmp_path / "tenants.yaml").write_bytes(b"tenants: [\xff")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xff at offset 10\)"):
        load_tenants(tmp_path / "tenants.yaml")
    (tmp_path / "tenants.yaml").write_bytes(b"tenants: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_tenants(tmp_path / "tenants.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_tenants(tmp_path / "absent.yaml")
    router = make_router(None)
    with pytest.raises(ConfigError, match="invalid tenants"):
        create_app(router, tenants=bad)


def test_a_tenant_past_its_requests_a_minute_is_told_when_to_come_back():
    router = make_router(None, layer3_enabled=False)
    tenants = {"tenants": {"capped": {"key_sha256": _sha("capped-key"), "rpm": 2},
                           "free": {"key_sha256": _sha("free-key")}}}
    app = create_app(router, tenants=tenants)
    with TestClient(app) as client:
        def classify(key):
            return client.post("/v1/dmr/classify", headers={"Authorization": f"Bearer {key}"}, json={"task": "hi"})

        capped = [classify("capped-key") for _ in range(3)]
        listed = client.get("/v1/models", headers={"Authorization": "Bearer capped-key"})  # a read is not counted
        free = [classify("free-key").status_code for _ in range(5)]
    assert [a.status_code for a in capped] == [200, 200, 429] and listed.status_code == 200 and free == [200] * 5
    refused = capped[2]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert "2 requests a minute" in refused.json()["error"]["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-limit-requests"] == "2"
    # The window slides: the oldest request leaves it 60 s after it came.
    window = load_tenants(tenants)
    tenant = window.find("capped-key")
    assert [window.admit(tenant, now) for now in (0.0, 10.0)] == [None, None]
    assert window.admit(tenant, 30.0) == pytest.approx(30.0)
    assert window.admit(tenant, 60.0) is None  # the first left the window at 60 s
    assert window.admit(tenant, 65.0) == pytest.approx(5.0)
    with pytest.raises(ConfigError, match="rpm"):
        load_tenants({"tenants": {"a": {"key_sha256": _sha("k"), "rpm": 0}}})
    with pytest.raises(ConfigError, match="rate_store"):
        load_tenants({"tenants": {"a": {"key_sha256": _sha("k"), "rpm": 1}}, "rate_store": "http://cache:6379"})
    with pytest.raises(ConfigError, match="optionally 'rate_store'"):
        load_tenants({"tenants": {"a": {"key_sha256": _sha("k")}}, "rate_limit": 5})


def _shared_tenants(url, rpm=3):
    return {"tenants": {"shared": {"key_sha256": _sha("shared-key"), "rpm": rpm}}, "rate_store": url}


@pytest.mark.service("redis")
def test_replicas_sharing_a_rate_store_count_the_same_requests(redis_server):
    """Two proxies (two apps, as two replicas would be) with one tenants file naming a Redis
    rate_store: the tenant's rpm holds across both, not per process."""
    tenants = _shared_tenants(redis_server.url)
    load_tenants(tenants)._shared.reset("shared")
    one = create_app(make_router(None, layer3_enabled=False), tenants=tenants)
    two = create_app(make_router(None, layer3_enabled=False), tenants=tenants)
    headers = {"Authorization": "Bearer shared-key"}
    with TestClient(one) as a, TestClient(two) as b:
        codes = [client.post("/v1/dmr/classify", headers=headers, json={"task": "hi"})
                 for client in (a, b, a, b)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert 1 <= int(codes[3].headers["retry-after"]) <= 60
    # A third process sees the same window, in Redis's own clock.
    wait = load_tenants(tenants).admit(load_tenants(tenants).find("shared-key"))
    assert wait is not None and 55.0 < wait <= 60.0


@pytest.mark.service("redis")
def test_a_rate_store_outage_falls_back_to_counting_in_the_process(redis_server, caplog):
    tenants = _shared_tenants(redis_server.url, rpm=2)
    window = load_tenants(tenants)
    window._shared.reset("shared")
    tenant = window.find("shared-key")
    assert window.admit(tenant) is None  # counted in Redis
    redis_server.stop()
    try:
        # Redis is down: this process counts on its own (it has seen none of its requests), no error.
        assert [window.admit(tenant) is None for _ in range(3)] == [True, True, False]
        assert "counting requests in this process" in caplog.text
    finally:
        redis_server.start()
    # Back: Redis counts again (this test Redis keeps nothing across a restart, so its window
    # starts empty), not the process: two more go, the third waits.
    assert [window.admit(tenant) is None for _ in range(3)] == [True, True, False]
    assert "is back" in caplog.text
