"""OpenAI Agents SDK: the model object for the model the router picks for a task.

::

    from agents import Agent, ModelSettings, Runner
    from dmr.integrations.openai_agents import get_openai_agent_model

    task = "Summarise this contract …"
    agent = Agent(name="Analyst", model=get_openai_agent_model(task),
                  model_settings=ModelSettings(temperature=0))
    Runner.run_sync(agent, task)

An OpenAI-compatible provider (OpenAI itself, Mistral, a local vLLM or llama.cpp, …) becomes an
``OpenAIChatCompletionsModel`` with its own ``AsyncOpenAI`` client at the provider's endpoint and
key. That holds for OpenAI's own API as well: a bare model name would make the SDK use its
process-wide default client, whose endpoint and key dmr does not control; pass
``target(task).model`` as the agent's ``model`` if that is what you want. Anthropic and Google go
through the SDK's ``LitellmModel`` (``pip install 'openai-agents[litellm]'``) at LiteLLM's
default endpoint for that provider.

Keyword arguments go to the model's constructor; sampling options (temperature, max_tokens) belong
in the agent's ``ModelSettings``. The SDK exports traces to OpenAI unless tracing is disabled
(``agents.set_tracing_disabled(True)`` or ``OPENAI_AGENTS_DISABLE_TRACING=1``); dmr leaves that
choice to you.
"""

from __future__ import annotations

from typing import Any, Iterable

from dmr.integrations.target import Target, require, target

__all__ = ["get_openai_agent_model"]


def get_openai_agent_model(task: Any, *, router: Any = None, needs: Iterable[str] | None = None,
                           **kwargs: Any) -> Any:
    """An Agents SDK model for the model the router picks for ``task`` (and ``needs``, such as
    ``["function_calling"]`` for an agent with tools).

    ``kwargs`` go to ``OpenAIChatCompletionsModel`` (or ``LitellmModel``); an ``api_key`` among
    them replaces the one read from the provider's key variable.
    """
    return _model(target(task, router=router, needs=needs), dict(kwargs))


def _model(found: Target, kwargs: dict[str, Any]) -> Any:
    if found.openai_compatible:
        agents = require("agents", "openai-agents")
        from openai import AsyncOpenAI  # a dependency of openai-agents

        client = AsyncOpenAI(base_url=found.base_url, api_key=_key(found, kwargs))
        return agents.OpenAIChatCompletionsModel(model=found.model, openai_client=client, **kwargs)
    # The SDK speaks only OpenAI's wire format itself; LiteLLM translates for the native APIs.
    litellm_model = require("agents.extensions.models.litellm_model", "openai-agents[litellm]")
    return litellm_model.LitellmModel(model=found.litellm_model, api_key=_key(found, kwargs), **kwargs)


def _key(found: Target, kwargs: dict[str, Any]) -> str:
    return kwargs.pop("api_key", None) or found.key_or_placeholder()
