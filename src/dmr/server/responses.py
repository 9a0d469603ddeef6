"""OpenAI's Responses API (``POST /v1/responses``) over chat completions.

Clients built on the Responses API (the OpenAI Agents SDK by default, ``client.responses.create``)
reach dmr like chat clients: the request is read into chat messages, routed like a chat completion
and sent to the chosen provider's ``/chat/completions``, so every provider the chat proxy reaches
serves it too; the answer comes back as a Response object, or as the Responses API's stream of
events (:mod:`dmr.server.response_events`).

What is translated: ``input`` (a string, or messages and their text and image parts,
``function_call`` and ``function_call_output`` items; ``reasoning`` items are dropped),
``instructions``, function ``tools`` and ``tool_choice``, ``text.format`` (JSON object or schema),
``max_output_tokens``, ``temperature``, ``top_p``, ``parallel_tool_calls``, ``reasoning.effort``,
``user`` and ``stream``. The proxy stores nothing, so what needs a stored response
(``previous_response_id``, ``conversation``, item references) is a 400 that says to send the whole
conversation, and so are OpenAI's built-in tools (web search, file search, …), which run on
OpenAI's servers only. Fields that only ask OpenAI to keep or annotate a response (``store``,
``metadata``, ``include``, ``truncation``, …) are accepted and have no effect.

When ``reasoning.summary`` asks for one (``auto``, ``concise`` or ``detailed``), the reasoning a
model returns beside its answer (:data:`dmr.server.chunks.REASONING_FIELDS`) comes back as a
``reasoning`` output item before the message, its text the item's one ``summary_text`` part: it is
the model's reasoning itself, not a summary of it. Without one no reasoning item is returned, where
OpenAI's reasoning models return one with an empty summary.
"""

from __future__ import annotations

import json
import time
from typing import Any

from dmr.server.chunks import REASONING_FIELDS
from dmr.server.errors import APIError
from dmr.server.usage import usage_of
from dmr.server.translated import chat_body, new_id, required_string

__all__ = ["finished", "response_object", "responses_request", "shell", "summary_wanted", "usage_object"]

# Accepted and dropped: they ask OpenAI to store, annotate or bill a response in ways that have no
# counterpart here, and change nothing in the answer.
_DROPPED = frozenset({"store", "metadata", "include", "truncation", "service_tier", "prompt_cache_key",
                      "prompt_cache_retention", "safety_identifier", "stream_options", "top_logprobs",
                      "max_tool_calls", "background"})
_TRANSLATED = frozenset({"model", "input", "instructions", "tools", "tool_choice", "text", "max_output_tokens",
                         "temperature", "top_p", "parallel_tool_calls", "reasoning", "user", "stream"})
_NEEDS_STORAGE = {"previous_response_id": "a stored earlier response", "conversation": "a stored conversation",
                  "prompt": "a prompt stored on OpenAI's dashboard"}
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text", "reasoning_text"})



def responses_request(body: dict[str, Any], aliases: tuple[str, ...]
                      ) -> tuple[str, dict[str, Any], list[dict[str, Any]], bool]:
    """``(model, chat body, messages, stream)`` of a Responses API request."""
    for field, what in _NEEDS_STORAGE.items():
        if body.get(field) is not None:
            raise APIError(400, f"'{field}' needs {what}, and this proxy stores none: send the whole "
                                "conversation in 'input' (with the earlier output items)", param=field,
                           code="unsupported_parameter")
    if body.get("background"):
        raise APIError(400, "'background' responses need stored state, which this proxy does not keep",
                       param="background", code="unsupported_parameter")
    unknown = sorted(k for k, v in body.items() if k not in _TRANSLATED | _DROPPED | set(_NEEDS_STORAGE)
                     and v is not None)
    if unknown:
        raise APIError(400, f"unknown parameter: '{unknown[0]}' (this proxy translates "
                            f"{', '.join(sorted(_TRANSLATED))})", param=unknown[0], code="unknown_parameter")
    if body.get("input") is None:
        raise APIError(400, "missing required parameter: 'input'", param="input", code="missing_required_parameter")
    messages = _messages(body["input"], body.get("instructions"))
    if not any(m["role"] != "system" for m in messages):
        raise APIError(400, "'input' holds no message to answer", param="input", code="invalid_value")
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    for ours, theirs in (("max_output_tokens", "max_tokens"), ("temperature", "temperature"), ("top_p", "top_p"),
                         ("parallel_tool_calls", "parallel_tool_calls"), ("user", "user")):
        if body.get(ours) is not None:
            chat[theirs] = body[ours]
    chat.update(_text_format(body.get("text")))
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
        chat["reasoning_effort"] = reasoning["effort"]
    if body.get("stream") is not None:
        chat["stream"] = body["stream"]
    return chat_body(chat, aliases)


