"""Helpers several framework tests share."""

from __future__ import annotations

import asyncio
import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from recording_proxy import MODELS, registry_for

__all__ = ["ADD_TOOL", "ANSWER_FORMAT", "PNG", "PNG_URL", "close_thread_loop", "image_turn", "in_own_thread",
           "limited_registry", "offline_router", "sent_models"]

# A 1x1 red PNG, for calls with an image.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
# A tool and a JSON schema response format in OpenAI's shape, for calls that need them.
ADD_TOOL = {"type": "function", "function": {
    "name": "add", "description": "Add two integers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                   "required": ["a", "b"]}}}
# The schema is small enough for the local LLM to answer in whole within a few tokens.
ANSWER_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {
    "type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False}}}


def close_thread_loop() -> None:
    """Close the event loop a framework left set on the current (non-main) thread, if any."""
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:  # none was set on this thread
        return
    if not loop.is_running():
        loop.close()


def in_own_thread(call: Callable[[], Any]) -> Any:
    """``call()`` in a thread of its own whose event loop is closed afterwards.

    The frameworks' ``run_sync`` helpers run on the thread's default event loop and leave it open
    (the Agents SDK with its async generators shut down): the next run on that thread, or a later
    test replacing the loop, raises a ResourceWarning, an error in this suite."""
    def run() -> Any:
        try:
            return call()
        finally:
            close_thread_loop()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def offline_router(*, limited: bool = False) -> Any:
    """A Router over the ``local`` provider at a port nothing listens on: for tests that build
    objects without calling them. ``limited``: over :func:`limited_registry`."""
    from dmr import Router

    registry = (limited_registry if limited else registry_for)("http://127.0.0.1:9/v1")
    return Router(model_registry=registry, provider="local", layer2_enabled=False)


def limited_registry(base_url: str) -> dict[str, Any]:
    """:func:`registry_for` in which local-small cannot call tools, see images or follow a JSON
    schema, and local-medium and local-large can see images."""
    registry = registry_for(base_url)
    registry["models"][MODELS["low"]]["capabilities"] = {
        "supports_function_calling": False, "supports_vision": False, "supports_json_schema": False}
    for name in (MODELS["medium"], MODELS["high"]):
        registry["models"][name]["capabilities"] = {"supports_vision": True}
    return registry


def image_turn(text: str) -> dict[str, Any]:
    """A user turn in OpenAI's shape: ``text`` and :data:`PNG`."""
    return {"role": "user", "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": PNG_URL}}]}


def sent_models(server: Any) -> list[str]:
    """The ``model`` of each request a FaultServer received, in order."""
    return [request["body"]["model"] for request in server.requests]
