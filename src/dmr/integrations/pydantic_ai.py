"""Pydantic AI: a model object, a model string or a ready agent for the model the router picks.

::

    from dmr.integrations.pydantic_ai import get_agent, get_model, get_model_string

    task = "Summarise this contract …"
    agent = get_agent(task, instructions="Be concise.")   # pydantic_ai.Agent(get_model(task), …)
    agent.run_sync(task).output

    get_model(task)          # OpenAIChatModel at the provider's endpoint, AnthropicModel, GoogleModel
    get_model_string(task)   # "openai:gpt-4o-mini", "anthropic:…", "google:…"

``get_model`` builds the model object: an OpenAI-compatible provider becomes ``OpenAIChatModel``
with an ``OpenAIProvider`` at the provider's ``base_url`` and key; Anthropic and Google become
``AnthropicModel`` / ``GoogleModel`` (``pydantic-ai-slim[anthropic]`` / ``[google]``). Keyword
arguments go to the model's constructor (``settings={"temperature": 0}``, ``profile=…``).

``get_model_string`` gives Pydantic AI's ``provider:model`` name, which carries no endpoint or key:
Pydantic AI then reads its own variables (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``,
``GOOGLE_API_KEY``). So it answers only for OpenAI's own API, Anthropic and Google, and raises
``NotAvailableError`` for any other endpoint (Mistral, a local server, …): use ``get_model`` there.
Gemini is ``google:`` from Pydantic AI 2 on (``google-gla:`` before; 2.x rejects that spelling).
Pydantic AI 2 reads ``openai:`` as OpenAI's Responses API, while ``get_model`` uses Chat
Completions, which every OpenAI-compatible server speaks.
"""

from __future__ import annotations

from typing import Any, Iterable

from dmr.errors import NotAvailableError
from dmr.integrations.target import Target, require, target

__all__ = ["get_agent", "get_model", "get_model_string"]

_OPENAI_URL = "https://api.openai.com/v1"
# provider -> (Pydantic AI's model module and class, its provider module and class, pip package)
_NATIVE = {
    "anthropic": ("anthropic", "AnthropicModel", "AnthropicProvider", "pydantic-ai-slim[anthropic]"),
    "google": ("google", "GoogleModel", "GoogleProvider", "pydantic-ai-slim[google]"),
}


def get_model_string(task: Any, *, router: Any = None, needs: Iterable[str] | None = None) -> str:
    """Pydantic AI's ``provider:model`` name for the model the router picks for ``task`` (and
    ``needs``, such as ``["function_calling"]`` for an agent with tools)."""
    found = target(task, router=router, needs=needs)
    version = require("pydantic_ai", "pydantic-ai-slim").__version__
    if found.provider == "google" and int(version.split(".")[0]) < 2:
        return f"google-gla:{found.model}"  # Pydantic AI 2 renamed it "google"
    if found.provider in _NATIVE:
        return f"{found.provider}:{found.model}"
    if found.provider == "openai" and (found.base_url or _OPENAI_URL).rstrip("/") == _OPENAI_URL:
        return f"openai:{found.model}"
    raise NotAvailableError(
        f"a Pydantic AI model string cannot carry the endpoint of provider {found.provider!r} "
        f"({found.base_url}): use dmr.integrations.pydantic_ai.get_model(task) or get_agent(task)")


def get_model(task: Any, *, router: Any = None, needs: Iterable[str] | None = None, **kwargs: Any) -> Any:
    """A Pydantic AI model for the model the router picks for ``task`` (and ``needs``); ``kwargs``
    go to the model's constructor (``settings``, ``profile``)."""
    return _model(target(task, router=router, needs=needs), kwargs)


def get_agent(task: Any, *, router: Any = None, needs: Iterable[str] | None = None, **agent_kwargs: Any) -> Any:
    """``pydantic_ai.Agent(get_model(task), **agent_kwargs)``: the model is chosen once, for
    ``task`` (and ``needs``), when the agent is built."""
    model = get_model(task, router=router, needs=needs)
    return require("pydantic_ai", "pydantic-ai-slim").Agent(model, **agent_kwargs)


def _model(found: Target, kwargs: dict[str, Any]) -> Any:
    if found.openai_compatible:
        models = require("pydantic_ai.models.openai", "pydantic-ai-slim[openai]")
        providers = require("pydantic_ai.providers.openai", "pydantic-ai-slim[openai]")
        provider = providers.OpenAIProvider(base_url=found.base_url, api_key=found.key_or_placeholder())
        return models.OpenAIChatModel(found.model, provider=provider, **kwargs)
    name, model_class, provider_class, package = _NATIVE[found.provider]
    models = require(f"pydantic_ai.models.{name}", package)
    providers = require(f"pydantic_ai.providers.{name}", package)
    provider = getattr(providers, provider_class)(api_key=found.key_or_placeholder())
    return getattr(models, model_class)(found.model, provider=provider, **kwargs)
