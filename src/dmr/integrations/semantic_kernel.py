"""Semantic Kernel: a chat completion service for the model the router picks for a task.

::

    from semantic_kernel import Kernel
    from dmr.integrations.semantic_kernel import get_chat_service

    kernel = Kernel()
    kernel.add_service(get_chat_service("Summarise this contract …", service_id="summariser"))

An OpenAI-compatible provider gets ``OpenAIChatCompletion`` with its own ``openai.AsyncOpenAI``
client at the provider's ``base_url``; Anthropic gets ``AnthropicChatCompletion`` and Google
``GoogleAIChatCompletion``, which need ``semantic-kernel[anthropic]`` / ``semantic-kernel[google]``.
Keyword arguments go to the service's constructor (``default_headers``, ``instruction_role``, …);
sampling settings such as ``max_tokens`` belong, as always in Semantic Kernel, in the execution
settings of each call.
"""

from __future__ import annotations

from typing import Any, Iterable

from dmr.integrations.target import require, target

__all__ = ["get_chat_service"]

_PACKAGE = "semantic-kernel"


def get_chat_service(task: Any, *, router: Any = None, service_id: str | None = None,
                     needs: Iterable[str] | None = None, **kwargs: Any) -> Any:
    """A Semantic Kernel chat completion service for ``task`` (and ``needs``, such as
    ``["function_calling"]`` for a kernel with plugins); ``service_id`` defaults to the model name,
    as in Semantic Kernel."""
    t = target(task, router=router, needs=needs)
    if t.provider == "anthropic":
        key = t.key_or_placeholder()
        anthropic = require("semantic_kernel.connectors.ai.anthropic", f"{_PACKAGE}[anthropic]")
        return anthropic.AnthropicChatCompletion(ai_model_id=t.model, service_id=service_id, api_key=key, **kwargs)
    if t.provider == "google":
        key = t.key_or_placeholder()
        google = require("semantic_kernel.connectors.ai.google.google_ai", f"{_PACKAGE}[google]")
        return google.GoogleAIChatCompletion(gemini_model_id=t.model, service_id=service_id, api_key=key, **kwargs)
    open_ai = require("semantic_kernel.connectors.ai.open_ai", _PACKAGE)
    client = require("openai", "openai").AsyncOpenAI(base_url=t.base_url, api_key=t.key_or_placeholder())
    return open_ai.OpenAIChatCompletion(ai_model_id=t.model, service_id=service_id, async_client=client, **kwargs)
