"""A routed model that refuses a parameter its client could not know about: the proxy asks again
adapted to it, and adapts later requests to that model without the 400. The refusals are OpenAI's
own error messages; no local server produces them, so the fault injector sends them."""

from __future__ import annotations

from fault_server import Reply
from proxy_support import EASY, HARD, TestClient, chat_chunk, make_router, sse

from dmr.providers.refusals import Refusal, adapted, input_overflows, read_refusal
from dmr.server import create_app
from dmr.server.adapt import Adaptations
from dmr.server.routing import Destination

USER = [{"role": "user", "content": EASY}]
NO_MAX_TOKENS = ("Unsupported parameter: 'max_tokens' is not supported with this model. "
                 "Use 'max_completion_tokens' instead.")
NO_TEMPERATURE = ("Unsupported value: 'temperature' does not support 0.2 with this model. "
                  "Only the default (1) value is supported.")
TOO_LONG = ("max_tokens is too large: 32000. This model supports at most 16384 completion tokens, "
            "whereas you provided 32000.")


def no_room(context: int, given: int, asked: int = 32000) -> str:
    """vLLM's refusal of a length limit that does not fit beside the input in the context window."""
    return (f"'max_tokens' or 'max_completion_tokens' is too large: {asked}. This model's maximum context length "
            f"is {context} tokens and your request has {given} input tokens ({asked} > {context} - {given}). None")


def _refused(message: str, param: str | None = None) -> Reply:
    return Reply.json({"error": {"message": message, "type": "invalid_request_error", "param": param,
                                 "code": "unsupported_parameter"}}, status=400)


def _client(fault_server):
    return TestClient(create_app(make_router(fault_server.url + "/v1", layer3_enabled=False)))


def _bodies(fault_server) -> list[dict]:
    return [r["body"] for r in fault_server.requests]


def test_openai_refusals_are_read_from_their_messages():
    assert read_refusal(NO_MAX_TOKENS) == Refusal(rename_length=True)
    assert read_refusal(NO_TEMPERATURE) == Refusal(dropped=frozenset({"temperature"}))
    assert read_refusal("Unsupported parameter: 'top_p' is not supported with this model.") == \
        Refusal(dropped=frozenset({"top_p"}))
    assert read_refusal(TOO_LONG) == Refusal(length_cap=16384)
    assert read_refusal("max_completion_tokens is too large: 200000. This model supports at most 100000 "
                        "completion tokens") == Refusal(length_cap=100000)
    assert read_refusal(no_room(8192, 2778)) == Refusal(room=8192 - 2778)
    assert read_refusal("This model's maximum context length is 4097 tokens. However, you requested 5000 tokens "
                        "(1000 in the messages, 4000 in the completion). Please reduce the length of the messages "
                        "or completion.") == Refusal(room=3097)
    # An input that alone overflows the window is not the limit's fault: nothing to adapt.
    assert not read_refusal("This model's maximum context length is 1536 tokens. However, your request has "
                            "4176 input tokens. Please reduce the length of the input messages.")
    # Other 400s name no parameter the proxy could change.
    for message in ("Field 'n' is not supported", "messages: at most 2048 items", "'temperature' must be <= 2",
                    "", "Invalid 'max_tokens': integer below minimum value."):
        assert not read_refusal(message), message
        assert not input_overflows(message), message


def test_an_input_that_alone_overflows_the_window_is_told_apart():
    assert input_overflows("This model's maximum context length is 1536 tokens. However, your request has 4176 "
                           "input tokens. Please reduce the length of the input messages.")
    assert input_overflows("This model's maximum context length is 8192 tokens. However, your messages resulted in "
                           "9000 tokens. Please reduce the length of the messages.")
    assert input_overflows("anything", code="context_length_exceeded")  # OpenAI's code
    assert input_overflows("request (5031 tokens) exceeds the available context size (2048 tokens), try increasing it")
    assert input_overflows("prompt is too long: 210000 tokens > 200000 maximum")
    # A length limit without room beside a fitting input is adapted to, not an overflow.
    assert not input_overflows(no_room(8192, 2778))
    assert not input_overflows("This model's maximum context length is 4097 tokens. However, you requested 5000 "
                               "tokens (1000 in the messages, 4000 in the completion).")


