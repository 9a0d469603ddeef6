"""Anthropic's Messages API (``POST /v1/messages``) over chat completions.

Clients that speak Anthropic's API (the ``anthropic`` SDKs, Claude Code with ``ANTHROPIC_BASE_URL``
pointed at the proxy, frameworks built on them) reach dmr like chat clients: the request is read
into chat messages, routed like a chat completion and sent to the chosen provider's
``/chat/completions`` (Anthropic's own models too, at Anthropic's OpenAI-compatible endpoint), and
the answer comes back as an Anthropic message, or as Anthropic's stream of events
(:mod:`dmr.server.anthropic_events`).

What is translated: ``messages`` with text, image (base64 or URL), ``tool_use`` and ``tool_result``
blocks (``thinking`` blocks are dropped), ``system`` (text or text blocks), custom ``tools`` and
``tool_choice`` (``disable_parallel_tool_use`` too), ``max_tokens``, ``stop_sequences``,
``temperature``, ``top_p``, ``metadata.user_id`` and ``stream``. ``top_k``, ``service_tier``,
``cache_control`` and the like are accepted and change nothing. ``thinking`` is not sent on (chat
completions have no such budget), but with ``{"type": "enabled"}`` the reasoning a model returns
beside its answer (``reasoning_content`` or ``reasoning``) comes back as a ``thinking`` block
before the text (with an empty ``signature``: only Anthropic can sign it); without it, as from
Anthropic, no thinking is returned. Anthropic's
server tools (web search, code execution, …), documents, containers and MCP servers are a 400.
"""

from __future__ import annotations

import json
from typing import Any

from dmr.server.chunks import REASONING_FIELDS
from dmr.server.errors import APIError
from dmr.server.translated import chat_body, new_id, required_string
from dmr.server.usage import usage_of

__all__ = ["input_tokens", "message_object", "messages_request", "stop_reason", "thinking_wanted", "usage_object"]

_DROPPED = frozenset({"top_k", "thinking", "service_tier", "context_management", "output_config"})
_TRANSLATED = frozenset({"model", "messages", "system", "tools", "tool_choice", "max_tokens", "stop_sequences",
                         "temperature", "top_p", "metadata", "stream"})
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                 "content_filter": "refusal"}
_DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})



def messages_request(body: dict[str, Any], aliases: tuple[str, ...]
                     ) -> tuple[str, dict[str, Any], list[dict[str, Any]], bool]:
    """``(model, chat body, messages, stream)`` of a Messages API request."""
    unknown = sorted(k for k, v in body.items() if k not in _TRANSLATED | _DROPPED and v is not None)
    if unknown:
        raise APIError(400, f"unsupported parameter: '{unknown[0]}' (this proxy translates "
                            f"{', '.join(sorted(_TRANSLATED))})", param=unknown[0], code="unsupported_parameter")
    given = body.get("messages")
    if not isinstance(given, list) or not given:
        raise APIError(400, "'messages' must be a non-empty array of messages", param="messages",
                       code="missing_required_parameter" if given is None else "invalid_type")
    messages = _system(body.get("system"))
    for i, message in enumerate(given):
        messages += _message(message, f"messages[{i}]")
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
    choice = body.get("tool_choice")
    if choice is not None:
        chat.update(_tool_choice(choice))
    for ours, theirs in (("max_tokens", "max_tokens"), ("stop_sequences", "stop"), ("temperature", "temperature"),
                         ("top_p", "top_p")):
        if body.get(ours) is not None:
            chat[theirs] = body[ours]
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    if body.get("stream") is not None:
        chat["stream"] = body["stream"]
    return chat_body(chat, aliases)


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}] if system else []
    if isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text"
                                        and isinstance(b.get("text"), str) for b in system):
        text = "\n".join(b["text"] for b in system)
        return [{"role": "system", "content": text}] if text else []
    raise APIError(400, "'system' must be a string or an array of text blocks", param="system", code="invalid_type")


def _message(message: Any, where: str) -> list[dict[str, Any]]:
    """One Anthropic message as chat messages: tool results become tool messages (first, so that
    they follow the assistant's tool calls), the rest one user or assistant message."""
    role = message.get("role") if isinstance(message, dict) else None
    if role not in ("user", "assistant"):
        raise APIError(400, f"{where}.role must be 'user' or 'assistant'", param=f"{where}.role",
                       code="invalid_value")
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise APIError(400, f"{where}.content must be a string or an array of content blocks",
                       param=f"{where}.content", code="invalid_type")
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        here = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image" and role == "user":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block.get("source"), here)}})
        elif kind == "tool_use" and role == "assistant":
            calls.append({"id": required_string(block, "id", here), "type": "function", "function": {
                "name": required_string(block, "name", here), "arguments": json.dumps(block.get("input") or {})}})
        elif kind == "tool_result" and role == "user":
            text = _result_text(block.get("content"), here)
            results.append({"role": "tool", "tool_call_id": required_string(block, "tool_use_id", here),
                            "content": f"Error: {text}" if block.get("is_error") else text})
        elif kind in _DROPPED_BLOCKS:
            continue
        else:
            raise APIError(400, f"{here} is a {kind!r} block in a {role} message, which this proxy cannot translate "
                                "(it takes text, image, tool_use and tool_result blocks)", param=here,
                           code="unsupported_value")
    out = list(results)
    if parts or calls:
        text_only = all(p["type"] == "text" for p in parts)
        body: Any = "\n".join(p["text"] for p in parts) if text_only else parts
        chat = {"role": role, "content": body if parts else None}
        if calls:
            chat["tool_calls"] = calls
        out.append(chat)
    return out



