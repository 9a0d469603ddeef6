"""AutoGen AgentChat (``autogen-agentchat`` and ``autogen-ext``, 0.4 and later): model clients for
the model the router picks.

::

    from autogen_agentchat.agents import AssistantAgent
    from dmr.integrations.autogen_agentchat import DynamicChatCompletionClient, get_model_client

    task = "Summarise this contract …"
    analyst = AssistantAgent("analyst", model_client=get_model_client(task))   # routed once
    assistant = AssistantAgent("assistant", model_client=DynamicChatCompletionClient())  # every call

``get_model_client(task)`` builds autogen-ext's client for the routed model: an OpenAI-compatible
provider gets ``OpenAIChatCompletionClient`` at the provider's ``base_url`` and key
(``autogen-ext[openai]``), Google the same client at Gemini's OpenAI-compatible endpoint, Anthropic
``AnthropicChatCompletionClient`` (``autogen-ext[anthropic]``). A model AutoGen does not know gets
a ``model_info`` from the registry's capabilities (``supports_vision``,
``supports_function_calling``). Keyword arguments go to the client's constructor (``temperature``,
``max_tokens``, ``model_info``, …).

``DynamicChatCompletionClient`` is a ``ChatCompletionClient`` that routes **every call** on its
messages (the latest user message is the task, the ones before it the router's history, so a short
follow-up keeps the tier of the request it follows) and delegates to the routed model's client,
built once per (provider, model, endpoint). A call with ``tools``, an ``Image`` in its messages or
a pydantic model as ``json_output`` (structured output) goes to a model whose registry entry does
not say it lacks that, so its ``model_info`` promises function calling and vision when each
provider's top-tier model has them (vision also when every model's entry says whether it has it).
``last_decision`` holds the latest ``Decision``; usage is summed over every routed client;
``close()`` closes them all; ``count_tokens`` and ``remaining_tokens`` ask the client of the latest
call (autogen-ext counts with tiktoken, which downloads its encodings on first use).

AutoGen 0.4+ is not the ``autogen`` package of AG2 (``dmr.integrations.autogen``). Its
``autogen-core`` pins ``protobuf~=5.29``, which clashes with other frameworks' pins, so it is not in
dmr's ``integrations`` extra: ``pip install 'dynamic-model-router[autogen-agentchat]'``.
"""

from __future__ import annotations

from typing import Any, AsyncGenerator, Iterable, Mapping, Sequence

from dmr.integrations.needs import is_json_schema, needs_of
from dmr.integrations.target import (RoutedModels, Target, _router, atarget, history_of, lazy_classes, require,
                                     target, task_of)
from dmr.types import ModelTier

__all__ = ["DynamicChatCompletionClient", "get_model_client"]

_GEMINI_OPENAI_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"


def get_model_client(task: Any, *, router: Any = None, needs: Iterable[str] | None = None, **kwargs: Any) -> Any:
    """autogen-ext's chat completion client for the model the router picks for ``task`` (and
    ``needs``, such as ``["function_calling"]`` for an agent with tools)."""
    return _client(target(task, router=router, needs=needs), router, dict(kwargs))


def _needs(messages: Sequence[Any], options: Mapping[str, Any]) -> list[str]:
    """What a ``create`` call with these keyword arguments needs of its model."""
    extra = options.get("extra_create_args") or {}
    schema = is_json_schema(options.get("json_output")) or is_json_schema(extra.get("response_format"))
    return needs_of(messages, tools=options.get("tools"), json_schema=schema)


def _capabilities(router: Any, model: str) -> Mapping[str, Any]:
    spec = _router(router).registry.model(model)
    return spec.capabilities if spec is not None else {}


def _model_info(router: Any, model: str) -> dict[str, Any]:
    """An AutoGen ``ModelInfo`` for ``model`` from the registry's capabilities."""
    caps = _capabilities(router, model)
    return {"vision": caps.get("supports_vision") is True,
            "function_calling": caps.get("supports_function_calling") is not False,
            "json_output": True, "structured_output": True, "family": "unknown"}


def _client(found: Target, router: Any, kwargs: dict[str, Any]) -> Any:
    key = kwargs.pop("api_key", None) or found.key_or_placeholder()
    if found.provider == "anthropic":
        module = require("autogen_ext.models.anthropic", "autogen-ext[anthropic]")
        return _with_info(module.AnthropicChatCompletionClient, found, router, kwargs, api_key=key)
    module = require("autogen_ext.models.openai", "autogen-ext[openai]")
    base_url = _GEMINI_OPENAI_URL if found.provider == "google" else found.base_url
    options = {"api_key": key, **({"base_url": base_url} if base_url else {})}
    return _with_info(module.OpenAIChatCompletionClient, found, router, kwargs, **options)


