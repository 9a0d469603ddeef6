"""AutoGen (AG2): the ``llm_config`` for the model the router picks for a task.

::

    from autogen import ConversableAgent
    from dmr.integrations.autogen import get_autogen_llm_config

    task = "Summarise this contract …"
    agent = ConversableAgent("analyst", llm_config=get_autogen_llm_config(task, temperature=0))
    agent.generate_reply(messages=[{"role": "user", "content": task}])

The result is the classic dict, ``{"config_list": [entry], **kwargs}``: keyword arguments are
``LLMConfig`` options (temperature, max_tokens, timeout, cache_seed, …); edit ``config_list[0]``
for per-model fields. The entry has ``api_type`` ``"openai"`` for an OpenAI-compatible provider
(with the provider's ``base_url``), ``"anthropic"`` or ``"google"`` for AG2's native clients
(``ag2[anthropic]`` / ``ag2[gemini]``, at their default endpoints), and the registry's prices as
AG2's ``price`` so its cost tracking matches dmr's.

``get_openai_agent_model`` (the OpenAI Agents SDK) is importable from here too.
"""

from __future__ import annotations

from typing import Any, Iterable

from dmr.integrations.openai_agents import get_openai_agent_model
from dmr.integrations.target import require, target

__all__ = ["get_autogen_llm_config", "get_openai_agent_model"]

# provider -> (AG2's api_type, the module its client needs, the pip package that brings it)
_NATIVE = {
    "anthropic": ("anthropic", "anthropic", "ag2[anthropic]"),
    "google": ("google", "google.genai", "ag2[gemini]"),
}


def get_autogen_llm_config(task: Any, *, router: Any = None, needs: Iterable[str] | None = None,
                           **kwargs: Any) -> dict[str, Any]:
    """AG2's ``llm_config`` for the model the router picks for ``task`` (and ``needs``, such as
    ``["function_calling"]`` for an agent with tools); ``kwargs`` are top-level options
    (temperature, max_tokens, …) next to ``config_list``."""
    if router is None:
        from dmr.router import default_router

        router = default_router()
    found = target(task, router=router, needs=needs)
    require("autogen", "ag2[openai]")
    if found.openai_compatible:
        entry: dict[str, Any] = {"model": found.model, "api_key": found.key_or_placeholder(), "api_type": "openai"}
        if found.base_url:
            entry["base_url"] = found.base_url
    else:
        api_type, module, package = _NATIVE[found.provider]
        require(module, package)
        entry = {"model": found.model, "api_key": found.key_or_placeholder(), "api_type": api_type}
    spec = router.registry.model(found.model)
    if spec is not None and spec.priced:
        # AG2 prices per 1,000 tokens, the registry per million.
        entry["price"] = [spec.input_per_1m / 1000, spec.output_per_1m / 1000]
    return {"config_list": [entry], **kwargs}
