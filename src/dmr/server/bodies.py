"""Reading request bodies: the bytes, the JSON and the fields each endpoint needs, each problem a
400 in OpenAI's shape naming the bad parameter (never a 500).

Decoding a body is CPU work in proportion to its size (32 MiB by default), so it runs in a worker
thread, not on the event loop that keeps every other request and stream moving; so do the
endpoints' readers below (the app calls them through ``run_in_threadpool``).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from dmr.errors import InputError
from dmr.integrations.needs import openai_needs
from dmr.integrations.target import history_of, task_of
from dmr.layers.base import valid_unicode
from dmr.server.errors import APIError
from dmr.store.outcomes import finite_score
from dmr.types import ModelTier

__all__ = ["chat_request", "classify_needs", "classify_request", "conversation", "embeddings_request", "needs_of",
           "outcome_request", "read_json"]

def _no_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity, which no other JSON parser (nor OpenAI) does.
    raise ValueError(f"{name} is not valid JSON")


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, read up to ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"the request body is larger than {limit:,} bytes", code="body_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise APIError(413, f"the request body is larger than {limit:,} bytes", code="body_too_large")
        chunks.append(chunk)
    return await run_in_threadpool(_parse, b"".join(chunks))


def _parse(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise APIError(400, "the request body is empty; send a JSON object", code="invalid_json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise APIError(400, f"the request body is not UTF-8 (byte {exc.start})", code="invalid_encoding") from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise APIError(400, f"the request body must be a JSON object, not {type(data).__name__}",
                       code="invalid_json")
    return data


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if messages is None:
        raise APIError(400, "missing required parameter: 'messages'", param="messages",
                       code="missing_required_parameter")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "'messages' must be a non-empty array of message objects", param="messages",
                       code="invalid_type")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise APIError(400, f"messages[{i}] must be an object with 'role' and 'content'",
                           param=f"messages[{i}]", code="invalid_type")
    return messages


def conversation(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, str]] | None]:
    """What the router classifies in a chat: the latest user turn, and the turns before it as its
    history (with their roles, so that the Router's PII scan, like the proxy's, leaves the model's
    own turns out)."""
    try:
        return task_of(messages), history_of(messages) or None
    except InputError:
        raise APIError(400, "the messages hold no text to route: every message's content is empty",
                       param="messages", code="invalid_input") from None


def chat_request(body: dict[str, Any], aliases: tuple[str, ...]) -> tuple[str, list[dict[str, Any]], bool]:
    """``(model, messages, stream)`` of a chat completion request."""
    model = body.get("model")
    routes = ", ".join(repr(a) for a in aliases)
    if model is None:
        raise APIError(400, f"missing required parameter: 'model' (use {routes} to let dmr route)", param="model",
                       code="missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise APIError(400, f"'model' must be a model name (or {routes} to let dmr route)", param="model",
                       code="invalid_type")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise APIError(400, "'stream' must be true or false", param="stream", code="invalid_type")
    return model, _messages(body), stream


def needs_of(chat: dict[str, Any]) -> list[str]:
    """What a chat completion request needs of its model (``Router.classify(needs=...)``): images
    in a message, ``vision``; tools or functions, ``function_calling``; a JSON schema response
    format, ``json_schema`` — read as the integrations read OpenAI-style calls."""
    return openai_needs(chat.get("messages"), chat)


def embeddings_request(body: dict[str, Any]) -> tuple[str, list[str]]:
    """``(model, texts)`` of an embeddings request: the texts of ``input`` (a string, an array of
    strings, or token arrays, which hold none) for the PII block; the body itself goes on as sent."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise APIError(400, "'model' must be the name of an embedding model of the embeddings provider",
                       param="model", code="missing_required_parameter" if model is None else "invalid_type")
    given = body.get("input")
    items = [given] if isinstance(given, str) else given
    if given is None:
        raise APIError(400, "missing required parameter: 'input'", param="input", code="missing_required_parameter")
    if not isinstance(items, list) or not items or not (
            all(isinstance(x, str) for x in items) or _tokens(items) or all(_tokens(x) for x in items)):
        raise APIError(400, "'input' must be a string, a non-empty array of strings, or token arrays",
                       param="input", code="invalid_type")
    _refuse_lone_surrogates(body, ("input",))
    return model, [x for x in items if isinstance(x, str)]