def test_a_refusal_changes_only_what_it_names():
    body = {"model": "m", "messages": USER, "max_tokens": 32000, "temperature": 0.2, "top_p": 0.9, "stream": True}
    assert adapted(body, Refusal(rename_length=True)) == {**{k: v for k, v in body.items() if k != "max_tokens"},
                                                          "max_completion_tokens": 32000}
    assert adapted(body, Refusal(dropped=frozenset({"temperature"}))) == \
        {k: v for k, v in body.items() if k != "temperature"}
    assert adapted(body, Refusal(length_cap=16384))["max_tokens"] == 16384
    assert adapted({**body, "max_tokens": 100}, Refusal(length_cap=16384))["max_tokens"] == 100
    assert body["max_tokens"] == 32000  # the caller's body is left alone


def test_max_tokens_refused_is_asked_again_as_max_completion_tokens_and_remembered(fault_server):
    fault_server.script(_refused(NO_MAX_TOKENS, "max_tokens"), Reply.openai("Paris."), Reply.openai("Rome."))
    with _client(fault_server) as client:
        first = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER, "max_tokens": 50})
        second = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER, "max_tokens": 60})
    assert first.status_code == 200 and first.json()["choices"][0]["message"]["content"] == "Paris."
    assert first.headers["x-dmr-adapted"] == second.headers["x-dmr-adapted"] == "max_tokens"
    assert second.status_code == 200 and second.json()["choices"][0]["message"]["content"] == "Rome."
    bodies = _bodies(fault_server)
    assert len(bodies) == 3  # the refusal is learnt: the second request is sent adapted at once
    assert bodies[0]["max_tokens"] == 50 and "max_completion_tokens" not in bodies[0]
    assert bodies[1]["max_completion_tokens"] == 50 and "max_tokens" not in bodies[1]
    assert bodies[2]["max_completion_tokens"] == 60 and "max_tokens" not in bodies[2]
    assert all(b["model"] == "local-small" and b["messages"] == USER for b in bodies)


def test_what_one_model_refused_is_not_applied_to_another(fault_server):
    fault_server.script(_refused(NO_TEMPERATURE, "temperature"), Reply.openai("a"), Reply.openai("b"))
    with _client(fault_server) as client:
        easy = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER, "temperature": 0.2})
        hard = client.post("/v1/chat/completions", json={
            "model": "dmr", "messages": [{"role": "user", "content": HARD}], "temperature": 0.2})
    assert easy.status_code == hard.status_code == 200
    assert easy.headers["x-dmr-adapted"] == "temperature" and "x-dmr-adapted" not in hard.headers
    bodies = _bodies(fault_server)
    assert [b["model"] for b in bodies] == ["local-small", "local-small", "local-large"]
    assert "temperature" not in bodies[1]
    assert bodies[2]["temperature"] == 0.2


def test_two_refusals_in_turn_are_both_adapted_to(fault_server):
    fault_server.script(_refused(NO_MAX_TOKENS), _refused(NO_TEMPERATURE), Reply.openai("ok"))
    with _client(fault_server) as client:
        answer = client.post("/v1/chat/completions",
                             json={"model": "dmr", "messages": USER, "max_tokens": 20, "temperature": 0.2})
    assert answer.status_code == 200
    last = _bodies(fault_server)[-1]
    assert last["max_completion_tokens"] == 20 and "max_tokens" not in last and "temperature" not in last
    assert answer.headers["x-dmr-adapted"] == "max_tokens,temperature"


def test_a_400_that_is_no_known_refusal_is_relayed_after_one_ask(fault_server):
    fault_server.script(_refused("Field 'n' is not supported", "n"))
    with _client(fault_server) as client:
        answer = client.post("/v1/chat/completions", json={"model": "dmr", "messages": USER, "n": 3})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "Field 'n' is not supported"
    assert fault_server.count == 1 and "x-dmr-adapted" not in answer.headers


def test_a_model_that_keeps_refusing_is_asked_at_most_three_times(fault_server):
    # Each ask is refused for something new; after the third the refusal goes to the client.
    fault_server.script(_refused(NO_MAX_TOKENS), _refused(NO_TEMPERATURE),
                        _refused("Unsupported parameter: 'top_p' is not supported with this model."))
    with _client(fault_server) as client:
        answer = client.post("/v1/chat/completions", json={
            "model": "dmr", "messages": USER, "max_tokens": 20, "temperature": 0.2, "top_p": 0.5})
    assert answer.status_code == 400 and "'top_p'" in answer.json()["error"]["message"]
    assert fault_server.count == 3


