"""Provider adapters for Layer 2: one small module per provider behind one protocol.

An adapter turns ``complete_json(system, user, schema, timeout=…, max_tokens=…)`` into one call of
its provider's official SDK and returns a :class:`Completion` (the answer and the token usage the
provider reported). Adapters are registered by name; the built-ins are registered by module path,
so an SDK is imported only when its adapter is first built::

    from dmr.providers import register_adapter
    register_adapter("myllm", MyAdapter)       # a class or factory taking ProviderSettings

A provider name with no adapter of its own but with a ``base_url`` uses the OpenAI-compatible
adapter (vLLM, llama.cpp, Ollama, LM Studio, Mistral, Groq, …).
"""

from __future__ import annotations

import importlib
import threading
from typing import Any, Callable, Mapping, Protocol

from dmr.providers.base import (
    Completion,
    InvalidAnswer,
    ProviderCallError,
    ProviderSettings,
    Usage,
    missing_sdk,
)

__all__ = [
    "Completion",
    "InvalidAnswer",
    "Provider",
    "ProviderCallError",
    "ProviderSettings",
    "Usage",
    "adapter_names",
    "build_adapter",
    "missing_sdk",
    "register_adapter",
    "resolve_settings",
    "unregister_adapter",
]


class Provider(Protocol):
    """What Layer 2 needs from a provider."""

    name: str

    def complete_json(self, system: str, user: str, schema: Mapping[str, Any], *,
                      timeout: float, max_tokens: int) -> Completion: ...


Factory = Callable[[ProviderSettings], Provider]

_LOCK = threading.Lock()
# Built-ins by "module:attribute", resolved on first use so that no SDK loads before it is needed.
_ADAPTERS: dict[str, Factory | str] = {
    "openai": "dmr.providers.openai_compat:OpenAIAdapter",
    "anthropic": "dmr.providers.anthropic:AnthropicAdapter",
    "google": "dmr.providers.google:GoogleAdapter",
}
OPENAI_COMPATIBLE = "openai"


def register_adapter(name: str, factory: Factory | str) -> None:
    """Register ``factory`` (a callable taking :class:`ProviderSettings`, or ``"module:attr"``)
    as the adapter for provider ``name``; it replaces any adapter of that name."""
    if not isinstance(name, str) or not name:
        raise ValueError("an adapter needs a non-empty provider name")
    if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
        raise ValueError(f"adapter for {name!r} must be callable or 'module:attribute'")
    with _LOCK:
        _ADAPTERS[name] = factory


def unregister_adapter(name: str) -> None:
    with _LOCK:
        _ADAPTERS.pop(name, None)


def adapter_names() -> list[str]:
    with _LOCK:
        return sorted(_ADAPTERS)


def _resolve(name: str) -> Factory | None:
    with _LOCK:
        factory = _ADAPTERS.get(name)
    if isinstance(factory, str):
        module, _, attribute = factory.partition(":")
        factory = getattr(importlib.import_module(module), attribute)
    return factory


def resolve_settings(provider: str, model: str | None, base_url: str | None, registry: Any) -> ProviderSettings:
    """How to reach ``provider``: explicit options over its registry entry (model: the entry's
    low-tier model; key: the entry's ``api_key_env``). Raises ``LayerUnavailable`` with how to fix
    it when there is no model to ask or no key."""
    from dmr.layers.base import LayerUnavailable

    entry = registry.provider(provider) if provider in registry.providers() else None
    model = model or (entry.tiers.get("low") if entry is not None else None)
    if not model:
        raise LayerUnavailable(f"Layer 2: provider {provider!r} is not in the model registry; set layer2_model "
                               "(and layer2_base_url for an OpenAI-compatible endpoint)")
    key_env = entry.api_key_env if entry is not None else None
    api_key = entry.api_key() if entry is not None else None
    if key_env and not api_key and not base_url:
        raise LayerUnavailable(f"Layer 2: no API key for {provider}: set {key_env} "
                               "(or give layer2_base_url for an endpoint that needs no key)")
    return ProviderSettings(provider, model, base_url or (entry.base_url if entry is not None else None),
                            api_key, key_env)


def build_adapter(settings: ProviderSettings) -> Provider:
    """The adapter for ``settings.provider`` (or the OpenAI-compatible one when the provider has
    no adapter of its own but has a ``base_url``). Raises ``LayerUnavailable`` when its SDK or key
    is missing, with how to fix it."""
    from dmr.layers.base import LayerUnavailable

    factory = _resolve(settings.provider)
    if factory is None and settings.base_url:
        factory = _resolve(OPENAI_COMPATIBLE)
    if factory is None:
        raise LayerUnavailable(
            f"Layer 2: no adapter for provider {settings.provider!r} and no base_url to reach it as "
            f"an OpenAI-compatible endpoint (adapters: {', '.join(adapter_names())}); set "
            f"layer2_base_url or register_adapter({settings.provider!r}, ...)")
    return factory(settings)

