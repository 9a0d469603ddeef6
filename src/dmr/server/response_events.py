"""A chat completion stream, retold as the Responses API's stream of events.

:class:`ResponseEvents` is fed the provider's server-sent chat chunks as they arrive and returns the
Responses events they make, each ``event: <type>`` / ``data: <json>`` with its ``sequence_number``:
``response.created`` and ``response.in_progress`` first; for text, ``response.output_item.added``,
``response.content_part.added``, ``response.output_text.delta`` …, closed by the matching ``.done``
events; for each tool call, ``response.output_item.added`` and
``response.function_call_arguments.delta`` …, closed by ``.done``; and at the end
``response.completed`` (or ``response.incomplete`` when the answer was cut at max_output_tokens)
with the whole Response, usage included. An error the provider reports inside its stream, or a
stream that breaks off, ends it with an ``error`` event and ``response.failed``.
"""

from __future__ import annotations

import json
from typing import Any

from dmr.server.responses import finished, new_id, response_object, shell, usage_object

__all__ = ["ResponseEvents", "ResponsesTranslation"]

# An unfinished line longer than this is not a chat chunk: it is dropped rather than kept growing.
_MAX_LINE = 16 * 1024 * 1024


class ResponseEvents:
    def __init__(self, request: dict[str, Any], model: str) -> None:
        self._response = shell(request, new_id("resp"), model)
        self._sequence = 0
        self._line = b""
        self._output: list[dict[str, Any]] = []  # every item, in output order, open or done
        self._text: dict[str, Any] | None = None  # the message item being written
        self._calls: dict[int, dict[str, Any]] = {}  # open function calls by the chunks' tool_call index
        self._finish_reason: Any = None
        self._usage: dict[str, Any] | None = None
        self.ended = False

    def start(self) -> bytes:
        return self._events(("response.created", {"response": self._snapshot()}),
                            ("response.in_progress", {"response": self._snapshot()}))

    def feed(self, chunk: bytes) -> bytes:
        """The events that the chat chunks completed by ``chunk`` make."""
        lines = (self._line + chunk).split(b"\n")
        self._line = lines.pop()
        if len(self._line) > _MAX_LINE:
            self._line = b""
        out: list[tuple[str, dict[str, Any]]] = []
        for line in lines:
            line = line.rstrip(b"\r")
            if self.ended or not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
                continue
            try:
                data = json.loads(line[5:])
            except (ValueError, RecursionError):
                continue
            if isinstance(data, dict) and "error" in data:
                error = data["error"] if isinstance(data["error"], dict) else {"message": str(data["error"])}
                return self._events(*out) + self.fail(str(error.get("message") or "the provider failed"),
                                                      error.get("code"))
            if isinstance(data, dict):
                out += self._chunk(data)
        return self._events(*out)

    def finish(self) -> bytes:
        """The closing events, once the provider's stream has ended."""
        if self.ended:
            return b""
        self.ended = True
        out = self._close_text() + self._close_calls()
        response = finished(self._snapshot(), self._finish_reason)
        response["usage"] = self._usage
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        return self._events(*out, (kind, {"response": response}))

    def fail(self, message: str, code: Any = None) -> bytes:
        """An ``error`` event and ``response.failed``: the stream broke off."""
        if self.ended:
            return b""
        self.ended = True
        error = {"code": str(code) if code is not None else "upstream_error", "message": message}
        response = {**self._snapshot(), "status": "failed", "error": error, "usage": self._usage}
        return self._events(("error", {**error, "param": None}), ("response.failed", {"response": response}))

    def _chunk(self, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if data.get("model"):
            self._response["model"] = str(data["model"])
        self._usage = usage_object(data.get("usage")) or self._usage
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return []
        choice = choices[0]
        self._finish_reason = choice.get("finish_reason") or self._finish_reason
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        out: list[tuple[str, dict[str, Any]]] = []
        for field in ("content", "refusal"):
            text = delta.get(field)
            if isinstance(text, str) and text:
                out += self._text_delta(text)
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                out += self._call_delta(call)
        return out

    def _text_delta(self, text: str) -> list[tuple[str, dict[str, Any]]]:
        out = self._close_calls()
        if self._text is None:
            self._text = {"type": "message", "id": new_id("msg"), "status": "in_progress", "role": "assistant",
                          "content": []}
            self._output.append(self._text)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out += [("response.output_item.added", {"output_index": self._index(self._text), "item": _copy(self._text)}),
                    ("response.content_part.added", {**self._where(self._text), "part": part})]
            self._text["content"].append(part)
        self._text["content"][0]["text"] += text
        return out + [("response.output_text.delta", {**self._where(self._text), "delta": text, "logprobs": []})]

    def _call_delta(self, call: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        index = call.get("index", 0)
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        out: list[tuple[str, dict[str, Any]]] = []
        item = self._calls.get(index)
        if item is None:
            out += self._close_text()
            item = {"type": "function_call", "id": new_id("fc"), "call_id": call.get("id") or new_id("call"),
                    "name": function.get("name") or "", "arguments": "", "status": "in_progress"}
            self._calls[index] = item
            self._output.append(item)
            out.append(("response.output_item.added", {"output_index": self._index(item), "item": _copy(item)}))
        elif function.get("name"):
            item["name"] += function["name"]
        piece = function.get("arguments")
        if isinstance(piece, str) and piece:
            item["arguments"] += piece
            out.append(("response.function_call_arguments.delta",
                        {"item_id": item["id"], "output_index": self._index(item), "delta": piece}))
        return out

    def _close_text(self) -> list[tuple[str, dict[str, Any]]]:
        item, self._text = self._text, None
        if item is None:
            return []
        item["status"] = "completed"
        part = item["content"][0]
        return [("response.output_text.done", {**self._where(item), "text": part["text"], "logprobs": []}),
                ("response.content_part.done", {**self._where(item), "part": dict(part)}),
                ("response.output_item.done", {"output_index": self._index(item), "item": _copy(item)})]

    def _close_calls(self) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
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

    def _where(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"item_id": item["id"], "output_index": self._index(item), "content_index": 0}

    def _snapshot(self) -> dict[str, Any]:
        return {**self._response, "output": [_copy(x) for x in self._output]}

    def _events(self, *events: tuple[str, dict[str, Any]]) -> bytes:
        out = []
        for kind, fields in events:
            data = {"type": kind, "sequence_number": self._sequence, **fields}
            self._sequence += 1
            out.append(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode("utf-8"))
        return b"".join(out)


def _copy(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "content": [dict(p) for p in item["content"]]} if "content" in item else dict(item)


class ResponsesTranslation:
    """How :func:`dmr.server.upstream.forward` retells a chat answer to a Responses API request."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.request = request

    def answer(self, answer: dict[str, Any]) -> dict[str, Any]:
        return response_object(answer, self.request)

    def events(self, model: str) -> ResponseEvents:
        return ResponseEvents(self.request, model)