def _messages(items: Any, instructions: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if instructions is not None:
        if not isinstance(instructions, str):
            raise APIError(400, "'instructions' must be a string", param="instructions", code="invalid_type")
        messages.append({"role": "system", "content": instructions})
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    if not isinstance(items, list):
        raise APIError(400, "'input' must be a string or an array of input items", param="input",
                       code="invalid_type")
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise APIError(400, f"{where} must be an object", param=where, code="invalid_type")
        kind = item.get("type", "message")
        if kind == "message":
            role = _ROLES.get(item.get("role"))  # type: ignore[arg-type]
            if role is None:
                raise APIError(400, f"{where}.role must be one of user, assistant, system, developer",
                               param=f"{where}.role", code="invalid_value")
            messages.append({"role": role, "content": _content(item.get("content"), where, role)})
        elif kind == "function_call":
            call = {"id": required_string(item, "call_id", where), "type": "function",
                    "function": {"name": required_string(item, "name", where), "arguments": item.get("arguments") or "{}"}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _joined_text(output, f"{where}.output")
            messages.append({"role": "tool", "tool_call_id": required_string(item, "call_id", where), "content": text})
        elif kind == "reasoning":
            continue  # the model's own reasoning of an earlier turn: chat completions take none
        elif kind == "item_reference":
            raise APIError(400, f"{where} refers to a stored item, and this proxy stores none: send the item "
                                "itself", param=where, code="unsupported_parameter")
        else:
            raise APIError(400, f"{where} is a {kind!r} item, which this proxy cannot translate to chat "
                                "completions (it takes messages, function_call, function_call_output and "
                                "reasoning items)", param=f"{where}.type", code="unsupported_value")
    return messages



def _content(content: Any, where: str, role: str) -> Any:
    """A message's content for chat completions: text as a string, images as image_url parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise APIError(400, f"{where}.content must be a string or an array of content parts",
                       param=f"{where}.content", code="invalid_type")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        here = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _TEXT_PARTS or kind == "refusal":
            text = part.get("text" if kind != "refusal" else "refusal")
            if not isinstance(text, str):
                raise APIError(400, f"{here} has no text", param=here, code="invalid_type")
            parts.append({"type": "text", "text": text})
        elif kind == "input_image" and role == "user":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise APIError(400, f"{here}: only images given by 'image_url' (a URL or a data: URL) are "
                                    "translated; a 'file_id' needs OpenAI's file storage", param=here,
                               code="unsupported_value")
            image = {"url": url, **({"detail": part["detail"]} if part.get("detail") else {})}
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise APIError(400, f"{here} is a {kind!r} part, which this proxy cannot translate (it takes text "
                                "parts, and image_url images in user messages)", param=here,
                           code="unsupported_value")
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _joined_text(parts: Any, where: str) -> str:
    if not isinstance(parts, list):
        raise APIError(400, f"{where} must be a string or an array of text parts", param=where, code="invalid_type")
    texts = [p.get("text") for p in parts if isinstance(p, dict) and p.get("type") in _TEXT_PARTS]
    if len(texts) != len(parts) or not all(isinstance(t, str) for t in texts):
        raise APIError(400, f"{where}: only text parts are translated", param=where, code="unsupported_value")
    return "\n".join(texts)  # type: ignore[arg-type]


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise APIError(400, "'tools' must be an array", param="tools", code="invalid_type")
    out = []
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            raise APIError(400, f"tools[{i}] is a {kind!r} tool: OpenAI's built-in tools run on its own servers, "
                                "so this proxy takes function tools only", param=f"tools[{i}]",
                           code="unsupported_value")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise APIError(400, f"tools[{i}].name must be a non-empty string", param=f"tools[{i}].name",
                           code="invalid_type")
        function = {"name": name, "parameters": tool.get("parameters") or {"type": "object", "properties": {}}}
        for field in ("description", "strict"):
            if tool.get(field) is not None:
                function[field] = tool[field]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise APIError(400, "'tool_choice' must be 'auto', 'none', 'required' or {'type': 'function', 'name': ...}",
                   param="tool_choice", code="unsupported_value")


def _text_format(text: Any) -> dict[str, Any]:
    fmt = text.get("format") if isinstance(text, dict) else None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in (None, "text"):
        return {}
    if kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    if kind == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None}
        return {"response_format": {"type": "json_schema", "json_schema": schema}}
    raise APIError(400, f"text.format of type {kind!r} is not supported (text, json_object, json_schema)",
                   param="text.format", code="unsupported_value")


def usage_object(usage: Any) -> dict[str, Any] | None:
    """A chat completion's ``usage`` in the Responses API's shape."""
    tokens = usage_of({"usage": usage})
    if tokens is None:
        return None
    prompt, completion = tokens
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + completion}


def summary_wanted(request: dict[str, Any]) -> bool:
    """Whether the client asked for the model's reasoning (``reasoning.summary``, or the deprecated
    ``reasoning.generate_summary``)."""
    reasoning = request.get("reasoning")
    return isinstance(reasoning, dict) and any(reasoning.get(k) in ("auto", "concise", "detailed")
                                               for k in ("summary", "generate_summary"))


def shell(request: dict[str, Any], response_id: str, model: str, created_at: int | None = None) -> dict[str, Any]:
    """A Response object without output: the request's settings echoed, as OpenAI does."""
    text = request.get("text") if isinstance(request.get("text"), dict) else {"format": {"type": "text"}}
    return {"id": response_id, "object": "response", "created_at": created_at or int(time.time()),
            "status": "in_progress", "error": None, "incomplete_details": None, "model": model,
            "instructions": request.get("instructions"), "output": [], "usage": None,
            "tools": request.get("tools") or [], "tool_choice": request.get("tool_choice") or "auto",
            "parallel_tool_calls": request.get("parallel_tool_calls", True) is not False,
            "temperature": request.get("temperature"), "top_p": request.get("top_p"),
            "max_output_tokens": request.get("max_output_tokens"), "text": text,
            "reasoning": request.get("reasoning"), "metadata": request.get("metadata") or {},
            "previous_response_id": None, "store": False, "user": request.get("user")}


def finished(response: dict[str, Any], finish_reason: Any) -> dict[str, Any]:
    """``response`` with its status from the chat completion's ``finish_reason``."""
    reason = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(finish_reason)
    if reason is None:
        return {**response, "status": "completed"}
    return {**response, "status": "incomplete", "incomplete_details": {"reason": reason}}


def response_object(answer: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """The Response object for a chat completion ``answer`` to ``request``; ValueError when the
    answer holds no choice."""
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("the answer has no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    output: list[dict[str, Any]] = []
    thought = next((message[f] for f in REASONING_FIELDS if isinstance(message.get(f), str) and message[f]), None)
    if thought is not None and summary_wanted(request):
        output.append({"type": "reasoning", "id": new_id("rs"),
                       "summary": [{"type": "summary_text", "text": thought}]})
    content: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, list):  # a few servers answer in parts
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if isinstance(text, str) and text:
        content.append({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        content.append({"type": "refusal", "refusal": message["refusal"]})
    if content:
        output.append({"type": "message", "id": new_id("msg"), "status": "completed", "role": "assistant",
                       "content": content})
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        output.append({"type": "function_call", "id": new_id("fc"), "call_id": call.get("id") or new_id("call"),
                       "name": function.get("name") or "", "status": "completed",
                       "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments or {})})
    created = answer.get("created") if isinstance(answer.get("created"), int) else None
    response = shell(request, new_id("resp"), str(answer.get("model") or request.get("model")), created)
    response = finished(response, choice.get("finish_reason"))
    response["output"] = output
    response["usage"] = usage_object(answer.get("usage"))
    return response
