"""POST /v1/completions: OpenAI's legacy Completions API, routed like a chat completion and answered
from the provider's chat completion. The official openai SDK is the client and the real local LLM
answers; several choices, stream faults and odd finish reasons come from the fault injector's
scripted chat answers (tests/fault_server.py), at the HTTP level."""

from __future__ import annotations

import openai
import pytest
from fault_server import Reply
from proxy_support import (EASY, HARD, MODELS, LiveServer, TestClient, chat_chunk, make_router, refused_untranslated,
                           sse, sse_data)

from dmr.server import create_app
from dmr.server.completions import completions_request

ALIASES = ("dmr", "dmr-auto", "auto")
SHORT = "What is 2+2? Answer with a number only."


def sdk(live: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key="not-checked", max_retries=0)


@pytest.mark.service("llm")
def test_a_completion_is_routed_and_answered_from_the_chat_completion(router, recorder):
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        easy = client.completions.with_raw_response.create(model="dmr", prompt=EASY, max_tokens=48, temperature=0,
                                                           stop=["\n\n\n"])
        hard = client.completions.create(model="dmr", prompt=[HARD], max_tokens=4)
    assert recorder.models == [MODELS["low"], MODELS["high"]]
    assert easy.headers["x-dmr-tier"] == "low" and easy.headers["x-dmr-decision-id"]
    assert recorder.bodies[0] == {"model": "local-small", "max_tokens": 48, "temperature": 0, "stop": ["\n\n\n"],
                                  "messages": [{"role": "user", "content": EASY}]}
    answer = easy.parse()
    assert answer.object == "text_completion" and answer.id.startswith("cmpl-") and answer.model
    assert answer.choices[0].text.strip() and answer.choices[0].finish_reason == "stop"
    assert answer.usage.completion_tokens > 0 and answer.usage.prompt_tokens > 0
    assert hard.choices[0].finish_reason == "length" and hard.usage.completion_tokens == 4
    assert router.budget.spent_usd == pytest.approx(
        (answer.usage.prompt_tokens * 0.1 + answer.usage.completion_tokens * 0.2
         + hard.usage.prompt_tokens * 10.0 + hard.usage.completion_tokens * 20.0) / 1e6)


@pytest.mark.service("llm")
def test_a_streamed_completion_comes_as_text_completion_chunks(router, recorder):
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        chunks = list(client.completions.create(model="dmr", prompt=SHORT, max_tokens=48, temperature=0, stream=True,
                                                stream_options={"include_usage": True}))
        plain = list(client.completions.create(model="dmr", prompt=SHORT, max_tokens=3, stream=True))
    assert recorder.bodies[0]["stream"] is True and recorder.bodies[0]["stream_options"] == {"include_usage": True}
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert len(texts) >= 2 and "4" in "".join(texts)
    assert {c.object for c in chunks} == {"text_completion"} and len({c.id for c in chunks}) == 1
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens > 0
    # Without include_usage no usage chunk, as OpenAI's API; the budget is charged all the same.
    assert plain[-1].choices[0].finish_reason == "length" and all(c.usage is None for c in plain)
    assert router.budget.spent_usd > 0.0


def test_several_choices_come_back_with_their_finish_reasons(fault_server):
    answer = {"id": "c1", "object": "chat.completion", "created": 1_700_000_000, "model": "m",
              "system_fingerprint": "fp_1", "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11},
              "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Oslo"}},
                          {"index": 1, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None}},
                          {"index": 2, "finish_reason": "content_filter",
                           "message": {"role": "assistant", "content": None, "refusal": "I can't."}}]}
    fault_server.script(Reply.json(answer))
    with TestClient(create_app(make_router(fault_server.url + "/v1", layer3_enabled=False))) as client:
        got = client.post("/v1/completions", json={"model": "dmr", "prompt": EASY, "n": 3}).json()
    assert fault_server.requests[0]["body"]["n"] == 3
    assert [(c["index"], c["text"], c["finish_reason"]) for c in got["choices"]] == [
        (0, "Oslo", "stop"), (1, "", "stop"), (2, "I can't.", "content_filter")]
    assert (got["created"], got["model"], got["system_fingerprint"]) == (1_700_000_000, "m", "fp_1")
    assert got["usage"]["total_tokens"] == 11 and got["choices"][0]["logprobs"] is None


