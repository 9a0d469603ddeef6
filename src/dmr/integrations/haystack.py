"""Haystack: a generator component for the model the router picks for a task.

::

    from dmr.integrations.haystack import get_generator

    generator = get_generator("Summarise this contract …", max_tokens=200)
    reply = generator.run("Summarise this contract …")["replies"][0]

``get_generator`` gives Haystack's string-in generator where the installed Haystack still has one
(``OpenAIGenerator``, Haystack 2.x); Haystack 3 removed it in favour of ``OpenAIChatGenerator``,
which takes a plain string too, so there it returns that. ``get_chat_generator`` always gives the
chat generator. Both work for any OpenAI-compatible provider (its ``base_url`` as
``api_base_url``); Anthropic and Google need Haystack's integration packages
(``anthropic-haystack``, ``google-genai-haystack``). Keyword arguments that the component does not
take (``temperature``, ``max_tokens``, …) go into its ``generation_kwargs``.

The key is passed as ``Secret.from_env_var`` of the provider's variable, so a pipeline that holds
the component can still be serialised; an endpoint without a key variable gets a placeholder token.

Telemetry: dmr sends none, and this module never turns Haystack's on. Haystack itself reports
anonymous usage on ``Pipeline.run`` unless ``HAYSTACK_TELEMETRY_ENABLED=False`` is set before it is
imported.
"""

from __future__ import annotations

import inspect
from typing import Any, Iterable

from dmr.errors import NotAvailableError
from dmr.integrations.target import Target, require, target

__all__ = ["get_chat_generator", "get_generator"]

_PACKAGE = "haystack-ai"
# provider -> (module, pip package, chat generator class)
_NATIVE = {
    "anthropic": ("haystack_integrations.components.generators.anthropic", "anthropic-haystack",
                  "AnthropicChatGenerator"),
    "google": ("haystack_integrations.components.generators.google_genai", "google-genai-haystack",
               "GoogleGenAIChatGenerator"),
}


def get_generator(task: Any, *, router: Any = None, needs: Iterable[str] | None = None, **kwargs: Any) -> Any:
    """A Haystack generator for ``task`` (and ``needs``): ``OpenAIGenerator`` on Haystack 2.x, the
    chat generator (which takes a string as well) on Haystack 3."""
    t = target(task, router=router, needs=needs)
    if t.openai_compatible:
        try:
            from haystack.components.generators import OpenAIGenerator  # removed in Haystack 3
        except ImportError:
            pass
        else:
            return _openai(OpenAIGenerator, t, kwargs)
    return _chat(t, kwargs)


def get_chat_generator(task: Any, *, router: Any = None, needs: Iterable[str] | None = None, **kwargs: Any) -> Any:
    """A Haystack chat generator for ``task`` (and ``needs``, such as ``["function_calling"]`` for
    a generator given tools): ``OpenAIChatGenerator`` or the provider's own."""
    return _chat(target(task, router=router, needs=needs), kwargs)


def _chat(t: Target, kwargs: dict[str, Any]) -> Any:
    if t.openai_compatible:
        chat = require("haystack.components.generators.chat", _PACKAGE)
        return _openai(chat.OpenAIChatGenerator, t, kwargs)
    if t.provider not in _NATIVE:
        raise NotAvailableError(f"the Haystack integration has no generator for provider {t.provider!r}")
    module, package, name = _NATIVE[t.provider]
    api_key = _secret(t)
    cls = getattr(require(module, package), name)
    return cls(model=t.model, api_key=api_key, **_with_generation_kwargs(cls, kwargs))


def _openai(cls: type, t: Target, kwargs: dict[str, Any]) -> Any:
    return cls(model=t.model, api_base_url=t.base_url, api_key=_secret(t), **_with_generation_kwargs(cls, kwargs))


def _secret(t: Target) -> Any:
    secret = require("haystack.utils", _PACKAGE).Secret
    token = t.key_or_placeholder()  # fails now, naming the variable, when the key is missing
    return secret.from_env_var(t.api_key_env) if t.api_key_env else secret.from_token(token)


def _with_generation_kwargs(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Move what ``cls`` does not take as a parameter into its ``generation_kwargs``."""
    accepted = inspect.signature(cls.__init__).parameters
    extra = {key: value for key, value in kwargs.items() if key not in accepted}
    if not extra:
        return kwargs
    kept = {key: value for key, value in kwargs.items() if key in accepted}
    kept["generation_kwargs"] = {**extra, **(kwargs.get("generation_kwargs") or {})}
    return kept
