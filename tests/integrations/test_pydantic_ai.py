"""Pydantic AI: the routed model as a model object, a model string or a ready agent."""

from __future__ import annotations

import sys

import pytest

from dmr.errors import NotAvailableError
from dmr.integrations import target
from dmr.integrations.pydantic_ai import get_agent, get_model, get_model_string

from integration_support import in_own_thread, offline_router
from recording_proxy import EASY, HARD, MODELS

import pydantic_ai  # noqa: E402


@pytest.mark.service("llm")
@pytest.mark.parametrize(("prompt", "model"), [(EASY, MODELS["low"]), (HARD, MODELS["high"])])
def test_an_agent_for_the_task_calls_the_routed_model(router, recorder, prompt, model):
    agent = get_agent(prompt, router=router, instructions="Answer in one word.")
    result = in_own_thread(lambda: agent.run_sync(prompt, model_settings={"max_tokens": 8}))
    assert isinstance(result.output, str)
    assert recorder.models == [model]


@pytest.mark.service("llm")
def test_the_model_object_points_at_the_provider_endpoint(router, recorder):
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel

    model = get_model(EASY, router=router, settings={"temperature": 0})
    assert isinstance(model, OpenAIChatModel)
    assert (model.model_name, model.base_url.rstrip("/")) == (MODELS["low"], recorder.base_url)
    assert model.settings == {"temperature": 0}
    in_own_thread(lambda: Agent(model).run_sync(EASY, model_settings={"max_tokens": 8}))
    assert recorder.models == [MODELS["low"]]
    assert recorder.bodies[0]["temperature"] == 0


@pytest.mark.service("llm")
def test_an_agent_with_tools_gets_a_model_that_takes_them(limited_router, recorder):
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    agent = get_agent(EASY, router=limited_router, needs=["function_calling"], tools=[add])
    in_own_thread(lambda: agent.run_sync(EASY, model_settings={"max_tokens": 8}))
    assert set(recorder.models) == {MODELS["medium"]} and all(body["tools"] for body in recorder.bodies)
    assert get_model(EASY, router=limited_router).model_name == MODELS["low"]


def test_a_model_string_cannot_carry_another_endpoint():
    with pytest.raises(NotAvailableError, match="get_model"):
        get_model_string(EASY, router=offline_router())


def test_openai_itself_is_a_plain_model_string(monkeypatch):
    from dmr import Router
    from pydantic_ai.models.openai import OpenAIChatModel

    router = Router(provider="openai", layer2_enabled=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    name = target(HARD, router=router).model
    assert get_model_string(HARD, router=router) == f"openai:{name}"
    model = get_model(HARD, router=router)
    assert isinstance(model, OpenAIChatModel) and model.base_url == "https://api.openai.com/v1/"
    assert model.client.api_key == "sk-test"


def test_google_is_native(monkeypatch):
    from dmr import Router
    from pydantic_ai.models import infer_model
    from pydantic_ai.models.google import GoogleModel

    router = Router(provider="google", layer2_enabled=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "g-test")
    name = target(HARD, router=router).model
    model = get_model(HARD, router=router)
    assert isinstance(model, GoogleModel) and model.model_name == name
    assert model.system == "google"
    string = get_model_string(HARD, router=router)
    assert string == f"google:{name}"
    assert isinstance(infer_model(string), GoogleModel)  # the string is one Pydantic AI accepts
    monkeypatch.setattr(pydantic_ai, "__version__", "1.9.0")
    assert get_model_string(HARD, router=router) == f"google-gla:{name}"  # the 1.x spelling


def test_anthropic_is_native_and_names_its_extra(monkeypatch):
    from dmr import Router

    router = Router(provider="anthropic", layer2_enabled=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    assert get_model_string(HARD, router=router) == f"anthropic:{target(HARD, router=router).model}"
    monkeypatch.setitem(sys.modules, "anthropic", None)
    for module in ("pydantic_ai.models.anthropic", "pydantic_ai.providers.anthropic"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(NotAvailableError, match=r"pydantic-ai-slim\[anthropic\]"):
        get_model(HARD, router=router)


def test_a_missing_key_names_the_variable(monkeypatch):
    from dmr import Router

    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(NotAvailableError, match="GOOGLE_API_KEY"):
        get_model(EASY, router=Router(provider="google", layer2_enabled=False))


def test_without_pydantic_ai_the_error_names_the_package(monkeypatch):
    # None in sys.modules makes an import fail, even of a submodule imported earlier.
    for name in ["pydantic_ai", *(m for m in sys.modules if m.startswith("pydantic_ai."))]:
        monkeypatch.setitem(sys.modules, name, None)
    router = offline_router()
    for call in (get_model, get_agent, get_model_string):
        with pytest.raises(NotAvailableError, match="pip install 'pydantic-ai-slim"):
            call(EASY, router=router)
