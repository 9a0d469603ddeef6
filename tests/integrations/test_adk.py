"""Google ADK: the before_model_callback routes each call of one agent, over the wire."""

from __future__ import annotations

import asyncio
import sys

import pytest
from integration_support import PNG, offline_router
from pydantic import BaseModel

from dmr.errors import NotAvailableError

from recording_proxy import EASY, HARD, MODELS


# Importing google.adk imports vertexai, which warns about its own dependencies and its use of
# pydantic (and imports ag2, when installed, which warns about jsonschema).
pytestmark = [
    pytest.mark.filterwarnings("ignore:Support for google-cloud-storage < 3.0.0:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The `vertexai.preview.rag` module is deprecated:UserWarning"),
    pytest.mark.filterwarnings("ignore:Using `@model_validator` with mode='after' on a classmethod:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Accessing jsonschema.__version__ is deprecated:DeprecationWarning"),
]


@pytest.fixture(autouse=True)
def offline_litellm(monkeypatch):
    """LiteLLM downloads a price list on import unless told to use its bundled one."""
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def run_agent(agent, prompts: list[str]) -> list[str]:
    """Each prompt in a new session of one Runner; the final text of each."""
    from google.adk.runners import Runner
    from google.adk.sessions import InMemorySessionService
    from google.genai import types

    async def main() -> list[str]:
        sessions = InMemorySessionService()
        runner = Runner(agent=agent, app_name="dmr-test", session_service=sessions)
        answers = []
        for index, prompt in enumerate(prompts):
            session = await sessions.create_session(app_name="dmr-test", user_id="u", session_id=f"s{index}")
            message = types.Content(role="user", parts=[types.Part(text=prompt)])
            text = ""
            async for event in runner.run_async(user_id="u", session_id=session.id, new_message=message):
                if event.is_final_response() and event.content and event.content.parts:
                    text = "".join(part.text or "" for part in event.content.parts)
            answers.append(text)
        return answers

    return asyncio.run(main())


def tiny_agent(model, **kwargs):
    from google.adk.agents import LlmAgent
    from google.genai import types

    return LlmAgent(name="helper", model=model, instruction="Answer briefly.",
                    generate_content_config=types.GenerateContentConfig(max_output_tokens=8), **kwargs)


@pytest.mark.service("llm")
def test_the_selector_routes_each_call_of_a_litellm_agent(router, recorder):
    from google.adk.models.lite_llm import LiteLlm

    from dmr.integrations.adk import make_model_selector

    # LiteLlm sends its own model name, never llm_request.model: the selector must swap it.
    agent = tiny_agent(LiteLlm(model="openai/unrouted", api_base=recorder.base_url, api_key="none"),
                       before_model_callback=make_model_selector(router))
    answers = run_agent(agent, [EASY, HARD, EASY])
    assert recorder.models == [MODELS["low"], MODELS["high"], MODELS["low"]]
    assert all(isinstance(answer, str) for answer in answers)
    assert [body["max_completion_tokens"] for body in recorder.bodies] == [8, 8, 8]
    assert agent.model.fallback.model == "openai/unrouted"  # the agent's own model is kept


@pytest.mark.service("llm")
def test_get_model_is_an_adk_model_for_the_task(router, recorder):
    from google.adk.models.lite_llm import LiteLlm

    from dmr.integrations.adk import get_model

    model = get_model(HARD, router=router)
    assert isinstance(model, LiteLlm) and model.model == "openai/" + MODELS["high"]
    run_agent(tiny_agent(model), ["anything"])
    assert recorder.models == [MODELS["high"]]


def selector_call(agent, selector, prompt: str, *parts):
    """Run ``selector`` the way ADK does before a model call, on real ADK objects; ``parts`` follow
    the prompt in the latest user turn."""
    from google.adk.agents.callback_context import CallbackContext
    from google.adk.agents.invocation_context import InvocationContext
    from google.adk.models.llm_request import LlmRequest
    from google.adk.sessions import InMemorySessionService, Session
    from google.genai import types

    context = InvocationContext(session_service=InMemorySessionService(), invocation_id="e-1", agent=agent,
                                session=Session(id="s", app_name="dmr-test", user_id="u"))
    request = LlmRequest(model=agent.canonical_model.model, contents=[
        types.Content(role="user", parts=[types.Part(text="earlier question")]),
        types.Content(role="model", parts=[types.Part(text="earlier answer")]),
        types.Content(role="user", parts=[types.Part(text=prompt), *parts]),
    ])
    assert selector(callback_context=CallbackContext(context), llm_request=request) is None
    return request


