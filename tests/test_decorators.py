"""``@route_model``: the routed model is injected into each call."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from dmr.decorators import route_model
from dmr.router import Router

EASY = "What is 2+2?"
HARD = "Design a CQRS architecture for a distributed order system with event sourcing"


def test_the_routed_model_is_injected():
    @route_model(provider="anthropic")
    def call(task, model_name=None):
        return model_name

    assert call(EASY) == Router(provider="anthropic").classify(EASY).model_name == "claude-haiku-4-5-20251001"
    assert call(task=HARD) == "claude-opus-4-7"


def test_an_explicit_model_name_wins():
    @route_model(provider="anthropic")
    def call(task, model_name=None):
        return model_name

    assert call(HARD, model_name="my-own-model") == "my-own-model"
    assert call(HARD, "positional-model") == "positional-model"


def test_async_functions_stay_async():
    @route_model(provider="openai")
    async def call(task, *, model_name=None):
        await asyncio.sleep(0)
        return model_name

    assert inspect.iscoroutinefunction(call)
    assert asyncio.run(call(EASY)) == "gpt-4o-mini"
    assert asyncio.run(call(EASY, model_name="mine")) == "mine"


def test_a_function_without_the_task_parameter_is_a_type_error():
    with pytest.raises(TypeError, match=r"prompt_only\(\) has no parameter 'task'"):
        @route_model()
        def prompt_only(prompt, model_name=None):
            return model_name


def test_calling_without_the_task_is_a_type_error():
    @route_model(provider="openai")
    def call(task, model_name=None):
        return model_name

    with pytest.raises(TypeError, match="missing required argument: 'task'"):
        call()


def test_a_default_task_is_routed():
    @route_model(provider="openai")
    def call(task=HARD, model_name=None):
        return model_name

    assert call() == "gpt-4.1"


def test_parameter_names_and_a_given_router():
    router = Router(provider="google")

    @route_model(router=router, task_param="prompt", model_param="model")
    def call(prompt, model=None):
        return model

    assert call(EASY) == router.classify(EASY).model_name == "gemini-2.5-flash"


def test_metadata_is_kept_and_the_router_is_built_once(monkeypatch):
    built = []
    original = Router.__init__

    def counting(self, **options):
        built.append(options)
        original(self, **options)

    monkeypatch.setattr(Router, "__init__", counting)

    @route_model(provider="mistral", escalation_threshold=0.5)
    def call(task, model_name=None):
        """Docs."""
        return model_name

    assert built == []  # nothing is built at decoration time
    call(EASY)
    call(HARD)
    assert built == [{"escalation_threshold": 0.5, "provider": "mistral"}]
    assert call.__name__ == "call" and call.__doc__ == "Docs."


def test_bad_router_options_surface_on_first_call():
    @route_model(provider="nope")
    def call(task, model_name=None):
        return model_name

    with pytest.raises(ValueError, match="provider 'nope'"):
        call(EASY)
