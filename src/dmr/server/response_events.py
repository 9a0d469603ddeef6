"""A chat completion stream, retold as the Responses API's stream of events.

:class:`ResponseEvents` is fed the provider's server-sent chat chunks as they arrive and returns the
Responses events they make, each ``event: <type>`` / ``data: <json>`` with its ``sequence_number``:
``response.created`` and ``response.in_progress`` first; for text, ``response.output_item.added``,
``response.content_part.added``, ``response.output_text.delta`` …, closed by the matching ``.done``
events; for each tool call, ``response.output_item.added`` and
``response.function_call_arguments.delta`` …, closed by ``.done``; when the request asked for a
reasoning summary (:func:`dmr.server.responses.summary_wanted`), the model's reasoning as a
``reasoning`` item, ``response.output_item.added``, ``response.reasoning_summary_part.added`` and
``response.reasoning_summary_text.delta`` …, closed by the matching ``.done`` events before the
message opens; and at the end ``response.completed`` (or ``response.incomplete`` when the answer
was cut at max_output_tokens) with the whole Response, usage included. An error the provider reports inside its stream, or a
stream that breaks off, ends it with an ``error`` event and ``response.failed``.
"""

from __future__ import annotations

import json
from typing import Any

from dmr.server.chunks import ChunkStream
from dmr.server.responses import finished, shell, summary_wanted, usage_object
from dmr.server.translated import new_id

__all__ = ["ResponseEvents"]

Event = tuple[str, dict[str, Any]]


class ResponseEvents(ChunkStream):
    def __init__(self, request: dict[str, Any], model: str) -> None:
        super().__init__(model)
        self._response = shell(request, new_id("resp"), model)
        self._summary = summary_wanted(request)
        self._sequence = 0
        self._output: list[dict[str, Any]] = []  # every item, in output order, open or done
        self._reasoning: dict[str, Any] | None = None  # the reasoning item being written
        self._text: dict[str, Any] | None = None  # the message item being written
        self._calls: dict[Any, dict[str, Any]] = {}  # open function calls by the chunks' tool_call index

    def start(self) -> bytes:
        return self._events(("response.created", {"response": self._snapshot()}),
                            ("response.in_progress", {"response": self._snapshot()}))

    def finish(self) -> bytes:
        if self.ended:
            return b""
        self.ended = True
        out = self._close_reasoning() + self._close_text() + self._close_calls()
        response = finished(self._snapshot(), self.finish_reason)
        response["usage"] = usage_object(self.usage)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        return self._events(*out, (kind, {"response": response}))

    def fail(self, message: str, code: Any = None) -> bytes:
        """An ``error`` event and ``response.failed``: the stream broke off."""
        if self.ended:
            return b""
        self.ended = True
        error = {"code": str(code) if code is not None else "upstream_error", "message": message}
        response = {**self._snapshot(), "status": "failed", "error": error, "usage": usage_object(self.usage)}
        return self._events(("error", {**error, "param": None}), ("response.failed", {"response": response}))

    def thinking(self, text: str) -> bytes:
        if not self._summary:
            return b""
        out = self._close_text() + self._close_calls()
        if self._reasoning is None:
            self._reasoning = {"type": "reasoning", "id": new_id("rs"), "summary": []}
            self._output.append(self._reasoning)
            part = {"type": "summary_text", "text": ""}
            out += [("response.output_item.added",
                     {"output_index": self._index(self._reasoning), "item": _copy(self._reasoning)}),
                    ("response.reasoning_summary_part.added", {**self._where(self._reasoning, "summary_index"),
                                                               "part": dict(part)})]
            self._reasoning["summary"].append(part)
        self._reasoning["summary"][0]["text"] += text
        return self._events(*out, ("response.reasoning_summary_text.delta",
                                   {**self._where(self._reasoning, "summary_index"), "delta": text}))

    def text(self, text: str) -> bytes:
        out = self._close_reasoning() + self._close_calls()
        if self._text is None:
            self._text = {"type": "message", "id": new_id("msg"), "status": "in_progress", "role": "assistant",
                          "content": []}
            self._output.append(self._text)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out += [("response.output_item.added", {"output_index": self._index(self._text), "item": _copy(self._text)}),
                    ("response.content_part.added", {**self._where(self._text), "part": dict(part)})]
            self._text["content"].append(part)
        self._text["content"][0]["text"] += text
        return self._events(*out, ("response.output_text.delta",
                                   {**self._where(self._text), "delta": text, "logprobs": []}))

    def call(self, index: Any, call_id: str | None, name: str, arguments: str) -> bytes:
        out: list[Event] = []
        item = self._calls.get(index)
        if item is None:
            out += self._close_reasoning() + self._close_text()
            item = {"type": "function_call", "id": new_id("fc"), "call_id": call_id or new_id("call"),
                    "name": name, "arguments": "", "status": "in_progress"}
            self._calls[index] = item
            self._output.append(item)
            out.append(("response.output_item.added", {"output_index": self._index(item), "item": _copy(item)}))
        else:
            item["name"] += name
        if arguments:
            item["arguments"] += arguments
            out.append(("response.function_call_arguments.delta",
                        {"item_id": item["id"], "output_index": self._index(item), "delta": arguments}))
        return self._events(*out)

    def _close_text(self) -> list[Event]:
        item, self._text = self._text, None
        if item is None:
            return []
        item["status"] = "completed"
        part = item["content"][0]
        return [("response.output_text.done", {**self._where(item), "text": part["text"], "logprobs": []}),
                ("response.content_part.done", {**self._where(item), "part": dict(part)}),
                ("response.output_item.done", {"output_index": self._index(item), "item": _copy(item)})]

    def _close_reasoning(self) -> list[Event]:
        item, self._reasoning = self._reasoning, None
        if item is None:
            return []
        where, part = self._where(item, "summary_index"), item["summary"][0]
        return [("response.reasoning_summary_text.done", {**where, "text": part["text"]}),
                ("response.reasoning_summary_part.done", {**where, "part": dict(part)}),
                ("response.output_item.done", {"output_index": self._index(item), "item": _copy(item)})]

    def _close_calls(self) -> list[Event]:
        out: list[Event] = []
        for item in self._calls.values():
            item["status"] = "completed"
            item["arguments"] = item["arguments"] or "{}"
            out += [("response.function_call_arguments.done",
                     {"item_id": item["id"], "output_index": self._index(item), "name": item["name"],
                      "arguments": item["arguments"]}),
                    ("response.output_item.done", {"output_index": self._index(item), "item": _copy(item)})]
        self._calls = {}
        return out

    def _index(self, item: dict[str, Any]) -> int:
        return next(i for i, x in enumerate(self._output) if x is item)

    def _where(self, item: dict[str, Any], part_index: str = "content_index") -> dict[str, Any]:
        return {"item_id": item["id"], "output_index": self._index(item), part_index: 0}

    def _snapshot(self) -> dict[str, Any]:
        return {**self._response, "model": self.model, "output": [_copy(x) for x in self._output]}

    def _events(self, *events: Event) -> bytes:
        out = []
        for kind, fields in events:
            data = {"type": kind, "sequence_number": self._sequence, **fields}
            self._sequence += 1
            out.append(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode("utf-8"))
        return b"".join(out)


def _copy(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, **{k: [dict(p) for p in item[k]] for k in ("content", "summary") if k in item}}