def _image_url(source: Any, where: str) -> str:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source.get("data"), str) and isinstance(source.get("media_type"), str):
        return f"data:{source['media_type']};base64,{source['data']}"
    if kind == "url" and isinstance(source.get("url"), str):
        return source["url"]
    raise APIError(400, f"{where}.source: only base64 and url images are translated (a file id needs "
                        "Anthropic's file storage)", param=f"{where}.source", code="unsupported_value")


def _result_text(content: Any, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        texts = [b.get("text") for b in content if isinstance(b, dict) and b.get("type") == "text"]
        if all(isinstance(t, str) for t in texts):
            skipped = len(content) - len(texts)
            return "\n".join([*texts, *(["[image]"] * skipped)])  # type: ignore[list-item]
    raise APIError(400, f"{where}.content must be a string or an array of blocks", param=f"{where}.content",
                   code="invalid_type")


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise APIError(400, "'tools' must be an array", param="tools", code="invalid_type")
    out = []
    for i, tool in enumerate(tools):
        kind = tool.get("type", "custom") if isinstance(tool, dict) else None
        name = tool.get("name") if isinstance(tool, dict) else None
        if kind not in ("custom", None) or "input_schema" not in tool:
            raise APIError(400, f"tools[{i}] is a {kind!r} tool: Anthropic's server tools run on its own servers, "
                                "so this proxy takes custom tools (name, description, input_schema) only",
                           param=f"tools[{i}]", code="unsupported_value")
        if not isinstance(name, str) or not name:
            raise APIError(400, f"tools[{i}].name must be a non-empty string", param=f"tools[{i}].name",
                           code="invalid_type")
        function = {"name": name, "parameters": tool["input_schema"]}
        if tool.get("description") is not None:
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> dict[str, Any]:
    kind = choice.get("type") if isinstance(choice, dict) else None
    mapped = {"auto": "auto", "any": "required", "none": "none"}.get(kind)  # type: ignore[arg-type]
    if kind == "tool" and isinstance(choice.get("name"), str):
        mapped = {"type": "function", "function": {"name": choice["name"]}}
    if mapped is None:
        raise APIError(400, "'tool_choice' must be {'type': 'auto' | 'any' | 'none'} or {'type': 'tool', 'name': ...}",
                       param="tool_choice", code="unsupported_value")
    out: dict[str, Any] = {"tool_choice": mapped}
    if choice.get("disable_parallel_tool_use") and kind != "none":
        out["parallel_tool_calls"] = False
    return out


def stop_reason(finish_reason: Any) -> str:
    return _STOP_REASONS.get(finish_reason, "end_turn")


def usage_object(usage: Any) -> dict[str, int]:
    """A chat completion's ``usage`` in Anthropic's shape (zeros when it reported none)."""
    prompt, completion = usage_of({"usage": usage}) or (0, 0)
    return {"input_tokens": prompt, "output_tokens": completion}


def arguments_of(arguments: Any) -> Any:
    """A tool call's arguments as the JSON value Anthropic's ``input`` holds; text that is not JSON
    is kept under ``"arguments"`` rather than lost."""
    if not isinstance(arguments, str):
        return arguments if isinstance(arguments, dict) else {}
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except (ValueError, RecursionError):
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def thinking_wanted(request: dict[str, Any]) -> bool:
    """Whether the client asked for the model's thinking (``thinking: {"type": "enabled"}``)."""
    thinking = request.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def message_object(answer: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """The Anthropic message for a chat completion ``answer``; ValueError when it holds no choice."""
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("the answer has no choices")
    message = choices[0].get("message") if isinstance(choices[0].get("message"), dict) else {}
    content: list[dict[str, Any]] = []
    if thinking_wanted(request):
        thought = next((message[f] for f in REASONING_FIELDS if isinstance(message.get(f), str) and message[f]), None)
        if thought is not None:
            content.append({"type": "thinking", "thinking": thought, "signature": ""})
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    for piece in (text, message.get("refusal")):
        if isinstance(piece, str) and piece:
            content.append({"type": "text", "text": piece})
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            content.append({"type": "tool_use", "id": call.get("id") or new_id("toolu"),
                            "name": function.get("name") or "", "input": arguments_of(function.get("arguments"))})
    return {"id": new_id("msg"), "type": "message", "role": "assistant",
            "model": str(answer.get("model") or request.get("model")), "content": content,
            "stop_reason": stop_reason(choices[0].get("finish_reason")), "stop_sequence": None,
            "usage": usage_object(answer.get("usage"))}


# Tokens each message adds around its content (role markers), as chat templates do.
_PER_MESSAGE = 4


def input_tokens(chat: dict[str, Any]) -> int:
    """``POST /v1/messages/count_tokens``: an estimate of the input tokens of a translated request
    by dmr's token counter (:func:`dmr.tokens.count_tokens`; the provider, and so its tokenizer, is
    known only once the request is routed). Text, tool calls and tool definitions count; an image
    part counts as its URL's text would not, so it adds nothing."""
    from dmr.tokens import count_tokens

    total = 0
    for message in chat["messages"]:
        total += _PER_MESSAGE
        content = message.get("content")
        texts = [content] if isinstance(content, str) else [
            p["text"] for p in content or [] if isinstance(p, dict) and p.get("type") == "text"]
        texts += [json.dumps(call["function"]) for call in message.get("tool_calls") or []]
        total += sum(count_tokens(t) for t in texts)
    if chat.get("tools"):
        total += count_tokens(json.dumps(chat["tools"]))
    return total
