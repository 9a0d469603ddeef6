"""smolagents (Hugging Face): the routed model as a smolagents ``Model``, per task or per call.

::

    from smolagents import ToolCallingAgent
    from dmr.integrations.smolagents import DynamicModel, get_model

    agent = ToolCallingAgent(tools=[], model=DynamicModel())   # each step routed on its own
    model = get_model("Summarise this contract …", temperature=0)

An OpenAI-compatible provider becomes ``OpenAIServerModel`` at the provider's ``base_url``
(``smolagents[openai]``); Anthropic and Google become ``LiteLLMModel`` with LiteLLM's native
model string (``smolagents[litellm]``).

A ``DynamicModel`` step with tools to call from (every step of a ``ToolCallingAgent``), images in
its messages or a JSON schema ``response_format`` goes to a model whose registry entry does not say
it lacks that; ``get_model(task, needs=[...])`` does the same for one task.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Iterable

from dmr.integrations.needs import is_json_schema, needs_of
from dmr.integrations.target import (RoutedModels, Target, history_of, lazy_classes, marked_task, require, target,
                                     task_of)

__all__ = ["DynamicModel", "get_model"]  # noqa: F822 (DynamicModel: see __getattr__)

PACKAGE = "smolagents"
_LABEL = "dmr/dynamic"  # DynamicModel's model_id; the routed model is chosen per call


def _model_for(found: Target, kwargs: dict[str, Any]) -> Any:
    smolagents = require("smolagents", PACKAGE)
    options: dict[str, Any] = {"api_key": found.key_or_placeholder()}
    if found.openai_compatible:
        require("openai", "smolagents[openai]")
        options.update(model_id=found.model, api_base=found.base_url)
        return smolagents.OpenAIServerModel(**{**options, **kwargs})
    require("litellm", "smolagents[litellm]")
    options.update(model_id=found.litellm_model)
    return smolagents.LiteLLMModel(**{**options, **kwargs})


def get_model(task: Any, *, router: Any = None, needs: Iterable[str] | None = None, **kwargs: Any) -> Any:
    """A smolagents model for the model the router picks for ``task`` (and ``needs``, such as
    ``["function_calling"]`` for a ``ToolCallingAgent``); ``kwargs`` (temperature, max_tokens,
    client_kwargs, …) go to its constructor and override the routed settings."""
    return _model_for(target(task, router=router, needs=needs), kwargs)


def _build_dynamic_model() -> type:
    smolagents = require("smolagents", PACKAGE)

    class DynamicModel(smolagents.Model):
        """A smolagents model that routes every generation: it classifies the latest user turn
        (with the turns before it as history) and delegates to the model for that route."""

        def __init__(self, router: Any = None, **kwargs: Any) -> None:
            kwargs.pop("model_id", None)  # from_dict hands our label back
            super().__init__(model_id=_LABEL)
            self.kwargs = kwargs  # for each routed model's constructor (and to_dict)
            self.router = router
            self._routed = RoutedModels(lambda found: _model_for(found, self.kwargs))

        @property
        def last_decision(self) -> Any:
            """The Decision behind the latest call (None before the first)."""
            return self._routed.last_decision

        def model_for(self, messages: Any, tools_to_call_from: list[Any] | None = None,
                      response_format: dict[str, Any] | None = None) -> Any:
            """The smolagents model this message list (with these tools and response format) routes
            to, recording the decision."""
            # smolagents states the task in a "New task:" user turn and adds user turns of its own
            # (plans, "Now proceed and carry out this plan."): every step is routed on the task.
            task = marked_task(messages, "New task:") or task_of(messages)
            needs = needs_of(messages, tools=tools_to_call_from, json_schema=is_json_schema(response_format))
            return self._routed.get(target(task, router=self.router, history=history_of(messages), needs=needs))

        def generate(self, messages: Any, stop_sequences: list[str] | None = None,
                     response_format: dict[str, str] | None = None,
                     tools_to_call_from: list[Any] | None = None, **kwargs: Any) -> Any:
            return self.model_for(messages, tools_to_call_from, response_format).generate(
                messages, stop_sequences=stop_sequences, response_format=response_format,
                tools_to_call_from=tools_to_call_from, **kwargs)

        def generate_stream(self, messages: Any, stop_sequences: list[str] | None = None,
                            response_format: dict[str, str] | None = None,
                            tools_to_call_from: list[Any] | None = None, **kwargs: Any) -> Iterator[Any]:
            yield from self.model_for(messages, tools_to_call_from, response_format).generate_stream(
                messages, stop_sequences=stop_sequences, response_format=response_format,
                tools_to_call_from=tools_to_call_from, **kwargs)

    return DynamicModel


# PEP 562: the subclass needs smolagents, so it is built on first access, not on import.
__getattr__ = lazy_classes(__name__, {"DynamicModel": _build_dynamic_model})
