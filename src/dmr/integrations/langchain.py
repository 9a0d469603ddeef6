"""LangChain: a chat model for one task, or one chat model that routes every call.

::

    from dmr.integrations.langchain import DynamicChatModel, get_chat_model

    llm = get_chat_model("Summarise this contract …", temperature=0)  # ChatOpenAI, ChatAnthropic, …
    llm.invoke("Summarise this contract …")

    chat = DynamicChatModel(max_tokens=256)    # routes each invoke / stream / ainvoke / batch
    chat.invoke("hi")                           # on its latest user turn: a low-tier model here
    chat.invoke("Design a multi-region database …")  # and a high-tier model here
    chat.last_decision.tier

An OpenAI-compatible provider becomes ``langchain_openai.ChatOpenAI`` at the provider's endpoint;
Anthropic and Google become ``ChatAnthropic`` / ``ChatGoogleGenerativeAI`` (from
``langchain-anthropic`` / ``langchain-google-genai``). Keyword arguments go to that constructor.
``DynamicChatModel`` also supports ``bind_tools`` and so ``with_structured_output`` and agents. A
call with tools bound, images in its messages or a JSON schema ``response_format`` goes to a model
whose registry entry does not say it lacks that (``get_chat_model(task, needs=[...])`` for one task).
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Iterable, Iterator, Sequence

from dmr.errors import NotAvailableError
from dmr.integrations.needs import openai_needs
from dmr.integrations.target import RoutedModels, Target, atarget, history_of, lazy_classes, require, target, task_of

__all__ = ["DynamicChatModel", "get_chat_model"]

# provider -> (module, pip package, class, the constructor's key argument)
_NATIVE = {
    "anthropic": ("langchain_anthropic", "langchain-anthropic", "ChatAnthropic", "api_key"),
    "google": ("langchain_google_genai", "langchain-google-genai", "ChatGoogleGenerativeAI", "google_api_key"),
}


def get_chat_model(task: Any, *, router: Any = None, needs: Iterable[str] | None = None, **kwargs: Any) -> Any:
    """A LangChain chat model for the model the router picks for ``task`` (and ``needs``, such as
    ``["function_calling"]``); ``kwargs`` (temperature, max_tokens, …) go to its constructor and
    override what the router set."""
    return _chat_model(target(task, router=router, needs=needs), kwargs)


def _chat_model(found: Target, kwargs: dict[str, Any]) -> Any:
    if found.openai_compatible:
        cls = require("langchain_openai", "langchain-openai").ChatOpenAI
        options = {"model": found.model, "base_url": found.base_url, **kwargs}
        key_name = "api_key"
    elif found.provider in _NATIVE:
        module, package, name, key_name = _NATIVE[found.provider]
        cls = getattr(require(module, package), name)
        options = {"model": found.model, **kwargs}
    else:  # pragma: no cover - every provider is OpenAI-compatible or in _NATIVE
        raise NotAvailableError(f"no LangChain chat model for provider {found.provider!r}")
    if key_name not in options and "api_key" not in options:
        options[key_name] = found.key_or_placeholder()
    return cls(**options)


def _with_tools(model: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Tools bound to the dynamic model (OpenAI-format dicts) in the routed model's own format."""
    if not kwargs.get("tools"):
        return kwargs
    rest = dict(kwargs)
    tools, choice = rest.pop("tools"), rest.pop("tool_choice", None)
    return {**model.bind_tools(tools, tool_choice=choice).kwargs, **rest}


def _build() -> type:
    base = require("langchain_core.language_models", "langchain-core").BaseChatModel
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from pydantic import Field, PrivateAttr

    own_fields = set(base.model_fields)

    class DynamicChatModel(base):  # type: ignore[misc, valid-type]
        """A chat model that routes every call on its messages and delegates to the routed model.

        ``router`` defaults to dmr's process-wide router; other keyword arguments that are not
        LangChain's own (callbacks, tags, cache, …) go to each routed model's constructor. The
        routed models are built once per (provider, model, endpoint)."""

        router: Any = Field(default=None, exclude=True)
        chat_kwargs: dict[str, Any] = Field(default_factory=dict)
        _routed: Any = PrivateAttr(default=None)

        def __init__(self, router: Any = None, **kwargs: Any) -> None:
            own = {name: kwargs.pop(name) for name in list(kwargs) if name in own_fields}
            super().__init__(router=router, chat_kwargs=kwargs, **own)
            self._routed = RoutedModels(lambda found: _chat_model(found, dict(self.chat_kwargs)))

        @property
        def _llm_type(self) -> str:
            return "dmr-dynamic"

        @property
        def last_decision(self) -> Any:
            """The Decision behind the latest call (None before the first)."""
            return self._routed.last_decision

        def _route(self, messages: Sequence[Any], kwargs: dict[str, Any]) -> Any:
            return self._routed.get(target(task_of(messages), router=self.router, history=history_of(messages),
                                           needs=openai_needs(messages, kwargs)))

        async def _aroute(self, messages: Sequence[Any], kwargs: dict[str, Any]) -> Any:
            return self._routed.get(await atarget(task_of(messages), router=self.router,
                                                  history=history_of(messages), needs=openai_needs(messages, kwargs)))

        def _generate(self, messages: list[Any], stop: list[str] | None = None,
                      run_manager: Any = None, **kwargs: Any) -> Any:
            model = self._route(messages, kwargs)
            return model._generate(messages, stop=stop, run_manager=run_manager, **_with_tools(model, kwargs))

        async def _agenerate(self, messages: list[Any], stop: list[str] | None = None,
                             run_manager: Any = None, **kwargs: Any) -> Any:
            model = await self._aroute(messages, kwargs)
            return await model._agenerate(messages, stop=stop, run_manager=run_manager,
                                          **_with_tools(model, kwargs))

        def _stream(self, messages: list[Any], stop: list[str] | None = None,
                    run_manager: Any = None, **kwargs: Any) -> Iterator[Any]:
            model = self._route(messages, kwargs)
            yield from model._stream(messages, stop=stop, run_manager=run_manager, **_with_tools(model, kwargs))

        async def _astream(self, messages: list[Any], stop: list[str] | None = None,
                           run_manager: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
            model = await self._aroute(messages, kwargs)
            async for chunk in model._astream(messages, stop=stop, run_manager=run_manager,
                                              **_with_tools(model, kwargs)):
                yield chunk

        def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> Any:
            """Bind tools for every routed model (each gets them in its own format at call time)."""
            strict = kwargs.pop("strict", None)
            choice = {} if tool_choice is None else {"tool_choice": tool_choice}
            return self.bind(tools=[convert_to_openai_tool(tool, strict=strict) for tool in tools],
                             **choice, **kwargs)

    return DynamicChatModel


# PEP 562: the class subclasses LangChain's BaseChatModel, so LangChain is imported only on access.
__getattr__ = lazy_classes(__name__, {"DynamicChatModel": _build})
