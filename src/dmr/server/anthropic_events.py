"""A chat completion stream, retold as Anthropic's stream of message events.

``message_start`` first; each run of text is a ``text`` content block and each tool call a
``tool_use`` block (``content_block_start``, ``content_block_delta`` with ``text_delta`` or
``input_json_delta`` pieces, ``content_block_stop``); at the end ``message_delta`` with the stop
reason and the usage, and ``message_stop``. When the request asked for thinking, the model's
reasoning deltas make a ``thinking`` block (``thinking_delta`` pieces) before the text. An error the provider reports inside its stream, or a
stream that breaks off, ends it with an ``error`` event, as Anthropic's API does.

The input tokens are known only when the provider reports its usage, at the end: ``message_start``
says 0 and ``message_delta`` carries the real count with the output tokens (Anthropic's SDKs take
both from there).
"""

from __future__ import annotations

import json
from typing import Any

from dmr.server.anthropic_messages import stop_reason, thinking_wanted, usage_object
from dmr.server.chunks import ChunkStream
from dmr.server.translated import new_id

__all__ = ["AnthropicEvents"]

Event = tuple[str, dict[str, Any]]


class AnthropicEvents(ChunkStream):
    def __init__(self, request: dict[str, Any], model: str) -> None:
        # Anthropic's stream echoes none of ``request``; it says whether thinking is wanted.
        super().__init__(model)
        self._thinking = thinking_wanted(request)
        self._id = new_id("msg")
        self._blocks = 0  # blocks opened so far
        self._open: str | None = None  # "text", "thinking", or "tool" while a tool_use block is open
        self._call_index: Any = None  # the chunks' index of the open tool call

    def start(self) -> bytes:
        message = {"id": self._id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}
        return self._events(("message_start", {"message": message}))

    def text(self, text: str) -> bytes:
        out: list[Event] = []
        if self._open != "text":
            out += self._close()
            out.append(self._open_block({"type": "text", "text": ""}, "text"))
        out.append(("content_block_delta", {"index": self._blocks - 1, "delta": {"type": "text_delta", "text": text}}))
        return self._events(*out)

    def thinking(self, text: str) -> bytes:
        if not self._thinking:
            return b""
        out: list[Event] = []
        if self._open != "thinking":
            out += self._close()
            out.append(self._open_block({"type": "thinking", "thinking": "", "signature": ""}, "thinking"))
        out.append(("content_block_delta", {"index": self._blocks - 1,
                                            "delta": {"type": "thinking_delta", "thinking": text}}))
        return self._events(*out)

    def call(self, index: Any, call_id: str | None, name: str, arguments: str) -> bytes:
        out: list[Event] = []
        if self._open != "tool" or index != self._call_index:
            out += self._close()
            out.append(self._open_block({"type": "tool_use", "id": call_id or new_id("toolu"), "name": name,
                                         "input": {}}, "tool"))
            self._call_index = index
        if arguments:
            out.append(("content_block_delta", {"index": self._blocks - 1,
                                                "delta": {"type": "input_json_delta", "partial_json": arguments}}))
        return self._events(*out)

    def finish(self) -> bytes:
        if self.ended:
            return b""
        self.ended = True
        delta = {"stop_reason": stop_reason(self.finish_reason), "stop_sequence": None}
        return self._events(*self._close(), ("message_delta", {"delta": delta, "usage": usage_object(self.usage)}),
                            ("message_stop", {}))

    def fail(self, message: str, code: Any = None) -> bytes:
        if self.ended:
            return b""
        self.ended = True
        kind = "overloaded_error" if code == "overloaded" else "api_error"
        return self._events(("error", {"error": {"type": kind, "message": message}}))

    def _open_block(self, block: dict[str, Any], kind: str) -> Event:
        self._open = kind
        self._blocks += 1
        return ("content_block_start", {"index": self._blocks - 1, "content_block": block})

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        self._open = None
        return [("content_block_stop", {"index": self._blocks - 1})]

    def _events(self, *events: Event) -> bytes:
        return b"".join(f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode("utf-8")
                        for kind, fields in events)

