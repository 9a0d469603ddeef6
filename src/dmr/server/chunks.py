"""Reading a chat completion stream to retell it in another API's events.

:class:`ChunkStream` is fed the provider's server-sent chat chunks as they arrive, however the bytes
are split, and hands each piece to its subclass: text (:meth:`ChunkStream.text`), a piece of a tool
call (:meth:`ChunkStream.call`), a piece of the model's reasoning (:meth:`ChunkStream.thinking`),
an error the provider reports inside its stream
(:meth:`ChunkStream.fail`). It keeps what the end needs: the model, the last usage reported and the
finish reason. Subclasses return the bytes of their own events from each of these.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["REASONING_FIELDS", "ChunkStream"]

# Where OpenAI-compatible servers put a reasoning model's thinking, beside the answer: vLLM,
# DeepSeek and llama.cpp ``reasoning_content``, OpenRouter and newer vLLM ``reasoning``.
REASONING_FIELDS = ("reasoning_content", "reasoning")

# An unfinished line longer than this is not a chat chunk: it is dropped rather than kept growing.
_MAX_LINE = 16 * 1024 * 1024


class ChunkStream:
    def __init__(self, model: str) -> None:
        self.model = model
        self.usage: dict[str, Any] | None = None  # the chat usage object last reported
        self.finish_reason: Any = None
        self.ended = False
        self._line = b""

    def start(self) -> bytes:
        """The events that open the stream."""
        return b""

    def text(self, text: str) -> bytes:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def thinking(self, text: str) -> bytes:
        """A piece of the model's reasoning (:data:`REASONING_FIELDS`); dropped unless a subclass
        retells it."""
        return b""

    def call(self, index: Any, call_id: str | None, name: str, arguments: str) -> bytes:  # pragma: no cover
        raise NotImplementedError

    def finish(self) -> bytes:  # pragma: no cover
        """The closing events, once the provider's stream has ended."""
        raise NotImplementedError

    def fail(self, message: str, code: Any = None) -> bytes:  # pragma: no cover
        """The events that say the stream broke off."""
        raise NotImplementedError

    def feed(self, chunk: bytes) -> bytes:
        """The events that the chat chunks completed by ``chunk`` make."""
        lines = (self._line + chunk).split(b"\n")
        self._line = lines.pop()
        if len(self._line) > _MAX_LINE:
            self._line = b""
        out = b""
        for line in lines:
            line = line.rstrip(b"\r")
            if self.ended or not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
                continue
            try:
                data = json.loads(line[5:])
            except (ValueError, RecursionError):
                continue
            if not isinstance(data, dict):
                continue
            if "error" in data:
                error = data["error"] if isinstance(data["error"], dict) else {"message": str(data["error"])}
                return out + self.fail(str(error.get("message") or "the provider failed"), error.get("code"))
            out += self._chunk(data)
        return out

    def _chunk(self, data: dict[str, Any]) -> bytes:
        if data.get("model"):
            self.model = str(data["model"])
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return b""
        choice = choices[0]
        self.finish_reason = choice.get("finish_reason") or self.finish_reason
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        out = b""
        for field in REASONING_FIELDS:
            text = delta.get(field)
            if isinstance(text, str) and text:
                out += self.thinking(text)
                break
        for field in ("content", "refusal"):
            text = delta.get(field)
            if isinstance(text, str) and text:
                out += self.text(text)
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                function = call.get("function") if isinstance(call.get("function"), dict) else {}
                name, arguments = function.get("name"), function.get("arguments")
                out += self.call(call.get("index", 0), call.get("id") if isinstance(call.get("id"), str) else None,
                                 name if isinstance(name, str) else "",
                                 arguments if isinstance(arguments, str) else "")
        return out
