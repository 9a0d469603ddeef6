"""dmr — the dynamic model router.

Picks, for each LLM task, the cheapest model that will do it well, before the call is made::

    import dmr
    decision = dmr.classify("What is 2+2?")
    decision.tier, decision.model_name

``import dmr`` is light: the router, registry and configuration load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dmr.errors import (
    BudgetExceededError,
    ConfigError,
    DmrError,
    InputError,
    NotAvailableError,
    PolicyError,
    ProviderError,
    RegistryError,
)
from dmr.types import (
    Decision,
    ModelTier,
    TaskComplexity,
    TaskType,
    Verdict,
    register_task_type,
    set_tier_levels,
)

__version__ = "0.1.0"

__all__ = [
    "ABTest",
    "BudgetExceededError",
    "ConfigError",
    "Decision",
    "DmrError",
    "InputError",
    "KeywordPack",
    "ModelRegistry",
    "ModelTier",
    "NotAvailableError",
    "PolicyError",
    "ProviderError",
    "RegistryError",
    "Router",
    "ShadowMode",
    "TaskComplexity",
    "TaskType",
    "Verdict",
    "classify",
    "register_l3_strategy",
    "register_layer",
    "register_model_cost",
    "register_provider",
    "register_task_type",
    "register_tokenizer",
    "route_model",
    "set_tier_levels",
]

# Names loaded on first access (PEP 562), so that `import dmr` stays cheap.
_LAZY = {
    "ABTest": "dmr.experiments",
    "KeywordPack": "dmr.packs",
    "ModelRegistry": "dmr.registry",
    "Router": "dmr.router",
    "ShadowMode": "dmr.experiments",
    "classify": "dmr.router",
    "register_l3_strategy": "dmr.layers.embedding",
    "register_layer": "dmr.layers",
    "register_model_cost": "dmr.registry",
    "register_provider": "dmr.registry",
    "register_tokenizer": "dmr.tokens",
    "route_model": "dmr.decorators",
}

if TYPE_CHECKING:
    from dmr.decorators import route_model
    from dmr.experiments import ABTest, ShadowMode
    from dmr.layers import register_layer
    from dmr.layers.embedding import register_l3_strategy
    from dmr.packs import KeywordPack
    from dmr.registry import ModelRegistry, register_model_cost, register_provider
    from dmr.router import Router, classify
    from dmr.tokens import register_tokenizer


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dmr' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
