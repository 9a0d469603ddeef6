"""OpenAI Agents SDK: the routed model as the SDK's model object."""

from __future__ import annotations

import asyncio
import sys

import pytest

from dmr.errors import NotAvailableError
from dmr.integrations import target
from dmr.integrations.openai_agents import get_openai_agent_model

from integration_support import in_own_thread, offline_router
from recording_proxy import EASY, HARD, MODELS

import agents  # noqa: E402


@pytest.fixture(autouse=True)
def _no_trace_export(monkeypatch):
    """The SDK would export each run's trace to OpenAI: never from this suite."""
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    agents.set_tracing_disabled(True)
    # LiteLLM downloads its price list when imported unless told to use its bundled copy.
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.mark.service("llm")
@pytest.mark.parametrize(("prompt", "model"), [(EASY, MODELS["low"]), (HARD, MODELS["high"])])
def test_an_agent_calls_the_routed_model(router, recorder, prompt, model):
    from agents import Agent, ModelSettings

    agent = Agent(name="helper", instructions="Answer in one word.",
                  model=get_openai_agent_model(prompt, router=router),
                  model_settings=ModelSettings(max_tokens=8))
    result = in_own_thread(lambda: agents.Runner.run_sync(agent, prompt))
    assert isinstance(result.final_output, str)
    assert recorder.models == [model]


def test_an_openai_compatible_provider_gets_its_own_client(monkeypatch):
    from dmr import Router

    model = get_openai_agent_model(EASY, router=offline_router())
    assert isinstance(model, agents.OpenAIChatCompletionsModel) and model.model == MODELS["low"]
    assert str(model._client.base_url) == "http://127.0.0.1:9/v1/"
    assert model._client.api_key == "not-needed"  # a local server without a key variable
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    openai = get_openai_agent_model(HARD, router=Router(provider="openai", layer2_enabled=False))
    assert str(openai._client.base_url) == "https://api.openai.com/v1/" and openai._client.api_key == "sk-test"
    other = get_openai_agent_model(HARD, router=offline_router(), api_key="sk-given")
    assert other._client.api_key == "sk-given"


def test_needs_pass_over_a_model_that_lacks_them():
    router = offline_router(limited=True)
    assert get_openai_agent_model(EASY, router=router).model == MODELS["low"]
    assert get_openai_agent_model(EASY, router=router, needs=["function_calling"]).model == MODELS["medium"]


@pytest.mark.parametrize("provider", ["anthropic", "google"])
def test_native_providers_go_through_litellm(monkeypatch, provider):
    from dmr import Router

    router = Router(provider=provider, layer2_enabled=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("GOOGLE_API_KEY", "sk-test")
    found = target(HARD, router=router)
    model = get_openai_agent_model(HARD, router=router)
    from agents.extensions.models.litellm_model import LitellmModel

    assert isinstance(model, LitellmModel)
    assert (model.model, model.api_key, model.base_url) == (found.litellm_model, "sk-test", None)
    assert model.model.startswith("anthropic/" if provider == "anthropic" else "gemini/")


def test_without_litellm_the_error_names_the_extra(monkeypatch):
    from dmr import Router

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setitem(sys.modules, "litellm", None)
    monkeypatch.delitem(sys.modules, "agents.extensions.models.litellm_model", raising=False)
    with pytest.raises(NotAvailableError, match=r"openai-agents\[litellm\]"):
        get_openai_agent_model(HARD, router=Router(provider="anthropic", layer2_enabled=False))


def test_without_the_sdk_the_error_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "agents", None)
    with pytest.raises(NotAvailableError, match="pip install 'openai-agents'"):
        get_openai_agent_model(EASY, router=offline_router())


@pytest.mark.service("llm")
def test_the_sdks_default_responses_model_runs_through_the_dmr_proxy(router, recorder):
    """Without dmr in the agent's code: the SDK's default model class (the Responses API) pointed
    at `dmr serve`, which routes each turn."""
    from agents import Agent, ModelSettings, OpenAIResponsesModel
    from openai import AsyncOpenAI
    from server.proxy_support import LiveServer

    from dmr.server import create_app

    async def run(live_url: str, prompt: str):
        async with AsyncOpenAI(base_url=f"{live_url}/v1", api_key="unused", max_retries=0) as client:
            agent = Agent(name="helper", instructions="Answer in one word.",
                          model=OpenAIResponsesModel(model="dmr", openai_client=client),
                          model_settings=ModelSettings(max_tokens=8, store=False))
            return await agents.Runner.run(agent, prompt)

    with LiveServer(create_app(router)) as live:
        results = [in_own_thread(lambda p=p: asyncio.run(run(live.url, p))) for p in (EASY, HARD)]
    assert recorder.models == [MODELS["low"], MODELS["high"]]
    assert all(isinstance(r.final_output, str) and r.final_output for r in results)
    assert recorder.bodies[0]["messages"][0] == {"role": "system", "content": "Answer in one word."}
