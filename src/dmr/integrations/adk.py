"""Google ADK: route every model call of an agent with a ``before_model_callback``.

::

    from google.adk.agents import LlmAgent
    from dmr.integrations.adk import dynamic_model_selector

    agent = LlmAgent(name="helper", model="gemini-2.5-flash",
                     before_model_callback=dynamic_model_selector)

Before each call the callback routes the latest user turn of the request (earlier turns are the
history), with what the request needs of its model (``function_calling`` when it declares
functions, ``vision`` when a part holds an image, ``json_schema`` when the agent has an
``output_schema``), and puts the routed model in ``llm_request.model``. ADK's ``Gemini`` sends that
name as it is, so for Gemini routed to Google nothing else changes. ``LiteLlm`` ignores
``llm_request.model`` (it always sends its own ``model``, to its own endpoint), so for a ``LiteLlm``
agent, or any agent routed away from Gemini, the callback replaces the agent's model once with a
thin ADK model that hands each request to the model named in it: a ``LiteLlm`` with the target's
endpoint and key (the registry's provider: Anthropic's own API, not Vertex AI), or a ``Gemini``.
The choice travels with the request, so concurrent sessions of one agent do not race (only two
providers serving one model name at different endpoints would share an entry). Keep
generation settings in the agent's ``generate_content_config``: ADK passes them to every backend.

``make_model_selector(router)`` binds a Router of your own; ``get_model(task)`` is the ADK model
for one task, to pass as ``LlmAgent(model=...)`` (``needs=["function_calling"]`` for an agent with
tools).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import Any, Iterable

from dmr.errors import InputError
from dmr.integrations.needs import needs_of
from dmr.integrations.target import RoutedModels, Target, history_of, require, target, task_of

__all__ = ["dynamic_model_selector", "get_model", "make_model_selector"]

_PACKAGE = "google-adk"
# Request model name -> the ADK model that serves it; filled by the callback, read per request.
_ROUTES: dict[str, Any] = {}
_LOCK = threading.Lock()


def get_model(task: Any, *, router: Any = None, needs: Iterable[str] | None = None, **kwargs: Any) -> Any:
    """The ADK model for ``task`` (and ``needs``): ``Gemini`` for Google, else ``LiteLlm``
    (``kwargs`` go to it)."""
    return _build(target(task, router=router, needs=needs), **kwargs)


def make_model_selector(router: Any = None) -> Callable[..., None]:
    """A ``before_model_callback`` that routes with ``router`` (default: dmr's process-wide one).
    It returns None, so ADK goes on to call the model."""

    def dynamic_model_selector(callback_context: Any, llm_request: Any) -> None:
        _select(router, callback_context, llm_request)

    return dynamic_model_selector


dynamic_model_selector = make_model_selector()
dynamic_model_selector.__doc__ = "A ``before_model_callback`` routing each call with dmr's default router."


def _build(t: Target, **kwargs: Any) -> Any:
    if t.provider == "google":
        # Gemini's client reads GOOGLE_API_KEY (or Vertex AI settings) itself.
        return require("google.adk.models", _PACKAGE).Gemini(model=t.model, **kwargs)
    require("google.adk.models", _PACKAGE)
    require("litellm", "litellm")  # ADK's LiteLlm needs it and google-adk does not install it
    lite_llm = require("google.adk.models.lite_llm", _PACKAGE)
    if t.openai_compatible:
        kwargs.setdefault("api_base", t.base_url)
    return lite_llm.LiteLlm(model=t.litellm_model, api_key=t.key_or_placeholder(), **kwargs)


# One ADK model per (provider, model, endpoint), shared by every agent the callback serves.
_BUILT = RoutedModels(_build)


def _select(router: Any, callback_context: Any, llm_request: Any) -> None:
    contents = llm_request.contents
    try:
        t = target(task_of(contents), router=router, history=history_of(contents), needs=_needs(llm_request))
    except InputError:
        return  # nothing to route on (no text yet): the agent's own model answers
    gemini = require("google.adk.models", _PACKAGE).Gemini
    routed_llm = _routed_llm_class()
    # ADK hands callbacks no public way to the agent that is calling.
    agent = callback_context._invocation_context.agent
    with _LOCK:
        llm = agent.canonical_model
        fallback = llm.fallback if isinstance(llm, routed_llm) else llm
        if t.provider == "google" and isinstance(fallback, gemini):
            llm_request.model = t.model  # Gemini sends the request's model name as it is
            return
        if not isinstance(llm, routed_llm):
            agent.model = routed_llm(model=llm.model, fallback=llm)
    name = t.model if t.provider == "google" else t.litellm_model
    _ROUTES[name] = _BUILT.get(t)
    llm_request.model = name


def _needs(llm_request: Any) -> list[str]:
    # Only function declarations are function calling: a built-in tool (google_search) is Gemini's own.
    config = llm_request.config
    functions = [f for tool in (config.tools or []) for f in (getattr(tool, "function_declarations", None) or [])]
    schema = config.response_schema is not None or getattr(config, "response_json_schema", None) is not None
    return needs_of(llm_request.contents, tools=functions, json_schema=schema)


@cache
def _routed_llm_class() -> type:
    base_llm = require("google.adk.models", _PACKAGE).BaseLlm

    class RoutedLlm(base_llm):  # type: ignore[misc, valid-type]
        """Serves each request with the model the callback named in ``llm_request.model``;
        requests it did not route go to ``fallback``, the agent's own model."""

        fallback: base_llm  # type: ignore[valid-type]

        def _for(self, llm_request: Any) -> Any:
            return _ROUTES.get(llm_request.model or "", self.fallback)

        async def generate_content_async(self, llm_request: Any, stream: bool = False) -> Any:
            async for response in self._for(llm_request).generate_content_async(llm_request, stream=stream):
                yield response

        def connect(self, llm_request: Any) -> Any:
            return self._for(llm_request).connect(llm_request)

    return RoutedLlm
