"""POST /v1/messages: Anthropic's Messages API, routed like a chat completion and answered from the
provider's chat completion. The official anthropic SDK is the client; the real local LLM answers
text. The local model makes no tool calls, so tool use comes from the fault injector's scripted chat
answers (tests/fault_server.py), at the HTTP level."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest
from fault_server import Reply
from proxy_support import (EASY, HARD, MODELS, LiveServer, TestClient, chat_chunk, make_router, sse, sse_data,
                           tool_call_answer, tool_call_stream)

from dmr.server import create_app
from dmr.server.anthropic_messages import messages_request

ALIASES = ("dmr", "dmr-auto", "auto")
SHORT = "What is 2+2? Answer with a number only."  # greedy SmolLM2 stops by itself after a few tokens
WEATHER = {"name": "get_weather", "description": "Current weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def sdk(live: LiveServer, key: str = "not-checked") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live.url, api_key=key, max_retries=0)



@pytest.mark.service("llm")
def test_a_message_is_routed_and_answered_from_the_chat_completion(router, recorder):
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        easy = client.messages.with_raw_response.create(model="dmr", max_tokens=48, system="Be brief.", extra_body={"temperature": 0},
                                                        messages=[{"role": "user", "content": EASY}])
        hard = client.messages.create(model="dmr", max_tokens=4, messages=[
            {"role": "user", "content": [{"type": "text", "text": HARD}]}])
    assert recorder.models == [MODELS["low"], MODELS["high"]]
    assert easy.headers["x-dmr-tier"] == "low" and easy.headers["x-dmr-decision-id"]
    assert recorder.bodies[0] == {"model": "local-small", "max_tokens": 48, "temperature": 0, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": EASY}]}
    answer = easy.parse()
    assert answer.type == "message" and answer.id.startswith("msg_") and answer.role == "assistant"
    assert answer.stop_reason == "end_turn" and answer.content[0].type == "text" and answer.content[0].text.strip()
    assert answer.usage.input_tokens > 0 and answer.usage.output_tokens > 0
    assert hard.stop_reason == "max_tokens" and hard.usage.output_tokens == 4
    cost = (answer.usage.input_tokens * 0.1 + answer.usage.output_tokens * 0.2
            + hard.usage.input_tokens * 10.0 + hard.usage.output_tokens * 20.0) / 1e6
    assert router.budget.spent_usd == pytest.approx(cost)


@pytest.mark.service("llm")
def test_a_streamed_message_tells_the_answer_as_anthropic_events(router, recorder):
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        with client.messages.stream(model="dmr", max_tokens=48, extra_body={"temperature": 0},
                                    messages=[{"role": "user", "content": SHORT}]) as stream:
            events = list(stream)
            final = stream.get_final_message()
    assert recorder.bodies[0]["stream"] is True and recorder.bodies[0]["stream_options"] == {"include_usage": True}
    kinds = [e.type for e in events if e.type != "text"]  # "text": the SDK's own convenience events
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [e.delta.text for e in events if e.type == "content_block_delta"]
    assert len(deltas) >= 2 and set(kinds[2:-3]) == {"content_block_delta"}
    assert final.content[0].text == "".join(deltas) and "4" in final.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0 and final.usage.input_tokens > 0
    assert router.budget.spent_usd == pytest.approx(
        (final.usage.input_tokens * 0.1 + final.usage.output_tokens * 0.2) / 1e6)


@pytest.mark.service("llm")
def test_a_short_follow_up_keeps_the_tier_and_the_key_may_come_as_x_api_key(recorder, tmp_path):
    router = make_router(recorder.base_url, tmp_path)
    follow_up = [{"role": "user", "content": HARD}, {"role": "assistant", "content": "Use Raft."},
                 {"role": "user", "content": "and in Go?"}]
    with LiveServer(create_app(router, api_key="s3cret")) as live:
        with sdk(live, key="wrong") as client, pytest.raises(anthropic.AuthenticationError) as refused:
            client.messages.create(model="dmr", max_tokens=2, messages=follow_up)
        with sdk(live, key="s3cret") as client:
            client.messages.create(model="dmr", max_tokens=2, messages=follow_up)
            client.messages.create(model="dmr", max_tokens=2, messages=follow_up[-1:])
        # Claude Code and older Anthropic SDKs send the key as x-api-key.
        as_header = httpx.post(f"{live.url}/v1/messages", headers={"x-api-key": "s3cret"}, timeout=60,
                               json={"model": "dmr", "max_tokens": 2, "messages": follow_up[-1:]})
    router.close()
    assert as_header.status_code == 200 and as_header.json()["type"] == "message"
    assert refused.value.body["error"]["type"] == "authentication_error"
    assert recorder.models == [MODELS["high"], MODELS["low"], MODELS["low"]]
    assert "x-api-key" not in recorder.requests[2][1]  # the proxy's key is never forwarded


def test_tool_use_and_its_result_go_round_the_agent_loop(fault_server):
    answer, call = tool_call_answer("Let me check.")
    fault_server.script(Reply.json(answer), Reply.openai("It is 18 °C in Paris."))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    question = {"role": "user", "content": "What's the weather in Paris?"}
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        first = client.messages.create(model="dmr", max_tokens=100, messages=[question], tools=[WEATHER],
                                       tool_choice={"type": "any", "disable_parallel_tool_use": True})
        second = client.messages.create(model="dmr", max_tokens=100, tools=[WEATHER], messages=[
            question, {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_7",
                                          "content": [{"type": "text", "text": '{"celsius": 18}'}]},
                                         {"type": "text", "text": "In Celsius please."}]}])
    assert [b.type for b in first.content] == ["text", "tool_use"] and first.stop_reason == "tool_use"
    assert (first.content[1].id, first.content[1].name, first.content[1].input) == (
        "call_7", "get_weather", {"city": "Paris"})
    sent = [r["body"] for r in fault_server.requests]
    assert sent[0]["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather in a city", "parameters": WEATHER["input_schema"]}}]
    assert (sent[0]["tool_choice"], sent[0]["parallel_tool_calls"]) == ("required", False)
    # The tool_use block's input, serialised again.
    call["tool_calls"][0]["function"]["arguments"] = '{"city": "Paris"}'
    assert sent[1]["messages"][1:] == [call, {"role": "tool", "tool_call_id": "call_7", "content": '{"celsius": 18}'},
                                       {"role": "user", "content": "In Celsius please."}]
    assert second.content[0].text == "It is 18 °C in Paris." and second.stop_reason == "end_turn"


def test_a_streamed_tool_call_becomes_a_tool_use_block(fault_server):
    second_call = chat_chunk({"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
                                              "function": {"name": "get_weather", "arguments": '{"city":"Bergen"}'}}]})
    fault_server.script(Reply(200, tool_call_stream(second_call), {"Content-Type": "text/event-stream"}))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        with client.messages.stream(model="dmr", max_tokens=50, tools=[WEATHER],
                                    messages=[{"role": "user", "content": "Weather in Oslo?"}]) as stream:
            final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert final.content[0].text == "Checking." and final.content[1].input == {"city": "Oslo"}
    assert (final.content[2].id, final.content[2].input) == ("call_2", {"city": "Bergen"})
    assert final.stop_reason == "tool_use" and (final.usage.input_tokens, final.usage.output_tokens) == (12, 7)


def test_a_reasoning_models_thinking_comes_back_as_a_thinking_block_when_asked_for(fault_server):
    # vLLM and DeepSeek put a reasoning model's thinking in reasoning_content, OpenRouter in reasoning.
    answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
              "usage": {"prompt_tokens": 9, "completion_tokens": 14, "total_tokens": 23},
              "choices": [{"index": 0, "finish_reason": "stop", "message": {
                  "role": "assistant", "content": "17.", "reasoning_content": "17 is prime: no divisor up to 4."}}]}
    streamed = sse(chat_chunk({"role": "assistant", "reasoning": "Check 2, 3"}), chat_chunk({"reasoning": ", 4."}),
                   chat_chunk({"content": "Prime."}, "stop", usage=(9, 6)))
    fault_server.script(Reply.json(answer), Reply.json(answer), Reply(200, streamed, {"Content-Type": "text/event-stream"}))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    ask = {"model": "dmr", "max_tokens": 400, "messages": [{"role": "user", "content": "Is 17 prime?"}]}
    thinking = {"type": "enabled", "budget_tokens": 1024}
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        asked = client.messages.create(**ask, thinking=thinking)
        plain = client.messages.create(**ask)
        with client.messages.stream(**ask, thinking=thinking) as stream:
            kinds = [e.type for e in stream]
            final = stream.get_final_message()
    assert [(b.type, getattr(b, "thinking", None)) for b in asked.content] == [
        ("thinking", "17 is prime: no divisor up to 4."), ("text", None)]
    assert [b.type for b in plain.content] == ["text"] and plain.content[0].text == "17."
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Check 2, 3, 4." and final.content[1].text == "Prime."
    assert "thinking" in kinds and final.usage.output_tokens == 6
    assert "thinking" not in fault_server.requests[0]["body"]  # not sent on: chat completions take none


def test_a_stream_that_breaks_off_ends_with_an_error_event(fault_server):
    body = sse(chat_chunk({"content": "Half an ans"}))[:-14]
    fault_server.script(Reply(200, body, {"Content-Type": "text/event-stream"}, declared_length=len(body) + 500))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        raw = client.post("/v1/messages", json={"model": "dmr", "max_tokens": 9, "stream": True,
                                                "messages": [{"role": "user", "content": EASY}]})
    events = sse_data(raw.text)
    assert [e["type"] for e in events] == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert events[-1]["error"]["type"] == "api_error" and "could not be reached" in events[-1]["error"]["message"]


@pytest.mark.parametrize("body, param, code", [
    ({"model": "dmr", "max_tokens": 5}, "messages", "missing_required_parameter"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}, "model", "missing_required_parameter"),
    ({"model": "dmr", "messages": [{"role": "user", "content": "hi"}], "tools": [
        {"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]", "unsupported_value"),
    ({"model": "dmr", "messages": [{"role": "user", "content": "hi"}], "container": "c1"}, "container",
     "unsupported_parameter"),
    ({"model": "dmr", "messages": [{"role": "system", "content": "hi"}]}, "messages[0].role", "invalid_value"),
    ({"model": "dmr", "messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
     "messages[0].content[0]", "unsupported_value"),
    ({"model": "dmr", "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "file", "file_id": "f"}}]}]}, "messages[0].content[0].source",
     "unsupported_value"),
    ({"model": "dmr", "messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": "tool"}},
     "tool_choice", "unsupported_value"),
    ({"model": "dmr", "messages": [{"role": "user", "content": "hi"}], "system": [{"type": "image"}]}, "system",
     "invalid_type"),
])
def test_a_request_the_proxy_cannot_translate_is_a_400_in_anthropics_shape(fault_server, body, param, code):
    fault_server.script(Reply.openai("never sent"))
    with TestClient(create_app(make_router(fault_server.url + "/v1", layer3_enabled=False))) as client:
        answer = client.post("/v1/messages", json=body)
    assert answer.status_code == 400, answer.text
    data = answer.json()
    assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
    assert (data["error"]["param"], data["error"]["code"]) == (param, code)
    assert fault_server.count == 0


def test_the_request_is_translated_field_by_field():
    model, chat, messages, stream = messages_request({
        "model": "dmr", "max_tokens": 300, "top_p": 0.5, "top_k": 40, "stop_sequences": ["END"],
        "metadata": {"user_id": "u1"}, "thinking": {"type": "enabled", "budget_tokens": 2000},
        "system": [{"type": "text", "text": "Be exact.", "cache_control": {"type": "ephemeral"}}],
        "tool_choice": {"type": "tool", "name": "f"},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Count the cats."},
                                         {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                      "data": "AA"}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"},
                                              {"type": "tool_use", "id": "t1", "name": "f", "input": {"n": 1}},
                                              {"type": "tool_use", "id": "t2", "name": "g", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"},
                                         {"type": "tool_result", "tool_use_id": "t2", "content": "boom",
                                          "is_error": True}]}]}, ALIASES)
    assert (model, stream) == ("dmr", False) and messages is chat["messages"]
    assert chat == {"model": "dmr", "max_tokens": 300, "top_p": 0.5, "stop": ["END"], "user": "u1",
                    "tool_choice": {"type": "function", "function": {"name": "f"}}, "messages": [
        {"role": "system", "content": "Be exact."},
        {"role": "user", "content": [{"type": "text", "text": "Count the cats."},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"n": 1}'}},
            {"id": "t2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "ok"},
        {"role": "tool", "tool_call_id": "t2", "content": "Error: boom"}]}


def test_count_tokens_estimates_the_input_without_calling_a_model(fault_server):
    from dmr.tokens import count_tokens

    fault_server.script(Reply.openai("never sent"))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    question = [{"role": "user", "content": "What's the weather in Paris?"}]
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        plain = client.messages.count_tokens(model="dmr", messages=question)
        with_all = client.messages.count_tokens(model="dmr", messages=question, system="Be brief.", tools=[WEATHER])
        with pytest.raises(anthropic.BadRequestError) as refused:
            client.messages.count_tokens(model="dmr", messages=[{"role": "robot", "content": "hi"}])
    assert plain.input_tokens == 4 + count_tokens(question[0]["content"])
    tools = json.dumps([{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER["input_schema"],
                                                          "description": WEATHER["description"]}}])
    assert with_all.input_tokens == plain.input_tokens + 4 + count_tokens("Be brief.") + count_tokens(tools)
    assert refused.value.body["error"]["param"] == "messages[0].role"
    assert fault_server.count == 0
