"""LiteLLM: route each ``completion`` call, or get the keyword arguments for the routed model.

::

    from dmr.integrations.litellm import acompletion, completion, get_completion_kwargs

    messages = [{"role": "user", "content": "Summarise this contract …"}]
    response = completion(messages, max_tokens=200)          # litellm.completion on the routed model
    response._hidden_params["dmr_decision"]                  # the Decision behind it, as a dict

    litellm.completion(messages=messages, **get_completion_kwargs("Summarise this contract …"))

``completion`` and ``acompletion`` classify the messages (the latest user turn is the task, the
turns before it the router's history, so a short follow-up keeps the tier of the request it
follows) and call LiteLLM with the routed model: an OpenAI-compatible provider as
``openai/<model>`` at the provider's ``base_url``, Anthropic and Google by LiteLLM's own names
(``anthropic/…``, ``gemini/…``), each with the key from the provider's key variable. A call with
images in its messages, ``tools`` (or ``functions``) or a JSON schema ``response_format`` goes to a
model whose registry entry does not say it lacks that. Other keyword arguments go to LiteLLM and
win over the routed ones. LiteLLM downloads a price list when imported unless
``LITELLM_LOCAL_MODEL_COST_MAP=True``; dmr leaves that to you.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from dmr.integrations.needs import openai_needs
from dmr.integrations.target import Target, atarget, history_of, require, target, task_of

__all__ = ["acompletion", "completion", "get_completion_kwargs"]


def get_completion_kwargs(task: Any, *, router: Any = None, needs: Iterable[str] | None = None,
                          **kwargs: Any) -> dict[str, Any]:
    """``model``, ``base_url`` (for an OpenAI-compatible endpoint) and ``api_key`` for the model the
    router picks for ``task`` (and ``needs``), merged with ``kwargs``."""
    return _kwargs(target(task, router=router, needs=needs), kwargs)


def _kwargs(found: Target, kwargs: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {"model": found.litellm_model, "api_key": found.key_or_placeholder()}
    if found.openai_compatible and found.base_url:
        options["base_url"] = found.base_url
    return {**options, **kwargs}


def completion(messages: Sequence[Any], *, router: Any = None, **kwargs: Any) -> Any:
    """``litellm.completion`` on the model the router picks for ``messages``; the decision is in
    the response's ``_hidden_params["dmr_decision"]`` (a stream's first chunk has it too)."""
    litellm = require("litellm", "litellm")
    found = target(task_of(messages), router=router, history=history_of(messages),
                   needs=openai_needs(messages, kwargs))
    return _tagged(litellm.completion(messages=list(messages), **_kwargs(found, kwargs)), found)


async def acompletion(messages: Sequence[Any], *, router: Any = None, **kwargs: Any) -> Any:
    """``litellm.acompletion`` on the model the router picks for ``messages`` (see :func:`completion`)."""
    litellm = require("litellm", "litellm")
    found = await atarget(task_of(messages), router=router, history=history_of(messages),
                          needs=openai_needs(messages, kwargs))
    return _tagged(await litellm.acompletion(messages=list(messages), **_kwargs(found, kwargs)), found)


def _tagged(response: Any, found: Target) -> Any:
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, dict):
        hidden["dmr_decision"] = found.decision.to_dict()
    return response
