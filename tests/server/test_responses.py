"""POST /v1/responses: OpenAI's Responses API, routed like a chat completion and answered from the
provider's chat completion. The official openai SDK is the client; the real local LLM answers text.
The local model makes no tool calls, so the function-calling turns of an agent loop come from the
fault injector's scripted chat answers (tests/fault_server.py), at the HTTP level."""

from __future__ import annotations

import json

import openai
import pytest
from fault_server import Reply
from proxy_support import (EASY, HARD, MODELS, LiveServer, TestClient, chat_chunk, make_router, refused_untranslated,
                           sse, sse_data, tool_call_answer, tool_call_stream)

from dmr.server import create_app
from dmr.server.responses import responses_request

ALIASES = ("dmr", "dmr-auto", "auto")
WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
SHORT = "What is 2+2? Answer with a number only."  # greedy SmolLM2 stops by itself after a few tokens


def sdk(live: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key="not-checked", max_retries=0)



@pytest.mark.service("llm")
def test_a_response_is_routed_and_answered_from_the_chat_completion(router, recorder):
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        easy = client.responses.with_raw_response.create(model="dmr", input=EASY, instructions="Be brief.",
                                                         max_output_tokens=48, temperature=0)
        hard = client.responses.create(model="dmr", input=[{"role": "user", "content": HARD}],
                                       max_output_tokens=4)
    assert recorder.models == [MODELS["low"], MODELS["high"]]
    assert easy.headers["x-dmr-tier"] == "low" and easy.headers["x-dmr-decision-id"]
    assert recorder.bodies[0] == {"model": "local-small", "max_tokens": 48, "temperature": 0, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": EASY}]}
    answer = easy.parse()
    assert answer.object == "response" and answer.id.startswith("resp_") and answer.status == "completed"
    assert answer.output_text.strip() and answer.output[0].role == "assistant"
    assert answer.usage.output_tokens > 0 and answer.usage.total_tokens == (
        answer.usage.input_tokens + answer.usage.output_tokens)
    assert answer.instructions == "Be brief." and answer.store is False
    # Cut at max_output_tokens: incomplete, as OpenAI reports it.
    assert hard.status == "incomplete" and hard.incomplete_details.reason == "max_output_tokens"
    assert hard.usage.output_tokens == 4


@pytest.mark.service("llm")
def test_a_streamed_response_tells_the_answer_as_response_events(router, recorder):
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        with client.responses.stream(model="dmr", input=SHORT, max_output_tokens=48, temperature=0) as stream:
            events = list(stream)
            final = stream.get_final_response()
        cut = list(client.responses.create(model="dmr", input=HARD, max_output_tokens=5, stream=True))
    assert recorder.bodies[0]["stream"] is True and recorder.bodies[0]["stream_options"] == {"include_usage": True}
    kinds = [e.type for e in events]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert len(deltas) >= 2 and set(kinds[4:-4]) == {"response.output_text.delta"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.status == "completed" and final.output_text == "".join(deltas) and "4" in final.output_text
    assert final.usage.output_tokens > 0
    assert cut[-1].type == "response.incomplete" and cut[-1].response.incomplete_details.reason == "max_output_tokens"


@pytest.mark.service("llm")
def test_responses_are_charged_to_the_budget_like_chat_completions(router, recorder):
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        plain = client.responses.create(model="dmr", input=HARD, max_output_tokens=6)
        after_plain = router.budget.spent_usd
        streamed = list(client.responses.create(model="dmr", input=EASY, max_output_tokens=6, stream=True))
    plain_cost = (plain.usage.input_tokens * 10.0 + plain.usage.output_tokens * 20.0) / 1e6
    assert after_plain == pytest.approx(plain_cost)
    usage = streamed[-1].response.usage
    assert router.budget.spent_usd == pytest.approx(plain_cost + (usage.input_tokens * 0.1
                                                                  + usage.output_tokens * 0.2) / 1e6)


@pytest.mark.service("llm")
def test_a_short_follow_up_in_the_input_keeps_the_tier_of_the_request_it_follows(router, recorder):
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        client.responses.create(model="dmr", max_output_tokens=2, input=[
            {"role": "user", "content": [{"type": "input_text", "text": HARD}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Use Raft."}]},
            {"role": "user", "content": "and in Go?"}])
        client.responses.create(model="dmr", max_output_tokens=2, input=[{"role": "user", "content": "and in Go?"}])
    assert recorder.models == [MODELS["high"], MODELS["low"]]
    assert recorder.bodies[0]["messages"][1] == {"role": "assistant", "content": "Use Raft."}


def test_a_function_call_and_its_output_go_round_the_agent_loop(fault_server):
    answer, call = tool_call_answer(None)
    fault_server.script(Reply.json(answer), Reply.openai("It is 18 °C in Paris."))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        first = client.responses.create(model="dmr", input="What's the weather in Paris?", tools=[WEATHER],
                                        tool_choice={"type": "function", "name": "get_weather"})
        [item] = first.output
        second = client.responses.create(model="dmr", tools=[WEATHER], input=[
            {"role": "user", "content": "What's the weather in Paris?"}, *[o.model_dump() for o in first.output],
            {"type": "function_call_output", "call_id": item.call_id, "output": '{"celsius": 18}'}])
    assert (item.type, item.call_id, item.name, json.loads(item.arguments)) == (
        "function_call", "call_7", "get_weather", {"city": "Paris"})
    assert first.status == "completed" and first.usage.input_tokens == 30
    sent = [r["body"] for r in fault_server.requests]
    assert sent[0]["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather in a city", "parameters": WEATHER["parameters"]}}]
    assert sent[0]["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent[1]["messages"][1:] == [{**call, "tool_calls": call["tool_calls"]},
                                       {"role": "tool", "tool_call_id": "call_7", "content": '{"celsius": 18}'}]
    assert second.output_text == "It is 18 °C in Paris."


def test_a_streamed_function_call_becomes_argument_events(fault_server):
    fault_server.script(Reply(200, tool_call_stream(), {"Content-Type": "text/event-stream"}))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        with client.responses.stream(model="dmr", input="Weather in Oslo?", tools=[WEATHER]) as stream:
            events = list(stream)
            final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", "response.output_text.delta", "response.output_text.done",
                     "response.content_part.done", "response.output_item.done", "response.output_item.added",
                     "response.function_call_arguments.delta", "response.function_call_arguments.delta",
                     "response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    assert [o.type for o in final.output] == ["message", "function_call"]
    assert final.output[1].arguments == '{"city":"Oslo"}' and final.output[1].call_id == "call_1"
    assert [e.output_index for e in events if e.type.startswith("response.function_call")] == [1, 1, 1]
    assert final.usage.total_tokens == 19


def test_a_reasoning_models_reasoning_comes_back_as_a_reasoning_item_when_a_summary_is_asked_for(fault_server):
    # vLLM and DeepSeek put a reasoning model's reasoning in reasoning_content, OpenRouter in reasoning.
    answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
              "usage": {"prompt_tokens": 9, "completion_tokens": 14, "total_tokens": 23,
                        "completion_tokens_details": {"reasoning_tokens": 11}},
              "choices": [{"index": 0, "finish_reason": "stop", "message": {
                  "role": "assistant", "content": "17.", "reasoning_content": "17 is prime: no divisor up to 4."}}]}
    fault_server.script(Reply.json(answer))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        asked = client.responses.create(model="dmr", input="Is 17 prime?", reasoning={"summary": "auto"})
        effort_only = client.responses.create(model="dmr", input="Is 17 prime?", reasoning={"effort": "low"})
        plain = client.responses.create(model="dmr", input="Is 17 prime?")
    reasoning, message = asked.output
    assert (reasoning.type, message.type) == ("reasoning", "message") and reasoning.id.startswith("rs_")
    assert [(s.type, s.text) for s in reasoning.summary] == [("summary_text", "17 is prime: no divisor up to 4.")]
    assert asked.output_text == "17." and asked.usage.output_tokens_details.reasoning_tokens == 11
    for unasked in (effort_only, plain):
        assert [o.type for o in unasked.output] == ["message"] and unasked.output_text == "17."
    sent = [r["body"] for r in fault_server.requests]
    assert "reasoning_effort" not in sent[0] and sent[1]["reasoning_effort"] == "low"


def test_a_streamed_reasoning_summary_is_its_own_item_closed_before_the_message_opens(fault_server):
    streamed = sse(chat_chunk({"role": "assistant", "reasoning": "Check 2, 3"}), chat_chunk({"reasoning": ", 4."}),
                   chat_chunk({"content": "Prime."}, "stop", usage=(9, 6)))
    fault_server.script(Reply(200, streamed, {"Content-Type": "text/event-stream"}))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    with LiveServer(create_app(router)) as live, sdk(live) as client:
        with client.responses.stream(model="dmr", input="Is 17 prime?", reasoning={"summary": "detailed"}) as stream:
            events = list(stream)
            final = stream.get_final_response()
        unasked = list(client.responses.create(model="dmr", input="Is 17 prime?", stream=True))
    assert [(e.type, getattr(e, "output_index", None)) for e in events] == [
        ("response.created", None), ("response.in_progress", None), ("response.output_item.added", 0),
        ("response.reasoning_summary_part.added", 0), ("response.reasoning_summary_text.delta", 0),
        ("response.reasoning_summary_text.delta", 0), ("response.reasoning_summary_text.done", 0),
        ("response.reasoning_summary_part.done", 0), ("response.output_item.done", 0),
        ("response.output_item.added", 1), ("response.content_part.added", 1), ("response.output_text.delta", 1),
        ("response.output_text.done", 1), ("response.content_part.done", 1), ("response.output_item.done", 1),
        ("response.completed", None)]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    summary_events = [e for e in events if e.type.startswith("response.reasoning_summary")]
    assert {(e.item_id, e.summary_index) for e in summary_events} == {(final.output[0].id, 0)}
    assert [e.delta for e in summary_events if e.type.endswith(".delta")] == ["Check 2, 3", ", 4."]
    assert events[3].part.text == events[10].part.text == ""  # parts open empty, the deltas fill them
    assert events[6].text == events[7].part.text == events[8].item.summary[0].text == "Check 2, 3, 4."
    assert [o.type for o in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == "Check 2, 3, 4." and final.output_text == "Prime."
    assert [e.type for e in unasked if "reasoning" in e.type or e.type == "response.output_item.added"] == [
        "response.output_item.added"]
    assert [o.type for o in unasked[-1].response.output] == ["message"]


def test_a_stream_that_breaks_off_ends_with_an_error_event_and_a_failed_response(fault_server):
    body = sse(chat_chunk({"content": "Half an ans"}))[:-14]
    fault_server.script(Reply(200, body, {"Content-Type": "text/event-stream"}, declared_length=len(body) + 500))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        raw = client.post("/v1/responses", json={"model": "dmr", "input": EASY, "stream": True})
    events = sse_data(raw.text)
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/event-stream")
    assert [e["type"] for e in events][-3:] == ["response.output_text.delta", "error", "response.failed"]
    assert events[-2]["code"] == "upstream_unreachable" and "could not be reached" in events[-2]["message"]
    assert events[-1]["response"]["status"] == "failed" and events[-1]["response"]["output"][0]["content"][0][
        "text"] == "Half an ans"


def test_an_error_inside_the_provider_stream_fails_the_response(fault_server):
    fault_server.script(Reply(200, sse(chat_chunk({"content": "Hel"}), {"error": {"message": "model overloaded",
                                                                                "code": "overloaded"}}),
                              {"Content-Type": "text/event-stream"}))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        events = sse_data(client.post("/v1/responses", json={"model": "dmr", "input": EASY, "stream": True}).text)
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert (events[-2]["code"], events[-2]["message"]) == ("overloaded", "model overloaded")
    assert "response.completed" not in [e["type"] for e in events]


def test_a_provider_error_keeps_its_status_and_an_answer_without_choices_is_a_502(fault_server):
    fault_server.script(Reply.error(429, {"Retry-After": "3"}), Reply.json({"id": "x", "object": "chat.completion"}))
    router = make_router(fault_server.url + "/v1", layer3_enabled=False)
    with TestClient(create_app(router)) as client:
        limited = client.post("/v1/responses", json={"model": "dmr", "input": EASY})
        empty = client.post("/v1/responses", json={"model": "dmr", "input": EASY})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert limited.json()["error"]["message"] == "injected 429"
    assert empty.status_code == 502 and empty.json()["error"]["code"] == "bad_upstream_answer"


@pytest.mark.parametrize("body, param, code", [
    ({"model": "dmr"}, "input", "missing_required_parameter"),
    ({"model": "dmr", "input": []}, "input", "invalid_value"),
    ({"input": "hi"}, "model", "missing_required_parameter"),
    ({"model": "dmr", "input": "hi", "previous_response_id": "resp_1"}, "previous_response_id",
     "unsupported_parameter"),
    ({"model": "dmr", "input": "hi", "conversation": "conv_1"}, "conversation", "unsupported_parameter"),
    ({"model": "dmr", "input": "hi", "background": True}, "background", "unsupported_parameter"),
    ({"model": "dmr", "input": "hi", "tools": [{"type": "web_search"}]}, "tools[0]", "unsupported_value"),
    ({"model": "dmr", "input": "hi", "frobnicate": 1}, "frobnicate", "unknown_parameter"),
    ({"model": "dmr", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]", "unsupported_parameter"),
    ({"model": "dmr", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
     "input[0].content[0]", "unsupported_value"),
    ({"model": "dmr", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0]", "unsupported_value"),
    ({"model": "dmr", "input": [{"role": "robot", "content": "hi"}]}, "input[0].role", "invalid_value"),
    ({"model": "dmr", "input": [{"type": "function_call_output", "output": "1"}]}, "input[0].call_id",
     "invalid_type"),
    ({"model": "dmr", "input": "hi", "text": {"format": {"type": "grammar"}}}, "text.format", "unsupported_value"),
    ({"model": "dmr", "input": "hi", "tool_choice": {"type": "allowed_tools"}}, "tool_choice", "unsupported_value"),
    ({"model": "dmr", "input": "hi", "stream": "yes"}, "stream", "invalid_type"),
])
def test_a_request_the_proxy_cannot_translate_is_a_400_naming_the_parameter(fault_server, body, param, code):
    error = refused_untranslated(fault_server, "/v1/responses", body)
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")


def test_the_request_is_translated_field_by_field():
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    model, chat, messages, stream = responses_request({
        "model": "dmr", "instructions": "Answer in JSON.", "max_output_tokens": 300, "top_p": 0.5,
        "parallel_tool_calls": False, "reasoning": {"effort": "low"}, "user": "u1", "store": True,
        "metadata": {"k": "v"}, "include": ["reasoning.encrypted_content"], "truncation": "auto", "prompt": None,
        "text": {"format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True}},
        "input": [{"role": "developer", "content": "Be exact."},
                  {"role": "user", "content": [{"type": "input_text", "text": "Count the cats."},
                                               {"type": "input_image", "image_url": "data:image/png;base64,AA",
                                                "detail": "low"}]},
                  {"type": "reasoning", "id": "rs_1", "summary": []},
                  {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Two."}]},
                  {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                  {"type": "function_call", "call_id": "c2", "name": "g", "arguments": '{"a":1}'},
                  {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "ok"}]},
                  {"type": "function_call_output", "call_id": "c2", "output": "done"}]}, ALIASES)
    assert (model, stream) == ("dmr", False) and messages is chat["messages"]
    assert chat == {"model": "dmr", "max_tokens": 300, "top_p": 0.5, "parallel_tool_calls": False,
                    "reasoning_effort": "low", "user": "u1",
                    "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": schema,
                                                                               "strict": True}},
                    "messages": [
        {"role": "system", "content": "Answer in JSON."}, {"role": "system", "content": "Be exact."},
        {"role": "user", "content": [{"type": "text", "text": "Count the cats."},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA",
                                                                         "detail": "low"}}]},
        {"role": "assistant", "content": "Two.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"a":1}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        {"role": "tool", "tool_call_id": "c2", "content": "done"}]}
    _, chat, _, stream = responses_request({"model": "m", "input": "hi", "stream": True,
                                            "text": {"format": {"type": "json_object"}}}, ALIASES)
    assert stream and chat["stream_options"] == {"include_usage": True}
    assert chat["response_format"] == {"type": "json_object"}


def test_events_are_the_same_however_the_provider_splits_its_bytes_and_items_close_in_order():
    from dmr.server.response_events import ResponseEvents

    stream = sse(chat_chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{}"}}]}),
                  chat_chunk({"content": "Done"}), chat_chunk({"content": "."}, "stop", usage=(5, 3)))
    told = []
    for step in (len(stream), 1):  # all at once, then byte by byte
        events = ResponseEvents({"model": "dmr", "input": "x"}, "m")
        raw = events.start() + b"".join(events.feed(stream[i:i + step]) for i in range(0, len(stream), step))
        told.append([{k: v for k, v in e.items() if k not in ("item", "response", "item_id", "part")}
                     for e in sse_data((raw + events.finish()).decode())])
    assert told[0] == told[1]
    assert [(e["type"], e.get("output_index")) for e in told[0]] == [
        ("response.created", None), ("response.in_progress", None), ("response.output_item.added", 0),
        ("response.function_call_arguments.delta", 0), ("response.function_call_arguments.done", 0),
        ("response.output_item.done", 0), ("response.output_item.added", 1), ("response.content_part.added", 1),
        ("response.output_text.delta", 1), ("response.output_text.delta", 1), ("response.output_text.done", 1),
        ("response.content_part.done", 1), ("response.output_item.done", 1), ("response.completed", None)]
    assert told[0][-4]["text"] == "Done."
