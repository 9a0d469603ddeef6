"""CrewAI: the routed model as a ``crewai`` LLM, chosen once per task or on every call.

::

    from crewai import Agent
    from dmr.integrations.crewai import DynamicLLM, pick_llm_for_task

    agent = Agent(role="Analyst", goal="Answer questions", backstory="…", llm=DynamicLLM())
    llm = pick_llm_for_task("Summarise this contract …", temperature=0)   # a crewai LLM

An OpenAI-compatible provider is built as ``LLM("openai/<model>", base_url=…)``, which CrewAI
serves with its own OpenAI client (not LiteLLM) because of the custom endpoint. Anthropic and
Google use CrewAI's native classes, which need ``crewai[anthropic]`` / ``crewai[google-genai]``.

A ``DynamicLLM`` call with tools, images in its messages or a ``response_model`` (a JSON schema, as
is a ``response_format`` given to ``DynamicLLM`` itself) goes to a model whose registry entry does
not say it lacks that; ``pick_llm_for_task(task, needs=[...])`` does the same for one task.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Iterable

from dmr.errors import NotAvailableError
from dmr.integrations.needs import is_json_schema, needs_of
from dmr.integrations.target import (RoutedModels, Target, atarget, history_of, lazy_classes, marked_task, require,
                                     target, task_of)

__all__ = ["DynamicLLM", "pick_llm_for_task"]  # noqa: F822 (DynamicLLM: see __getattr__)

PACKAGE = "crewai"
_LABEL = "dmr/dynamic"  # CrewAI requires a model name; the real one is chosen per call
_TASK_ENDS = ("\n\nBegin!", "\n\nProvide your complete response:")
_EXTRAS = {"anthropic": "crewai[anthropic]", "google": "crewai[google-genai]"}


def _llm_for(found: Target, kwargs: dict[str, Any]) -> Any:
    crewai = require("crewai", PACKAGE)
    if found.openai_compatible:
        options = {"model": f"openai/{found.model}", "base_url": found.base_url,
                   "api_key": found.key_or_placeholder()}
    else:
        options = {"model": found.litellm_model, "api_key": found.key_or_placeholder()}
    try:
        return crewai.LLM(**{**options, **kwargs})
    except ImportError as exc:
        extra = _EXTRAS.get(found.provider, "crewai[litellm]")
        raise NotAvailableError(
            f"CrewAI cannot reach {found.provider} without its SDK: pip install '{extra}'") from exc


def _task(messages: Any) -> str:
    # CrewAI states the task in a user turn ("Current Task: …", then fixed wording) and adds user
    # turns of its own later (format reminders, "you MUST give your final answer"): each of the
    # task's calls is routed on the task.
    return marked_task(messages, "Current Task:", _TASK_ENDS) or task_of(messages)


def pick_llm_for_task(task: Any, *, router: Any = None, needs: Iterable[str] | None = None, **kwargs: Any) -> Any:
    """A ``crewai.LLM`` for the model the router picks for ``task`` (and ``needs``, such as
    ``["function_calling"]`` for an agent with tools); ``kwargs`` (temperature, max_tokens, …) go to
    the LLM and override the routed endpoint settings."""
    return _llm_for(target(task, router=router, needs=needs), kwargs)


def _build_dynamic_llm() -> type:
    require("crewai", PACKAGE)
    from crewai.llms import base_llm
    from pydantic import Field, PrivateAttr

    class DynamicLLM(base_llm.BaseLLM):
        """A CrewAI LLM that routes every call: it classifies the latest user turn (with the
        turns before it as history) and delegates to a ``crewai.LLM`` for the routed model."""

        model: str = _LABEL
        llm_type: str = "dmr"
        router: Any = Field(default=None, exclude=True)
        _routed: Any = PrivateAttr(default=None)
        _schema: Any = PrivateAttr(default=None)  # a response_format every routed LLM answers in

        def __init__(self, router: Any = None, **kwargs: Any) -> None:
            kwargs.pop("model", None)  # the routed model is the one to call
            super().__init__(model=_LABEL, router=router, **kwargs)
            self._routed = RoutedModels(lambda found: _llm_for(found, kwargs))
            self._schema = kwargs.get("response_format")

        @property
        def last_decision(self) -> Any:
            """The Decision behind the latest call (None before the first)."""
            return self._routed.last_decision

        def llm_for(self, messages: Any, tools: Any = None, response_model: Any = None) -> Any:
            """The ``crewai.LLM`` this message list (with these tools and response model) routes to,
            recording the decision."""
            return self._routed.get(target(_task(messages), router=self.router, history=history_of(messages),
                                           needs=self._needs(messages, tools, response_model)))

        def _needs(self, messages: Any, tools: Any, response_model: Any) -> list[str]:
            return needs_of(messages, tools=tools, json_schema=is_json_schema(response_model or self._schema))

        def _scoped(self, llm: Any) -> Any:
            # CrewAI scopes an agent's stop words and streaming to *this* object's id; the
            # delegate reads its own, so hand the call's settings on.
            stack = ExitStack()
            stack.enter_context(base_llm.call_stop_override(llm, list(self.stop_sequences)))
            stream = self._effective_stream()
            if stream is not None:
                stack.enter_context(base_llm.call_stream_override(llm, stream))
            return stack

        def call(self, messages: Any, tools: Any = None, callbacks: Any = None,
                 available_functions: Any = None, from_task: Any = None, from_agent: Any = None,
                 response_model: Any = None) -> Any:
            llm = self.llm_for(messages, tools, response_model)
            with self._scoped(llm):
                return llm.call(messages, tools=tools, callbacks=callbacks,
                                available_functions=available_functions, from_task=from_task,
                                from_agent=from_agent, response_model=response_model)

        async def acall(self, messages: Any, tools: Any = None, callbacks: Any = None,
                        available_functions: Any = None, from_task: Any = None,
                        from_agent: Any = None, response_model: Any = None) -> Any:
            llm = self._routed.get(await atarget(_task(messages), router=self.router, history=history_of(messages),
                                                 needs=self._needs(messages, tools, response_model)))
            with self._scoped(llm):
                return await llm.acall(messages, tools=tools, callbacks=callbacks,
                                       available_functions=available_functions, from_task=from_task,
                                       from_agent=from_agent, response_model=response_model)

        def supports_function_calling(self) -> bool:
            # A call with tools goes to a model whose registry entry does not say it lacks them;
            # CrewAI falls back to text tool-calling when an endpoint refuses them.
            return True

        def get_token_usage_summary(self) -> Any:
            from crewai.types.usage_metrics import UsageMetrics

            total = UsageMetrics()
            for llm in self._routed.built():
                total.add_usage_metrics(llm.get_token_usage_summary())
            return total

    return DynamicLLM


# PEP 562: the subclass needs crewai, so it is built on first access, not on import.
__getattr__ = lazy_classes(__name__, {"DynamicLLM": _build_dynamic_llm})