def _with_info(cls: type, found: Target, router: Any, kwargs: dict[str, Any], **options: Any) -> Any:
    """``cls`` for the routed model: with AutoGen's own model info when it knows the model, else
    with one from the registry (AutoGen refuses an unknown model without it)."""
    try:
        return cls(model=found.model, **options, **kwargs)
    except ValueError as exc:
        if "model_info" in kwargs or "model_info" not in str(exc):
            raise
        return cls(model=found.model, model_info=_model_info(router, found.model), **options, **kwargs)


def _build() -> type:
    models = require("autogen_core.models", "autogen-agentchat")

    class DynamicChatCompletionClient(models.ChatCompletionClient):  # type: ignore[misc, valid-type, name-defined]
        """A ChatCompletionClient that routes every call on its messages and delegates to the
        routed model's client. ``router`` defaults to dmr's process-wide router; other keyword
        arguments go to each routed client's constructor."""

        def __init__(self, router: Any = None, **client_kwargs: Any) -> None:
            self._router = router
            self._client_kwargs = client_kwargs
            self._routed = RoutedModels(lambda found: _client(found, self._router, dict(self._client_kwargs)))

        @property
        def last_decision(self) -> Any:
            """The Decision behind the latest call (None before the first)."""
            return self._routed.last_decision

        async def _aroute(self, messages: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
            return self._routed.get(await atarget(task_of(messages), router=self._router,
                                                  history=history_of(messages), needs=_needs(messages, kwargs)))

        def _current(self, messages: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
            """The client of the latest call, or the one ``messages`` route to before any call."""
            client = self._routed.last_model
            if client is None:
                client = self._routed.get(target(task_of(messages), router=self._router,
                                                 history=history_of(messages), needs=_needs(messages, kwargs)))
            return client

        async def create(self, messages: Sequence[Any], **kwargs: Any) -> Any:
            client = await self._aroute(messages, kwargs)
            return await client.create(messages, **kwargs)

        async def create_stream(self, messages: Sequence[Any], **kwargs: Any) -> AsyncGenerator[Any, None]:
            client = await self._aroute(messages, kwargs)
            async for chunk in client.create_stream(messages, **kwargs):
                yield chunk

        async def close(self) -> None:
            for client in self._routed.built():
                await client.close()

        def _usage(self, kind: str) -> Any:
            used = [getattr(client, kind)() for client in self._routed.built()]
            return models.RequestUsage(prompt_tokens=sum(u.prompt_tokens for u in used),
                                       completion_tokens=sum(u.completion_tokens for u in used))

        def actual_usage(self) -> Any:
            return self._usage("actual_usage")

        def total_usage(self) -> Any:
            return self._usage("total_usage")

        def count_tokens(self, messages: Sequence[Any], **kwargs: Any) -> int:
            return self._current(messages, kwargs).count_tokens(messages, **kwargs)

        def remaining_tokens(self, messages: Sequence[Any], **kwargs: Any) -> int:
            return self._current(messages, kwargs).remaining_tokens(messages, **kwargs)

        @property
        def model_info(self) -> Any:
            router = _router(self._router)
            models, tops = _tier_models(router)
            # A call that needs vision or tools climbs its provider's tiers past the models the
            # registry says lack them, up to the top tier (a tenant's max_tier or a budget aside): so
            # each provider's top model must have them. Routing counts an unstated capability as
            # there, AutoGen an unstated vision as none: vision also needs every model to state it.
            stated = all(_capabilities(router, name).get("supports_vision") is not None for name in models)
            infos = [_model_info(router, name) for name in tops]
            return {"vision": bool(infos) and stated and all(i["vision"] for i in infos),
                    "function_calling": all(i["function_calling"] for i in infos),
                    "json_output": True, "structured_output": True, "family": "unknown"}

        @property
        def capabilities(self) -> Any:  # deprecated by AutoGen in favour of model_info
            return self.model_info

    return DynamicChatCompletionClient


def _tier_models(router: Any) -> tuple[set[str], list[str]]:
    """Every model the router's providers (all the registry's when it names none) offer for a
    tier, and each provider's model for its top tier."""
    registry, config = router.registry, router.config
    names = [config.provider] if config.provider else (config.providers or registry.providers())
    top = ModelTier.levels()[-1]
    return ({model for name in names for model in registry.provider(name).tiers.values()},
            [registry.resolve(name, top)[0] for name in names])


# PEP 562: the class subclasses AutoGen's ChatCompletionClient, imported only on access.
__getattr__ = lazy_classes(__name__, {"DynamicChatCompletionClient": _build})