class Verdict(BaseModel):
    ok: bool


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.mark.service("llm")
def test_a_call_with_tools_or_an_output_schema_goes_to_a_model_that_takes_them(limited_router, recorder):
    from google.adk.models.lite_llm import LiteLlm

    from dmr.integrations.adk import make_model_selector

    seen = []
    for options in ({"tools": [add]}, {}, {"output_schema": Verdict}):
        recorder.requests.clear()
        run_agent(tiny_agent(LiteLlm(model="openai/unrouted", api_base=recorder.base_url, api_key="none"),
                             before_model_callback=make_model_selector(limited_router), **options), [EASY])
        seen.append(set(recorder.models))
        assert all("tools" in body for body in recorder.bodies) == ("tools" in options)
    assert seen == [{MODELS["medium"]}, {MODELS["low"]}, {MODELS["medium"]}]
    assert recorder.bodies[0]["response_format"]["type"] == "json_schema"


def test_an_image_in_the_request_goes_to_a_model_that_sees():
    from google.adk.models.lite_llm import LiteLlm
    from google.genai import types

    from dmr.integrations.adk import get_model, make_model_selector

    router = offline_router(limited=True)
    agent = tiny_agent(LiteLlm(model="openai/unrouted", api_base="http://127.0.0.1:9/v1", api_key="none"),
                       before_model_callback=make_model_selector(router))
    picture = types.Part(inline_data=types.Blob(mime_type="image/png", data=PNG))
    assert selector_call(agent, agent.before_model_callback, EASY, picture).model == "openai/" + MODELS["medium"]
    assert selector_call(agent, agent.before_model_callback, EASY).model == "openai/" + MODELS["low"]
    assert get_model(EASY, router=router, needs=["vision"]).model == "openai/" + MODELS["medium"]


def test_a_gemini_agent_gets_the_routed_model_in_the_request():
    from dmr import Router
    from dmr.integrations.adk import make_model_selector

    router = Router(provider="google", layer2_enabled=False)
    hard = "Design a CQRS architecture for a bank's ledger with event sourcing and argue the trade-offs"
    agent = tiny_agent("gemini-2.5-flash", before_model_callback=make_model_selector(router))
    for prompt in (EASY, hard):
        request = selector_call(agent, agent.before_model_callback, prompt)
        assert request.model == router.classify(prompt, history=["earlier question", "earlier answer"]).model_name
    assert request.model != "gemini-2.5-flash"
    assert agent.model == "gemini-2.5-flash"  # Gemini reads the request: the agent is left alone


def test_a_gemini_agent_routed_elsewhere_gets_a_litellm_model(monkeypatch):
    from google.adk.models.lite_llm import LiteLlm

    from dmr import Router
    from dmr.integrations.adk import make_model_selector

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    router = Router(provider="anthropic", layer2_enabled=False)
    agent = tiny_agent("gemini-2.5-flash", before_model_callback=make_model_selector(router))
    request = selector_call(agent, agent.before_model_callback, EASY)
    expected = router.classify(EASY, history=["earlier question", "earlier answer"]).model_name
    assert request.model == f"anthropic/{expected}"
    assert agent.model.fallback.model == "gemini-2.5-flash"
    served = agent.model._for(request)
    assert isinstance(served, LiteLlm) and served.model == f"anthropic/{expected}"


def test_native_providers_get_adk_native_models(monkeypatch):
    from google.adk.models import Gemini
    from google.adk.models.lite_llm import LiteLlm

    from dmr import Router
    from dmr.integrations.adk import get_model

    hard = "Design a CQRS architecture for a bank's ledger with event sourcing and argue the trade-offs"
    google = get_model(hard, router=Router(provider="google", layer2_enabled=False))
    assert type(google) is Gemini and google.model.startswith("gemini-")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    claude = get_model(hard, router=Router(provider="anthropic", layer2_enabled=False), temperature=0.1)
    assert isinstance(claude, LiteLlm) and claude.model.startswith("anthropic/claude-")
    assert claude._additional_args == {"api_key": "sk-test", "temperature": 0.1}  # no OpenAI endpoint
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(NotAvailableError, match="ANTHROPIC_API_KEY"):
        get_model(hard, router=Router(provider="anthropic", layer2_enabled=False))


def test_without_adk_the_error_names_the_package(monkeypatch):
    from dmr import Router
    from dmr.integrations.adk import get_model

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    claude = Router(provider="anthropic", layer2_enabled=False)
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "litellm", None)  # LiteLlm's own dependency, not installed by google-adk
        with pytest.raises(NotAvailableError, match="pip install 'litellm'"):
            get_model(EASY, router=claude)
    monkeypatch.setitem(sys.modules, "google.adk.models", None)
    monkeypatch.setitem(sys.modules, "google.adk.models.lite_llm", None)
    for router in (Router(provider="google", layer2_enabled=False), claude):
        with pytest.raises(NotAvailableError, match="pip install 'google-adk'"):
            get_model(EASY, router=router)
