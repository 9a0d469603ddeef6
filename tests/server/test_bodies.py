"""Bad requests get a 400 (or 413) in OpenAI's shape, never a 500, and never reach a provider."""

from __future__ import annotations

import pytest
from proxy_support import EASY, HARD, TestClient, make_router

from dmr.server import create_app

USER = [{"role": "user", "content": EASY}]

BAD_BODIES = [
    pytest.param(b"", "invalid_json", None, id="empty body"),
    pytest.param(b'{"model": "dmr", "messages": [', "invalid_json", None, id="invalid JSON"),
    pytest.param(b'["dmr"]', "invalid_json", None, id="not an object"),
    pytest.param(b'{"model": "dmr", "messages": [{"role": "user", "content": "caf\xe9"}]}', "invalid_encoding", None,
                 id="not UTF-8"),
    pytest.param(b'{"model": "dmr", "temperature": NaN, "messages": [{"role": "user", "content": "hi"}]}',
                 "invalid_json", None, id="NaN"),
    pytest.param(b'{"model": "dmr"}', "missing_required_parameter", "messages", id="no messages"),
    pytest.param(b'{"model": "dmr", "messages": []}', "invalid_type", "messages", id="empty messages"),
    pytest.param(b'{"model": "dmr", "messages": "hi"}', "invalid_type", "messages", id="messages not an array"),
    pytest.param(b'{"model": "dmr", "messages": ["hi"]}', "invalid_type", "messages[0]", id="message not an object"),
    pytest.param(b'{"model": "dmr", "messages": [{"role": "user", "content": "  "}, {"role": "user", "content": []}]}',
                 "invalid_input", "messages", id="no text"),
    pytest.param(b'{"model": "dmr", "messages": [{"role": "user", "content": [{"type": "text", "text": " "}, '
                 b'{"type": "refusal"}]}]}', "invalid_input", "messages", id="no text in the parts"),
    pytest.param(b'{"messages": [{"role": "user", "content": "hi"}]}', "missing_required_parameter", "model",
                 id="no model"),
    pytest.param(b'{"model": 4, "messages": [{"role": "user", "content": "hi"}]}', "invalid_type", "model",
                 id="model not a string"),
    pytest.param(b'{"model": "dmr", "stream": "yes", "messages": [{"role": "user", "content": "hi"}]}',
                 "invalid_type", "stream", id="stream not a boolean"),
]


@pytest.fixture
def client(fault_server):
    app = create_app(make_router(fault_server.url + "/v1", layer3_enabled=False), max_body_bytes=4096)
    with TestClient(app) as test_client:  # raises on any unhandled exception: a 500 would fail here
        yield test_client
    assert fault_server.count == 0, "a bad request reached the provider"


@pytest.mark.parametrize(("raw", "code", "param"), BAD_BODIES)
def test_a_bad_chat_request_is_a_400_in_openai_shape(client, raw, code, param):
    answer = client.post("/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)
    assert error["message"]


def test_a_body_over_the_limit_is_a_413(client):
    huge = {"model": "dmr", "messages": [{"role": "user", "content": "x" * 5000}]}
    answer = client.post("/v1/chat/completions", json=huge)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "body_too_large"

    def chunked():  # no Content-Length: the limit holds while reading
        yield b'{"model": "dmr", "messages": [{"role": "user", "content": "'
        yield b"x" * 5000
        yield b'"}]}'

    assert client.post("/v1/chat/completions", content=chunked()).status_code == 413


def test_an_unknown_model_is_a_404_that_names_the_aliases(client):
    answer = client.post("/v1/chat/completions", json={"model": "gpt-9", "messages": USER})
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert all(alias in error["message"] for alias in ("'dmr'", "'dmr-auto'", "'auto'"))


@pytest.mark.parametrize("body", [{"task": 3}, {"task": "hi", "history": "earlier"}, {},
                                  {"messages": [{"role": "user", "content": ""}]}, {"task": "   "}])
def test_a_bad_classify_request_is_a_400(client, body):
    answer = client.post("/v1/dmr/classify", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["type"] == "invalid_request_error"


# Bodies as sent on the wire: JSON's \\uXXXX escapes can spell a UTF-16 surrogate with no partner.
LONE_SURROGATES = [
    pytest.param("/v1/dmr/outcomes", r'{"decision_id": "ID", "score": 0.5, "notes": "\ud800"}', "notes",
                 id="outcome notes"),
    pytest.param("/v1/dmr/outcomes", r'{"decision_id": "\ud800", "score": 0.5}', "decision_id",
                 id="outcome decision_id"),
    pytest.param("/v1/dmr/outcomes", r'{"decision_id": "ID", "score": 0.5, "model": "m\udfff"}', "model",
                 id="outcome model"),
    pytest.param("/v1/dmr/outcomes", r'{"decision_id": "ID", "score": 0.5, "tier": "\udc00low"}', "tier",
                 id="outcome tier"),
    pytest.param("/v1/dmr/classify", r'{"task": "hi \ud800"}', "task", id="classify task"),
    pytest.param("/v1/dmr/classify", r'{"task": "hi", "history": ["ok", "\udc00"]}', "history",
                 id="classify history"),
    pytest.param("/v1/dmr/classify", r'{"messages": [{"role": "user", "content": [{"type": "text", '
                                     r'"text": "a\ud800"}]}]}', "messages", id="classify messages"),
]


@pytest.fixture
def logged(tmp_path):
    """A client over a Router with a decision log, and a decision to give outcomes to."""
    router = make_router(None, tmp_path, layer3_enabled=False)
    with TestClient(create_app(router)) as test_client:
        decision_id = test_client.post("/v1/dmr/classify", json={"task": HARD}).json()["decision_id"]
        yield test_client, decision_id
    router.close()


@pytest.mark.parametrize(("path", "raw", "param"), LONE_SURROGATES)
def test_a_lone_surrogate_is_a_400_naming_its_field(logged, path, raw, param):
    client, decision_id = logged
    answer = client.post(path, content=raw.replace("ID", decision_id).encode(),
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_encoding", param)


def test_a_surrogate_pair_is_text(logged):
    client, decision_id = logged
    smile = r"\ud83d\ude00"  # one emoji, escaped as UTF-16 on the wire
    classified = client.post("/v1/dmr/classify", content=f'{{"task": "well done {smile}"}}'.encode(),
                             headers={"Content-Type": "application/json"})
    scored = client.post("/v1/dmr/outcomes", headers={"Content-Type": "application/json"},
                         content=f'{{"decision_id": "{decision_id}", "score": 1, "notes": "{smile}"}}'.encode())
    assert classified.status_code == 200 and scored.status_code == 202


@pytest.mark.parametrize("score", ["1" + "0" * 400, "1e400", "true", '"0.5"'])
def test_a_score_that_is_not_a_finite_number_is_a_400(logged, score):
    # An integer too large for a float once reached math.isfinite and came back as a 500.
    client, decision_id = logged
    answer = client.post("/v1/dmr/outcomes", headers={"Content-Type": "application/json"},
                         content=f'{{"decision_id": "{decision_id}", "score": {score}}}'.encode())
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == "score"
