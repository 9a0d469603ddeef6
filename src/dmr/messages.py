"""Reading chat messages in every shape the frameworks and clients use: OpenAI-style dicts,
objects with ``role``/``type`` and ``content``, content as a string or a list of parts (media parts
named ``[image]``, ``[audio]``…), nested at most a few levels deep. Used by the integrations and the
proxy to find the task, and by the PII policy to scan a conversation's history."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from dmr.errors import InputTypeError

__all__ = ["MODEL_ROLES", "TOOL_ROLES", "USER_ROLES", "history_turns", "media_of", "turn_list", "turns"]

# The roles of turns a user wrote, a model wrote, and of tool results, across the formats read here.
USER_ROLES = frozenset({"user", "human"})
MODEL_ROLES = frozenset({"assistant", "ai", "model", "chatbot"})
TOOL_ROLES = frozenset({"tool", "function"})

_MAX_DEPTH = 8
_MEDIA_TYPES = {"[image]": frozenset({"image_url", "image", "input_image"}),
                "[audio]": frozenset({"input_audio", "audio"}), "[video]": frozenset({"video", "video_url"}),
                "[file]": frozenset({"file", "input_file", "document"})}


def _field(message: Any, name: str) -> Any:
    if isinstance(message, dict):
        return message.get(name)
    return getattr(message, name, None)


# Message types that name a role (AutoGen's UserMessage, AssistantMessage, SystemMessage, and its
# tool results).
_TYPE_ROLES = {"usermessage": "user", "assistantmessage": "assistant", "systemmessage": "system",
               "functionexecutionresultmessage": "tool"}


def _role(message: Any) -> str:
    role = _field(message, "role") or _field(message, "type")
    role = getattr(role, "value", role)  # enums (Semantic Kernel's AuthorRole, …)
    role = str(role).lower() if role is not None else ""
    return _TYPE_ROLES.get(role, role)


def _text(content: Any, depth: int = 0) -> str:
    if content is None or depth > _MAX_DEPTH:  # real formats nest parts two or three deep
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (bytes, bytearray)):
        return bytes(content).decode("utf-8", "replace")
    if isinstance(content, (list, tuple)):
        return "\n".join(filter(None, (_text(part, depth + 1) for part in content)))
    media = media_of(content)
    if media:
        return media
    for name in ("text", "content"):
        inner = _field(content, name)
        if inner is not None and inner is not content:
            return _text(inner, depth + 1)
    parts = _field(content, "parts") or _field(content, "items")
    return _text(parts, depth + 1) if parts is not None else ""


def media_of(part: Any) -> str:
    """``[image]``, ``[audio]``, … for a part that carries media instead of text ("" for any
    other), so that a turn with only an image is routed as the multimodal task it is (never on the
    system prompt); :mod:`dmr.integrations.needs` finds images with it."""
    if type(part).__name__ == "Image":  # AutoGen's and PIL's image objects, given as content parts
        return "[image]"
    kind = _field(part, "type")
    kind = str(getattr(kind, "value", kind) or "").lower()
    for marker, kinds in _MEDIA_TYPES.items():
        if kind in kinds:
            return marker
    blob = _field(part, "inline_data") or _field(part, "file_data")  # Gemini's parts
    mime = str(_field(blob, "mime_type") or "") if blob is not None else ""
    return f"[{mime.split('/')[0]}]" if mime.split("/")[0] in ("image", "audio", "video") else (
        "[file]" if blob is not None else "")


def turns(messages: Any) -> list[tuple[str, str]]:
    """``(role, text)`` of each message in ``messages`` (a string, one message or a list of them):
    the role in lower case ("" when none), the text of its content (media parts named)."""
    if isinstance(messages, (str, bytes)):
        return [("user", messages.decode("utf-8", "replace") if isinstance(messages, bytes) else messages)]
    if isinstance(messages, dict) or not isinstance(messages, Sequence):
        messages = [messages]
    return [(_role(m), _text(_field(m, "content") if _field(m, "content") is not None else m)) for m in messages]


def turn_list(history: Any) -> list[Any] | None:
    """A Router ``history`` as a list of turns: a sequence or an iterator is read into a list; a
    lone string, bytes or message (a mapping, or an object with ``role`` or ``content``) is one
    turn, never a sequence of characters, keys or fields. :class:`~dmr.errors.InputTypeError` (a
    TypeError) for anything else."""
    if history is None:
        return None
    if isinstance(history, (str, bytes, bytearray, Mapping)) or hasattr(history, "role") or hasattr(history, "content"):
        return [history]
    try:
        return list(history)
    except TypeError:
        raise InputTypeError(f"history must be a list of turns (strings or messages), not {type(history).__name__}") from None


def history_turns(history: Any) -> list[tuple[str, str]]:
    """:func:`turns` of a Router ``history`` (see :func:`turn_list`)."""
    return turns(turn_list(history) or [])