def test_a_refused_stream_is_asked_again_and_relayed(fault_server):
    stream = sse(chat_chunk({"role": "assistant", "content": "Hel"}), chat_chunk({"content": "lo"}, "stop"))
    fault_server.script(_refused(NO_MAX_TOKENS),
                        Reply(200, stream, {"Content-Type": "text/event-stream"}))
    with _client(fault_server) as client:
        answer = client.post("/v1/chat/completions",
                             json={"model": "dmr", "messages": USER, "max_tokens": 20, "stream": True})
    assert answer.status_code == 200
    assert answer.text == stream.decode()  # relayed as the provider sent it
    assert answer.headers["x-dmr-adapted"] == "max_tokens"
    assert _bodies(fault_server)[1]["max_completion_tokens"] == 20


def test_a_messages_api_limit_above_the_models_is_lowered_to_it(fault_server):
    # Claude Code asks for 32,000 output tokens; a model that takes 16,384 says so.
    fault_server.script(_refused(TOO_LONG, "max_tokens"), Reply.openai("Red, yellow, blue."))
    with _client(fault_server) as client:
        answer = client.post("/v1/messages", json={
            "model": "dmr", "max_tokens": 32000, "messages": [{"role": "user", "content": EASY}]})
    assert answer.status_code == 200
    assert answer.json()["content"] == [{"type": "text", "text": "Red, yellow, blue."}]
    assert [b["max_tokens"] for b in _bodies(fault_server)] == [32000, 16384]
    assert answer.headers["x-dmr-adapted"] == "max_tokens"


def test_a_limit_without_room_beside_the_input_is_lowered_for_that_request_only(fault_server):
    # Claude Code's 32,000 tokens to a vLLM model with an 8,192-token window: each request gets the
    # room its own input leaves, and the next one is not held to the first one's room.
    fault_server.script(_refused(no_room(8192, 3000)), Reply.openai("One."),
                        _refused(no_room(8192, 5000)), Reply.openai("Two."))
    with _client(fault_server) as client:
        answers = [client.post("/v1/messages", json={"model": "dmr", "max_tokens": 32000, "messages": [
            {"role": "user", "content": EASY}]}) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.json()["content"][0]["text"] for a in answers] == ["One.", "Two."]
    assert [b["max_tokens"] for b in _bodies(fault_server)] == [32000, 5192, 32000, 3192]
    assert all(a.headers["x-dmr-adapted"] == "max_tokens" for a in answers)


def test_a_responses_api_request_is_adapted_too(fault_server):
    fault_server.script(_refused(NO_MAX_TOKENS), Reply.openai("Bonne nuit."))
    with _client(fault_server) as client:
        answer = client.post("/v1/responses", json={"model": "dmr", "input": EASY, "max_output_tokens": 40})
    assert answer.status_code == 200 and answer.json()["status"] == "completed"
    assert _bodies(fault_server)[1]["max_completion_tokens"] == 40


def test_the_memory_of_refusals_is_bounded_and_forgets_the_oldest():
    adaptations = Adaptations(capacity=2)
    refusal = NO_MAX_TOKENS
    places = [Destination("p", f"model-{i}", "http://upstream/v1/chat/completions", None, None) for i in range(3)]
    body = {"messages": USER, "max_tokens": 10}
    for where in places:
        assert adaptations.retry(where, body, refusal) == {"messages": USER, "max_completion_tokens": 10}
        assert adaptations.retry(where, adaptations.apply(where, body), refusal) is None  # nothing more to change
    assert adaptations.apply(places[0], body) == body  # forgotten
    assert [adaptations.apply(w, body) for w in places[1:]] == [{"messages": USER, "max_completion_tokens": 10}] * 2
    # An error whose message is not a refusal, or that has none, changes nothing.
    assert adaptations.retry(places[0], body, "provider 'p' answered HTTP 400: <html>bad request</html>") is None
    assert adaptations.retry(places[0], body, "") is None