def test_the_stream_ends_as_openais_does_however_the_provider_ends_its_own(fault_server):
    # The provider's stream: text, a tool call the completion cannot hold, a finish, usage, [DONE].
    fault_server.script(Reply(200, sse(chat_chunk({"role": "assistant", "content": "Ja"}),
                                       chat_chunk({"tool_calls": [{"index": 0, "id": "c", "function": {
                                           "name": "f", "arguments": "{}"}}]}),
                                       chat_chunk({"content": "."}, "stop", usage=(3, 2))),
                              {"Content-Type": "text/event-stream"}))
    with TestClient(create_app(make_router(fault_server.url + "/v1", layer3_enabled=False))) as client:
        raw = client.post("/v1/completions", json={"model": "dmr", "prompt": EASY, "stream": True,
                                                   "stream_options": {"include_usage": True}}).text
    events = sse_data(raw.replace("data: [DONE]", ""))
    assert [e["choices"][0]["text"] for e in events[:-1]] == ["Ja", ".", ""]
    assert events[-2]["choices"][0]["finish_reason"] == "stop" and events[-1]["choices"] == []
    assert events[-1]["usage"]["completion_tokens"] == 2
    assert raw.endswith("data: [DONE]\n\n") and raw.count("[DONE]") == 1


def test_an_error_inside_the_provider_stream_ends_the_completion_stream_with_it(fault_server):
    fault_server.script(Reply(200, sse(chat_chunk({"content": "Hel"}), {"error": {"message": "model overloaded",
                                                                                "code": "overloaded"}}),
                              {"Content-Type": "text/event-stream"}))
    with TestClient(create_app(make_router(fault_server.url + "/v1", layer3_enabled=False))) as client:
        raw = client.post("/v1/completions", json={"model": "dmr", "prompt": EASY, "stream": True}).text
    events = sse_data(raw)
    assert events[0]["choices"][0]["text"] == "Hel"
    assert events[-1] == {"error": {"message": "model overloaded", "type": "server_error", "param": None,
                                    "code": "overloaded"}}
    assert "[DONE]" not in raw


def test_the_sdk_raises_on_a_stream_that_breaks_off(fault_server):
    body = sse(chat_chunk({"content": "Half an ans"}))[:-14]
    fault_server.script(Reply(200, body, {"Content-Type": "text/event-stream"}, declared_length=len(body) + 500))
    with LiveServer(create_app(make_router(fault_server.url + "/v1", layer3_enabled=False))) as live, \
            sdk(live) as client:
        stream = client.completions.create(model="dmr", prompt=EASY, stream=True)
        with pytest.raises(openai.APIError, match="could not be reached"):
            for _ in stream:
                pass


@pytest.mark.parametrize("body, param, code", [
    ({"model": "dmr"}, "prompt", "missing_required_parameter"),
    ({"prompt": "hi"}, "model", "missing_required_parameter"),
    ({"model": "dmr", "prompt": "   "}, "prompt", "invalid_input"),
    ({"model": "dmr", "prompt": [1, 2, 3]}, "prompt", "invalid_type"),
    ({"model": "dmr", "prompt": ["a", "b"]}, "prompt", "unsupported_parameter"),
    ({"model": "dmr", "prompt": "hi", "echo": True}, "echo", "unsupported_parameter"),
    ({"model": "dmr", "prompt": "hi", "suffix": "end"}, "suffix", "unsupported_parameter"),
    ({"model": "dmr", "prompt": "hi", "logprobs": 2}, "logprobs", "unsupported_parameter"),
    ({"model": "dmr", "prompt": "hi", "best_of": 3}, "best_of", "unsupported_parameter"),
    ({"model": "dmr", "prompt": "hi", "n": 2, "stream": True}, "n", "unsupported_parameter"),
    ({"model": "dmr", "prompt": "hi", "stream_options": "yes"}, "stream_options", "invalid_type"),
    ({"model": "dmr", "prompt": "hi", "frobnicate": 1}, "frobnicate", "unknown_parameter"),
    ({"model": "dmr", "prompt": "hi", "stream": "yes"}, "stream", "invalid_type"),
])
def test_a_request_the_proxy_cannot_translate_is_a_400_naming_the_parameter(fault_server, body, param, code):
    error = refused_untranslated(fault_server, "/v1/completions", body)
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")


def test_the_request_is_translated_field_by_field():
    body = {"model": "dmr", "prompt": "Write a haiku.", "max_tokens": 30, "temperature": 0.2, "top_p": 0.9, "n": 2,
            "stop": "\n", "presence_penalty": 0.1, "frequency_penalty": 0.3, "logit_bias": {"50256": -100},
            "seed": 7, "user": "u-1", "echo": False, "best_of": 1, "suffix": None, "logprobs": None}
    model, chat, messages, stream = completions_request(body, ALIASES)
    assert (model, stream) == ("dmr", False)
    assert chat == {"model": "dmr", "messages": [{"role": "user", "content": "Write a haiku."}], "max_tokens": 30,
                    "temperature": 0.2, "top_p": 0.9, "n": 2, "stop": "\n", "presence_penalty": 0.1,
                    "frequency_penalty": 0.3, "logit_bias": {"50256": -100}, "seed": 7, "user": "u-1"}
    assert messages == chat["messages"]
    _, streamed, _, stream = completions_request({"model": "dmr", "prompt": "hi", "stream": True}, ALIASES)
    # The provider is always asked for its usage: the budget is charged from it.
    assert stream and streamed["stream_options"] == {"include_usage": True}
