"""OpenAI's legacy Completions API (``POST /v1/completions``) over chat completions.

Clients that still send a bare ``prompt`` (``client.completions.create``, LangChain's ``OpenAI`` LLM
class, evaluation harnesses' "completions" back-ends) reach dmr like chat clients: the prompt is
the task (one user message), routed like a chat completion and sent to the chosen provider's
``/chat/completions``; the answer comes back as a ``text_completion``, or as its stream of chunks
ending in ``data: [DONE]``.

Translated: ``prompt`` (a string, or an array holding one string), ``max_tokens``, ``temperature``,
``top_p``, ``n``, ``stop``, ``presence_penalty``, ``frequency_penalty``, ``logit_bias``, ``seed``,
``user``, ``stream`` and ``stream_options.include_usage``. The chat model writes its answer to the
prompt rather than continuing its text, and without ``max_tokens`` its own limit applies (the
legacy API's default of 16 tokens is not imposed). What has no chat counterpart is a 400 naming
the parameter: token-array prompts, several prompts in one request, ``echo``, ``suffix``,
``best_of`` above 1, ``logprobs``, and ``n`` above 1 when streaming.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from dmr.server.chunks import ChunkStream
from dmr.server.errors import APIError
from dmr.server.translated import chat_body

__all__ = ["CompletionEvents", "completion_object", "completions_request"]

_PASSED = ("max_tokens", "temperature", "top_p", "n", "stop", "presence_penalty", "frequency_penalty",
           "logit_bias", "seed", "user", "stream")
_KNOWN = frozenset({"model", "prompt", "stream_options", "echo", "suffix", "best_of", "logprobs", *_PASSED})


def _refuse(param: str, why: str) -> APIError:
    return APIError(400, f"'{param}' {why}", param=param, code="unsupported_parameter")


def completions_request(body: dict[str, Any], aliases: tuple[str, ...]
                        ) -> tuple[str, dict[str, Any], list[dict[str, Any]], bool]:
    """``(model, chat body, messages, stream)`` of a Completions API request."""
    unknown = sorted(k for k, v in body.items() if k not in _KNOWN and v is not None)
    if unknown:
        raise APIError(400, f"unknown parameter: '{unknown[0]}' (this proxy translates model, prompt, "
                            f"stream_options, {', '.join(_PASSED)})", param=unknown[0], code="unknown_parameter")
    if body.get("echo"):
        raise _refuse("echo", "is not supported: a chat model's answer does not contain the prompt")
    if body.get("suffix"):
        raise _refuse("suffix", "is not supported: chat models do not fill in text before a suffix")
    if body.get("logprobs") is not None:
        raise _refuse("logprobs", "is not supported by this proxy's translation to chat completions")
    best_of = body.get("best_of")
    if best_of is not None and best_of != 1:
        raise _refuse("best_of", "is not supported (only 1): chat completions return every choice they make")
    chat: dict[str, Any] = {"model": body.get("model"), "messages": [{"role": "user", "content": _prompt(body)}]}
    for field in _PASSED:
        if body.get(field) is not None:
            chat[field] = body[field]
    if chat.get("stream") is True and isinstance(chat.get("n"), int) and chat["n"] > 1:
        raise _refuse("n", "above 1 cannot be streamed through this proxy: ask without 'stream'")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise APIError(400, "'stream_options' must be an object", param="stream_options", code="invalid_type")
    return chat_body(chat, aliases)


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if prompt is None:
        raise APIError(400, "missing required parameter: 'prompt'", param="prompt", code="missing_required_parameter")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        raise _refuse("prompt", f"holds {len(prompt)} prompts: each is routed on its own, so send one per request")
    if not isinstance(prompt, str):
        raise APIError(400, "'prompt' must be a string (token arrays are not supported: the router reads text)",
                       param="prompt", code="invalid_type")
    if not prompt.strip():
        raise APIError(400, "'prompt' is empty: there is no text to route", param="prompt", code="invalid_input")
    return prompt


def _finish(reason: Any) -> Any:
    # A chat model that calls a tool or is filtered has no legacy counterpart but "stop" / "content_filter".
    return reason if reason in (None, "stop", "length", "content_filter") else "stop"


def completion_object(answer: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """The ``text_completion`` for a chat completion ``answer``; ValueError when it holds no choice."""
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
        raise ValueError("the answer has no choices")
    out = []
    for i, choice in enumerate(choices):
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        text = message.get("content")
        if isinstance(text, list):
            text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
        if not isinstance(text, str) or not text:
            text = message.get("refusal") if isinstance(message.get("refusal"), str) else ""
        index = choice.get("index")
        out.append({"text": text, "index": index if isinstance(index, int) else i, "logprobs": None,
                    "finish_reason": _finish(choice.get("finish_reason")) or "stop"})
    completion = {"id": _new_id(), "object": "text_completion", "created": _created(answer),
                  "model": str(answer.get("model") or request.get("model")), "choices": out}
    if isinstance(answer.get("system_fingerprint"), str):
        completion["system_fingerprint"] = answer["system_fingerprint"]
    if isinstance(answer.get("usage"), dict):
        completion["usage"] = answer["usage"]
    return completion


def _new_id() -> str:
    return f"cmpl-{uuid.uuid4().hex}"  # OpenAI's own form for completions: a hyphen


def _created(answer: dict[str, Any]) -> int:
    created = answer.get("created")
    return created if isinstance(created, int) and not isinstance(created, bool) else int(time.time())


class CompletionEvents(ChunkStream):
    """A chat completion stream retold as the Completions API's: a ``text_completion`` chunk per
    piece of text, one with the finish reason, the usage in a last chunk without choices when the
    client asked for it (``stream_options.include_usage``), then ``data: [DONE]``. An error inside
    the provider's stream, or a stream that breaks off, ends it with an ``error`` event, as
    OpenAI's API does."""

    def __init__(self, request: dict[str, Any], model: str) -> None:
        super().__init__(model)
        self._id = _new_id()
        self._created = int(time.time())
        options = request.get("stream_options")
        self._include_usage = isinstance(options, dict) and options.get("include_usage") is True

    def text(self, text: str) -> bytes:
        return self._chunk_of([{"text": text, "index": 0, "logprobs": None, "finish_reason": None}])

    def call(self, index: Any, call_id: str | None, name: str, arguments: str) -> bytes:
        return b""  # a completion has no tool calls; none was offered, so none is expected

    def finish(self) -> bytes:
        if self.ended:
            return b""
        self.ended = True
        out = self._chunk_of([{"text": "", "index": 0, "logprobs": None,
                               "finish_reason": _finish(self.finish_reason) or "stop"}])
        if self._include_usage:
            out += self._chunk_of([], usage=self.usage)
        return out + b"data: [DONE]\n\n"

    def fail(self, message: str, code: Any = None) -> bytes:
        if self.ended:
            return b""
        self.ended = True
        error = {"message": message, "type": "server_error", "param": None,
                 "code": str(code) if code is not None else "upstream_error"}
        return b"data: " + json.dumps({"error": error}).encode("utf-8") + b"\n\n"

    def _chunk_of(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {"id": self._id, "object": "text_completion", "created": self._created, "model": self.model,
                 "choices": choices, **extra}
        return b"data: " + json.dumps(chunk).encode("utf-8") + b"\n\n"
