"""What the translated endpoints (:mod:`dmr.server.responses`, :mod:`dmr.server.anthropic_messages`)
share: ids for the objects they make, a required string field, and the last step of every request,
which checks the chat body they built like a chat completion's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable

from dmr.server.bodies import chat_request
from dmr.server.errors import APIError

__all__ = ["Translation", "chat_body", "new_id", "required_string"]


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def required_string(item: dict[str, Any], field: str, where: str) -> str:
    value = item.get(field)
    if not isinstance(value, str) or not value:
        raise APIError(400, f"{where}.{field} must be a non-empty string", param=f"{where}.{field}",
                       code="invalid_type")
    return value


def chat_body(chat: dict[str, Any], aliases: tuple[str, ...]) -> tuple[str, dict[str, Any], list[dict[str, Any]], bool]:
    """``(model, chat, messages, stream)`` once ``chat`` passes the chat completion's checks. A
    stream asks the provider for its usage, which comes in the last event only when asked for: it
    completes the translated answer and is what the budget is charged."""
    model, messages, stream = chat_request(chat, aliases)
    if stream:
        chat["stream_options"] = {"include_usage": True}
    return model, chat, messages, stream


@dataclass(frozen=True)
class Translation:
    """How :func:`dmr.server.upstream.forward` retells a chat answer to ``request``, a request of
    another API: ``retell(answer, request)`` makes a whole answer (ValueError when it cannot),
    ``stream(request, model)`` the object that retells a stream chunk by chunk."""

    request: dict[str, Any]
    retell: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
    stream: Callable[[dict[str, Any], str], Any]

    def answer(self, answer: dict[str, Any]) -> dict[str, Any]:
        return self.retell(answer, self.request)

    def events(self, model: str) -> Any:
        return self.stream(self.request, model)