def _tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(t, int) and not isinstance(t, bool) for t in value)


def classify_needs(body: dict[str, Any]) -> list[str]:
    """What a classify request needs of its model: its ``needs`` array, and for ``messages``, what
    they and its ``tools`` / ``response_format`` imply (:func:`needs_of`)."""
    given = body.get("needs")
    if given is not None and (not isinstance(given, list) or not all(isinstance(n, str) for n in given)):
        raise APIError(400, "'needs' must be an array of capability names such as \"vision\"", param="needs",
                       code="invalid_type")
    return sorted(set(given or ()) | set(needs_of(body) if "messages" in body else ()))


def classify_request(body: dict[str, Any]) -> tuple[str, list[str] | None]:
    """``(task, history)`` of a classify request: ``{"task", "history"?}`` or ``{"messages"}``."""
    if ("task" in body) == ("messages" in body):
        raise APIError(400, "send either 'task' (a string, with an optional 'history' array of strings) "
                            "or 'messages' (OpenAI chat messages)", param="task", code="invalid_request")
    if "messages" in body:
        _refuse_lone_surrogates(body, ("messages",))
        return conversation(_messages(body))
    task, history = body["task"], body.get("history")
    if not isinstance(task, str):
        raise APIError(400, "'task' must be a string", param="task", code="invalid_type")
    if history is not None and (not isinstance(history, list) or not all(isinstance(h, str) for h in history)):
        raise APIError(400, "'history' must be an array of strings", param="history", code="invalid_type")
    _refuse_lone_surrogates(body, ("task", "history"))
    return task, history


def outcome_request(body: dict[str, Any]) -> dict[str, Any]:
    """The arguments of ``Router.record_outcome`` from ``{"decision_id", "score", "model"?,
    "tier"?, "notes"?}``."""
    unknown = sorted(set(body) - {"decision_id", "score", "model", "tier", "notes"})
    if unknown:
        raise APIError(400, f"unknown parameter(s): {', '.join(unknown)} (known: decision_id, score, model, "
                            "tier, notes)", param=unknown[0], code="unknown_parameter")
    decision_id, score = body.get("decision_id"), body.get("score")
    if not isinstance(decision_id, str) or not decision_id.strip():
        raise APIError(400, "'decision_id' must be the decision's id (the x-dmr-decision-id header)",
                       param="decision_id", code="invalid_type")
    if not finite_score(score):
        raise APIError(400, "'score' must be a finite number (0..1 is usual)", param="score", code="invalid_type")
    _refuse_lone_surrogates(body, ("decision_id", "model", "tier", "notes"))
    model, tier, notes = body.get("model"), body.get("tier"), body.get("notes")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise APIError(400, "'model' must be the name of the model that answered (x-dmr-model)", param="model",
                       code="invalid_type")
    if notes is not None and not isinstance(notes, str):
        raise APIError(400, "'notes' must be a string", param="notes", code="invalid_type")
    if tier is not None:
        try:
            ModelTier(tier).rank
        except ValueError as exc:
            raise APIError(400, f"'tier': {exc}", param="tier", code="invalid_input") from None
    # Stripped as the record stores it, so that the answer names the id that was stored.
    return {"decision_id": decision_id.strip(), "score": score, "model": model, "tier": tier, "notes": notes}


def _refuse_lone_surrogates(body: dict[str, Any], fields: tuple[str, ...]) -> None:
    for field in fields:
        if field in body and _has_lone_surrogate(body[field]):
            raise APIError(400, f"'{field}' holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape), "
                                "which is not text", param=field, code="invalid_encoding")


def _has_lone_surrogate(value: Any) -> bool:
    pending = [value]  # a loop, not recursion: parsed JSON can nest as deep as the parser allows
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            # JSON decodes an escaped lone surrogate ("\ud800") into a str no UTF-8 store can take.
            if valid_unicode(item) is not item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
