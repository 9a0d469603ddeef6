"""LlamaIndex: an LLM for one task, or one LLM that routes every call.

::

    from dmr.integrations.llamaindex import DynamicLLM, get_llm

    llm = get_llm("Summarise this contract …", max_tokens=256)  # OpenAILike, Anthropic, GoogleGenAI
    llm.complete("Summarise this contract …")

    llm = DynamicLLM(max_tokens=256)          # routes each chat / complete / stream / async call
    llm.complete("hi")                         # on its latest user turn: a low-tier model here
    llm.chat([ChatMessage(role="user", content="Design a multi-region database …")])  # high tier
    llm.last_decision.tier

An OpenAI-compatible provider becomes ``llama_index.llms.openai_like.OpenAILike`` (a chat model at
the provider's endpoint); Anthropic and Google become ``Anthropic`` / ``GoogleGenAI`` from their
llama-index packages. Keyword arguments go to that constructor. ``DynamicLLM`` is a
``FunctionCallingLLM``: pass ``is_function_calling_model=True`` to use it in a ``FunctionAgent``. A
call with tools, an ``ImageBlock`` in its messages or a JSON schema ``response_format`` goes to a
model whose registry entry does not say it lacks that (``get_llm(task, needs=[...])`` for one task).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from dmr.errors import NotAvailableError
from dmr.integrations.needs import openai_needs
from dmr.integrations.target import RoutedModels, Target, atarget, history_of, lazy_classes, require, target, task_of

__all__ = ["DynamicLLM", "get_llm"]

# provider -> (module, pip package, class)
_NATIVE = {
    "anthropic": ("llama_index.llms.anthropic", "llama-index-llms-anthropic", "Anthropic"),
    "google": ("llama_index.llms.google_genai", "llama-index-llms-google-genai", "GoogleGenAI"),
}


def get_llm(task: Any, *, router: Any = None, needs: Iterable[str] | None = None, **kwargs: Any) -> Any:
    """A LlamaIndex LLM for the model the router picks for ``task`` (and ``needs``, such as
    ``["function_calling"]``); ``kwargs`` (temperature, max_tokens, context_window, …) go to its
    constructor and override what the router set."""
    return _llm(target(task, router=router, needs=needs), kwargs)


def _llm(found: Target, kwargs: dict[str, Any]) -> Any:
    if found.openai_compatible:
        cls = require("llama_index.llms.openai_like", "llama-index-llms-openai-like").OpenAILike
        options = {"model": found.model, "api_base": found.base_url, "is_chat_model": True, **kwargs}
    elif found.provider in _NATIVE:
        module, package, name = _NATIVE[found.provider]
        cls = getattr(require(module, package), name)
        options = {"model": found.model, **kwargs}
    else:  # pragma: no cover - every provider is OpenAI-compatible or in _NATIVE
        raise NotAvailableError(f"no LlamaIndex LLM for provider {found.provider!r}")
    if "api_key" not in options:
        options["api_key"] = found.key_or_placeholder()
    return cls(**options)


def _build() -> type:
    base = require("llama_index.core.llms.function_calling", "llama-index-core").FunctionCallingLLM
    from llama_index.core.base.llms.types import ChatMessage, LLMMetadata
    from llama_index.core.bridge.pydantic import Field, PrivateAttr
    from llama_index.core.constants import DEFAULT_CONTEXT_WINDOW, DEFAULT_NUM_OUTPUTS

    own_fields = set(base.model_fields)

    class DynamicLLM(base):  # type: ignore[misc, valid-type]
        """An LLM that routes every call on its messages (or prompt) and delegates to the routed LLM.

        ``router`` defaults to dmr's process-wide router; other keyword arguments that are not
        LlamaIndex's own (callback_manager, system_prompt, …) go to each routed LLM's constructor.
        The routed LLMs are built once per (provider, model, endpoint) and share the callback
        manager, so their events reach the same handlers."""

        router: Any = Field(default=None, exclude=True)
        llm_kwargs: dict[str, Any] = Field(default_factory=dict)
        _routed: Any = PrivateAttr(default=None)

        def __init__(self, router: Any = None, **kwargs: Any) -> None:
            own = {name: kwargs.pop(name) for name in list(kwargs) if name in own_fields}
            super().__init__(router=router, llm_kwargs=kwargs, **own)
            self._routed = RoutedModels(
                lambda found: _llm(found, {"callback_manager": self.callback_manager, **self.llm_kwargs}))

        @classmethod
        def class_name(cls) -> str:
            return "dmr_dynamic_llm"

        @property
        def metadata(self) -> LLMMetadata:
            options = self.llm_kwargs
            return LLMMetadata(
                context_window=options.get("context_window", DEFAULT_CONTEXT_WINDOW),
                num_output=options.get("max_tokens") or DEFAULT_NUM_OUTPUTS,
                is_chat_model=True,
                is_function_calling_model=options.get("is_function_calling_model", False),
                model_name="dmr-dynamic",
            )

        @property
        def last_decision(self) -> Any:
            """The Decision behind the latest call (None before the first)."""
            return self._routed.last_decision

        def _route(self, messages: Any, kwargs: dict[str, Any]) -> Any:
            return self._routed.get(target(task_of(messages), router=self.router, history=history_of(messages),
                                           needs=openai_needs(messages, kwargs)))

        async def _aroute(self, messages: Any, kwargs: dict[str, Any]) -> Any:
            return self._routed.get(await atarget(task_of(messages), router=self.router,
                                                  history=history_of(messages), needs=openai_needs(messages, kwargs)))

        # chat_with_tools calls chat with what _prepare_chat_with_tools returned: the tools as ``tools``.
        def chat(self, messages: Sequence[Any], **kwargs: Any) -> Any:
            return self._route(messages, kwargs).chat(messages, **kwargs)

        def stream_chat(self, messages: Sequence[Any], **kwargs: Any) -> Any:
            return self._route(messages, kwargs).stream_chat(messages, **kwargs)

        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            return self._route(prompt, kwargs).complete(prompt, formatted=formatted, **kwargs)

        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            return self._route(prompt, kwargs).stream_complete(prompt, formatted=formatted, **kwargs)

        async def achat(self, messages: Sequence[Any], **kwargs: Any) -> Any:
            return await (await self._aroute(messages, kwargs)).achat(messages, **kwargs)

        async def astream_chat(self, messages: Sequence[Any], **kwargs: Any) -> Any:
            return await (await self._aroute(messages, kwargs)).astream_chat(messages, **kwargs)

        async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            return await (await self._aroute(prompt, kwargs)).acomplete(prompt, formatted=formatted, **kwargs)

        async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            return await (await self._aroute(prompt, kwargs)).astream_complete(prompt, formatted=formatted, **kwargs)

        def _prepare_chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None,
                                     chat_history: list[Any] | None = None, verbose: bool = False,
                                     allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                                     **kwargs: Any) -> dict[str, Any]:
            # Route now so the tools are formatted for the model that chat() will then pick for
            # the same messages.
            turn = ChatMessage(role="user", content=user_msg) if isinstance(user_msg, str) else user_msg
            messages = [*(chat_history or []), *([turn] if turn is not None else [])]
            llm = self._route(messages, {"tools": tools})
            if not isinstance(llm, base):
                raise NotAvailableError(f"{type(llm).__name__} cannot call tools")
            return llm._prepare_chat_with_tools_compat(
                tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
                allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs)

        # Tool calls are read by the LLM that answered last: routed LLMs share one class (one
        # provider) unless residency or a tenant's settings switch provider between calls.
        def _validate_chat_with_tools_response(self, response: Any, tools: Sequence[Any],
                                               allow_parallel_tool_calls: bool = False, **kwargs: Any) -> Any:
            return self._routed.last_model._validate_chat_with_tools_response(
                response, tools, allow_parallel_tool_calls=allow_parallel_tool_calls, **kwargs)

        def get_tool_calls_from_response(self, response: Any, error_on_no_tool_call: bool = True,
                                         **kwargs: Any) -> list[Any]:
            if self._routed.last_model is None:
                raise NotAvailableError("DynamicLLM has made no call yet, so it has no tool calls to read")
            return self._routed.last_model.get_tool_calls_from_response(
                response, error_on_no_tool_call=error_on_no_tool_call, **kwargs)

    return DynamicLLM


# PEP 562: the class subclasses LlamaIndex's FunctionCallingLLM, so LlamaIndex loads only on access.
__getattr__ = lazy_classes(__name__, {"DynamicLLM": _build})
