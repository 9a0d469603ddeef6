"""The proxy end to end: uvicorn serving create_app(router), the official openai SDK as the client,
and the real local LLM as the upstream (behind a recorder that shows which model was asked for)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import openai
import pytest
from fault_server import Reply
from proxy_support import EASY, HARD, MODELS, LiveServer, TestClient, make_router, registry_for

import dmr.server.bodies
from dmr import Router
from dmr.errors import ConfigError
from dmr.server import create_app
from dmr.store.outcomes import read_outcomes, training_rows
from dmr.store.sqlite import read_records

DMR_HEADERS = ("x-dmr-decision-id", "x-dmr-tier", "x-dmr-model", "x-dmr-provider", "x-dmr-task-type",
               "x-dmr-complexity")


def sdk(live: LiveServer, key: str = "not-checked") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0)


@pytest.mark.service("llm")
def test_an_easy_prompt_goes_to_the_small_model_and_a_hard_one_to_the_large(router, recorder):
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        easy = client.chat.completions.with_raw_response.create(
            model="dmr", messages=[{"role": "user", "content": EASY}], max_tokens=8, temperature=0)
        hard = client.chat.completions.with_raw_response.create(
            model="dmr", messages=[{"role": "user", "content": HARD}], max_tokens=8)
    assert recorder.models == [MODELS["low"], MODELS["high"]]
    assert {name: easy.headers[name] for name in DMR_HEADERS[1:]} == {
        "x-dmr-tier": "low", "x-dmr-model": "local-small", "x-dmr-provider": "local",
        "x-dmr-task-type": "conversation", "x-dmr-complexity": "simple"}
    assert hard.headers["x-dmr-tier"] == "high" and hard.headers["x-dmr-model"] == "local-large"
    assert easy.headers["x-dmr-decision-id"] != hard.headers["x-dmr-decision-id"]
    answer = easy.parse()
    assert answer.choices[0].message.content and answer.usage.completion_tokens > 0
    # Everything else in the request reaches the provider unchanged.
    assert recorder.bodies[0] == {"model": "local-small", "messages": [{"role": "user", "content": EASY}],
                                  "max_tokens": 8, "temperature": 0}


@pytest.mark.service("llm")
def test_the_latest_user_turn_is_classified_with_the_earlier_turns_as_history(router, recorder, tmp_path):
    follow_up = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": HARD},
                 {"role": "assistant", "content": "Use Raft per region."}, {"role": "user", "content": EASY}]
    as_parts = [{"role": "user", "content": EASY}, {"role": "assistant", "content": "Fine, thanks."},
                {"role": "user", "content": [{"type": "text", "text": HARD}]}]
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        client.chat.completions.create(model="dmr", messages=follow_up, max_tokens=4)
        client.chat.completions.create(model="dmr", messages=as_parts, max_tokens=4)
    # The short latest turn is classified and raised to the tier of the request it follows
    # (dmr.followups); the long one is routed on its own.
    assert recorder.models == [MODELS["high"], MODELS["high"]]
    router.decision_logger.flush()
    logged = list(read_records(tmp_path / "decisions.sqlite3"))
    assert [(r["task"], r["history_turns"]) for r in logged] == [(EASY, 3), (HARD, 2)]
    assert [r["policies_applied"] for r in logged] == [["follow_up_floor:high"], []]


@pytest.mark.service("llm")
def test_a_registered_model_is_passed_through_unrouted(router, recorder):
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="local-medium", messages=[{"role": "user", "content": HARD}], max_tokens=4)
    assert recorder.models == ["local-medium"]
    assert raw.headers["x-dmr-model"] == "local-medium" and raw.headers["x-dmr-provider"] == "local"
    assert "x-dmr-decision-id" not in raw.headers


@pytest.mark.service("llm")
def test_streaming_passes_the_events_through(router, recorder):
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        with client.chat.completions.with_streaming_response.create(
                model="dmr", messages=[{"role": "user", "content": HARD}], max_tokens=12, stream=True,
                temperature=0) as reply:  # greedy: the same dozen tokens every run
            headers = reply.headers
            chunks = list(reply.parse())
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-dmr-model"] == "local-large" and headers["x-dmr-tier"] == "high"
    assert recorder.bodies[0]["stream"] is True and recorder.models == ["local-large"]
    text = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(text) >= 3, chunks
    assert chunks[-1].choices[0].finish_reason == "length"


@pytest.mark.service("llm")
def test_a_call_adds_its_real_cost_to_the_budget(router, recorder):
    assert router.budget.spent_usd == 0.0
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        answer = client.chat.completions.create(model="dmr", messages=[{"role": "user", "content": HARD}],
                                                max_tokens=6)
        after_plain = router.budget.spent_usd
        stream = client.chat.completions.create(model="dmr", messages=[{"role": "user", "content": EASY}],
                                                max_tokens=6, stream=True, stream_options={"include_usage": True})
        usage = [chunk.usage for chunk in stream if chunk.usage is not None]
    plain_cost = (answer.usage.prompt_tokens * 10.0 + answer.usage.completion_tokens * 20.0) / 1e6
    assert after_plain == pytest.approx(plain_cost)
    [streamed] = usage
    stream_cost = (streamed.prompt_tokens * 0.1 + streamed.completion_tokens * 0.2) / 1e6
    assert router.budget.spent_usd == pytest.approx(plain_cost + stream_cost)


@pytest.mark.service("llm")
def test_the_proxy_key_is_required_when_set_and_never_forwarded(router, recorder):
    with LiveServer(create_app(router, api_key="s3cret")) as live:
        with sdk(live, key="wrong") as client, pytest.raises(openai.AuthenticationError) as refused:
            client.chat.completions.create(model="dmr", messages=[{"role": "user", "content": EASY}])
        with sdk(live, key="s3cret") as client:
            assert client.chat.completions.create(model="dmr", messages=[{"role": "user", "content": EASY}],
                                                  max_tokens=2).choices
            assert [m.id for m in client.models.list()][:3] == ["dmr", "dmr-auto", "auto"]
        assert httpx.get(f"{live.url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{live.url}/v1/models").status_code == 401
    assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
    assert len(recorder.requests) == 1
    assert "authorization" not in recorder.requests[0][1]  # the registry names no key for `local`


@pytest.mark.service("llm")
def test_a_routed_answer_can_be_scored_into_training_rows(router, recorder, tmp_path):
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="dmr", messages=[{"role": "user", "content": EASY}], max_tokens=4)
        decision_id = raw.headers["x-dmr-decision-id"]
        scored = httpx.post(f"{live.url}/v1/dmr/outcomes", json={"decision_id": decision_id, "score": 0.9})
    assert scored.status_code == 202 and scored.json()["decision_id"] == decision_id
    router.decision_logger.flush()
    [row] = training_rows(tmp_path / "decisions.sqlite3")
    assert (row["id"], row["prompt"], row["outcomes"]) == (decision_id, EASY, {"low": 0.9})


def test_models_lists_the_aliases_and_every_registry_model():
    app = create_app(make_router("http://127.0.0.1:9/v1", layer3_enabled=False), aliases=["dmr", "cheapest-good"])
    with TestClient(app) as client:
        listed = client.get("/v1/models").json()
        one = client.get("/v1/models/local-large")
        missing = client.get("/v1/models/gpt-9")
    assert listed["object"] == "list"
    assert [(m["id"], m["owned_by"]) for m in listed["data"]] == [
        ("dmr", "dmr"), ("cheapest-good", "dmr"), ("local-small", "local"), ("local-medium", "local"),
        ("local-large", "local")]
    assert one.json() == {"id": "local-large", "object": "model", "created": 0, "owned_by": "local"}
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_classify_answers_the_decision_without_calling_a_model(fault_server):
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        by_task = client.post("/v1/dmr/classify", json={"task": HARD})
        by_messages = client.post("/v1/dmr/classify", json={"messages": [
            {"role": "user", "content": HARD}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": EASY}]}]})
        both = client.post("/v1/dmr/classify", json={"task": EASY, "messages": []})
        by_easy = client.post("/v1/dmr/classify", json={"task": EASY})
    decision = by_task.json()
    assert decision["model_name"] == "local-large" and decision["tier"] == "high"
    assert set(decision) >= {"tier", "model_name", "provider", "task_type", "complexity", "confidence",
                             "difficulty", "layer", "reasoning", "estimated_cost_usd", "decision_id",
                             "policies_applied"}
    assert by_task.headers["x-dmr-decision-id"] == decision["decision_id"]
    # The latest user turn is the task (its own labels), raised to the tier of the request before it.
    followed, alone = by_messages.json(), by_easy.json()
    assert followed["model_name"] == "local-large" and followed["policies_applied"] == ["follow_up_floor:high"]
    assert alone["model_name"] == "local-small" and alone["policies_applied"] == []
    assert (followed["task_type"], followed["complexity"]) == (alone["task_type"], alone["complexity"])
    assert both.status_code == 400
    assert fault_server.count == 0


def test_outcomes_land_in_the_decision_log(tmp_path):
    router = make_router(None, tmp_path, layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        decision_id = client.post("/v1/dmr/classify", json={"task": HARD}).json()["decision_id"]
        accepted = client.post("/v1/dmr/outcomes", json={"decision_id": decision_id, "score": 0.25,
                                                         "tier": "medium", "notes": "too long"})
        bad_score = client.post("/v1/dmr/outcomes", json={"decision_id": decision_id, "score": "great"})
        bad_tier = client.post("/v1/dmr/outcomes", json={"decision_id": decision_id, "score": 1, "tier": "huge"})
        unknown = client.post("/v1/dmr/outcomes", json={"decision_id": decision_id, "score": 1, "stars": 5})
    assert accepted.status_code == 202
    router.close()
    [stored] = read_outcomes(tmp_path / "decisions.sqlite3")
    assert (stored["decision_id"], stored["score"], stored["tier"], stored["notes"]) == (
        decision_id, 0.25, "medium", "too long")
    assert [r.status_code for r in (bad_score, bad_tier, unknown)] == [400, 400, 400]
    assert bad_score.json()["error"]["param"] == "score"
    assert unknown.json()["error"]["param"] == "stars"


def test_outcomes_without_a_decision_log_say_how_to_configure_one():
    with TestClient(create_app(make_router(None, layer3_enabled=False))) as client:
        answer = client.post("/v1/dmr/outcomes", json={"decision_id": "abc", "score": 1})
    assert answer.status_code == 501
    assert "decision_logger" in answer.json()["error"]["message"]
    assert answer.headers["x-should-retry"] == "false"


def test_an_app_built_from_a_config_owns_and_closes_its_router(tmp_path):
    log = tmp_path / "decisions.jsonl"
    app = create_app(config={"layer3_enabled": False, "decision_logger": str(log)})
    with TestClient(app) as client:
        assert client.post("/v1/dmr/classify", json={"task": EASY}).status_code == 200
    assert app.state.router.decision_logger.closed  # the lifespan closed the Router it built
    assert json.loads(log.read_text().splitlines()[0])["task"] == EASY

    mine = make_router(None, layer3_enabled=False, decision_logger=str(tmp_path / "mine.jsonl"))
    with TestClient(create_app(mine)):
        pass
    assert not mine.decision_logger.closed  # a Router passed in stays the caller's
    mine.close()


def test_create_app_reports_bad_settings_at_once():
    with pytest.raises(ConfigError) as both:
        create_app(make_router(None, layer3_enabled=False), config={"layer3_enabled": False})
    assert both.value.problems == [("config", "conflicts with router")]
    with pytest.raises(ConfigError) as bad:
        create_app(make_router(None, layer3_enabled=False), aliases=[" dmr"], api_key="", upstream_timeout=0,
                   max_upstream_connections=0, max_answer_bytes=-1, allow_named_models="no")
    assert [path for path, _ in bad.value.problems] == ["aliases", "api_key", "upstream_timeout",
                                                        "max_upstream_connections", "max_answer_bytes",
                                                        "allow_named_models"]


def test_the_key_comes_from_the_environment_when_not_given(monkeypatch):
    monkeypatch.setenv("DMR_SERVER_API_KEY", "from-env")
    with TestClient(create_app(make_router(None, layer3_enabled=False))) as client:
        refused = client.get("/v1/models")
        wrong_scheme = client.get("/v1/models", headers={"Authorization": "Basic from-env"})
        allowed = client.get("/v1/models", headers={"Authorization": "Bearer from-env"})
    assert refused.status_code == wrong_scheme.status_code == 401
    assert refused.json() == {"error": {"message": refused.json()["error"]["message"], "type": "authentication_error",
                                        "param": None, "code": "invalid_api_key"}}
    assert refused.headers["www-authenticate"] == "Bearer"
    assert allowed.status_code == 200


def test_import_dmr_does_not_load_the_server_stack():
    code = ("import sys, json, dmr, dmr.cli.main; "
            "print(json.dumps([m for m in ('starlette', 'uvicorn', 'dmr.server') if m in sys.modules]))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(loaded) == []


def _on_the_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_a_large_body_is_decoded_read_and_encoded_off_the_event_loop(fault_server, monkeypatch):
    # Decoding a 32 MiB body takes the event loop for a second or more, and with it every other
    # request and stream in flight. Watch where the work on a ~2 MB body runs.
    on_loop: list[str] = []

    def watched(name, work, size):
        def run(*args, **kwargs):
            result = work(*args, **kwargs)
            if size(args, result) > 1_000_000 and _on_the_event_loop():
                on_loop.append(name)
            return result
        return run

    monkeypatch.setattr(json, "loads", watched("json.loads", json.loads, lambda args, _: len(args[0])))
    monkeypatch.setattr(json, "dumps", watched("json.dumps", json.dumps, lambda _, result: len(result)))
    monkeypatch.setattr(dmr.server.bodies, "task_of", watched("task_of", dmr.server.bodies.task_of,
                                                              lambda *_: 2_000_000))
    fault_server.script(Reply.openai("ok"))
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": "word " * 20} for i in range(20_000)]
    messages = [*turns, {"role": "user", "content": EASY}]
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        routed = client.post("/v1/chat/completions", json={"model": "dmr", "messages": messages})
        classified = client.post("/v1/dmr/classify", json={"messages": messages})
    assert routed.status_code == classified.status_code == 200
    assert on_loop == []


@pytest.mark.service("llm")
def test_a_request_goes_past_models_that_lack_what_it_needs(recorder):
    registry = registry_for(recorder.base_url)
    registry["models"][MODELS["low"]]["capabilities"] = {"supports_json_schema": False, "supports_vision": False}
    router = Router(model_registry=registry, provider="local", layer2_enabled=False)
    schema = {"type": "json_schema", "json_schema": {"name": "city", "schema": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        structured = client.chat.completions.with_raw_response.create(
            model="dmr", messages=[{"role": "user", "content": "Name the capital of France."}], max_tokens=80,
            temperature=0, response_format=schema)  # greedy, with room for the whole object: sampled, the
        # small model sometimes ran on inside the string past 30 tokens
        plain = client.chat.completions.with_raw_response.create(
            model="dmr", messages=[{"role": "user", "content": "Name the capital of France."}], max_tokens=8)
    with TestClient(create_app(router)) as local:
        said = local.post("/v1/dmr/classify", json={"task": EASY, "needs": ["vision"]}).json()
        implied = local.post("/v1/dmr/classify", json={"messages": [{"role": "user", "content": "Name a city."}],
                                                       "response_format": schema}).json()
        refused = [local.post("/v1/dmr/classify", json={"task": "hi", "needs": bad}) for bad in ("vision", ["Vision!"])]
    assert said["model_name"] == MODELS["medium"] and "needs_vision:low->medium" in said["policies_applied"]
    assert "needs_json_schema:low->medium" in implied["policies_applied"]
    assert [(r.status_code, r.json()["error"]["code"]) for r in refused] == [(400, "invalid_type"), (400, "invalid_input")]
    assert recorder.models == [MODELS["medium"], MODELS["low"]]
    assert structured.headers["x-dmr-tier"] == "medium"
    assert "city" in json.loads(structured.parse().choices[0].message.content)
    assert dmr.server.bodies.needs_of({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "data:,"}}]}],
        "tools": [{"type": "function", "function": {"name": "f"}}]}) == ["vision", "function_calling"]
    assert dmr.server.bodies.needs_of({"messages": [{"role": "user", "content": "hi"}], "tools": []}) == []
