"""What one call needs of its model, read from what a framework hands that model: ``vision`` when a
message carries an image, ``function_calling`` when tools are offered, ``json_schema`` when the
answer must follow a JSON schema. The per-call integrations route with it (``target(...,
needs=...)``), so that a model whose registry entry says it cannot do one is passed over
(:mod:`dmr.context_fit`).

Images are found in each framework's own message shape: OpenAI-style parts (``image_url``,
``input_image``; LangChain's and smolagents' ``image``), LlamaIndex's ``ImageBlock`` among a
message's ``blocks``, AutoGen's ``Image`` objects, and Gemini parts with an ``image/*`` blob.
"""

from __future__ import annotations

from typing import Any, Mapping

from dmr.messages import media_of

__all__ = ["has_image", "is_json_schema", "needs_of", "openai_needs"]

_MAX_DEPTH = 8  # real formats nest parts two or three deep


def needs_of(messages: Any = None, *, tools: Any = None, json_schema: bool = False) -> list[str]:
    """``vision`` when ``messages`` carry an image, ``function_calling`` when ``tools`` is not
    empty, ``json_schema`` when asked for: ``Router.classify``'s ``needs``."""
    needs = ["vision"] if has_image(messages) else []
    if tools:
        needs.append("function_calling")
    if json_schema:
        needs.append("json_schema")
    return needs


def openai_needs(messages: Any, options: Mapping[str, Any]) -> list[str]:
    """:func:`needs_of` a call whose keyword arguments are OpenAI's (``tools`` or ``functions``,
    ``response_format``), as LiteLLM, LangChain's bound arguments and LlamaIndex's take them."""
    return needs_of(messages, tools=options.get("tools") or options.get("functions"),
                    json_schema=is_json_schema(options.get("response_format")))


def is_json_schema(response_format: Any) -> bool:
    """True for a response format that is a JSON schema: OpenAI's ``{"type": "json_schema", …}``
    or a pydantic model class, which LiteLLM, CrewAI, AutoGen and OpenAI's SDK send as one (JSON
    mode, ``{"type": "json_object"}``, holds to no schema)."""
    if isinstance(response_format, Mapping):
        return response_format.get("type") == "json_schema"
    return isinstance(response_format, type) and hasattr(response_format, "model_json_schema")


def has_image(messages: Any) -> bool:
    """True when a message of ``messages`` (one message or a list of them) carries an image."""
    if messages is None or isinstance(messages, (str, bytes)):
        return False
    if isinstance(messages, Mapping) or not isinstance(messages, (list, tuple)):
        messages = [messages]
    return any(_image_in(_field(m, name)) for m in messages for name in ("content", "blocks", "parts"))


def _image_in(content: Any, depth: int = 0) -> bool:
    if content is None or isinstance(content, (str, bytes)) or depth > _MAX_DEPTH:
        return False
    if isinstance(content, (list, tuple)):
        return any(_image_in(part, depth + 1) for part in content)
    if media_of(content) == "[image]":  # OpenAI-style parts, AutoGen's Image, Gemini's blobs
        return True
    if _field(content, "type"):  # a part of another type
        return False
    kind = _field(content, "block_type")  # LlamaIndex's blocks
    return media_of({"type": getattr(kind, "value", kind)}) == "[image]" if kind else False


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
