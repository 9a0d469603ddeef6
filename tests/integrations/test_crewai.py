"""CrewAI: the routed model reaches the wire as CrewAI's own LLM, per task and per call."""

from __future__ import annotations

import asyncio
import sys

import pytest
from integration_support import ADD_TOOL, image_turn, sent_models
from pydantic import BaseModel
from recording_proxy import EASY, HARD, MODELS

from dmr.errors import NotAvailableError


# CrewAI warns about itself: an ImportWarning on first import, and DeprecationWarnings when its
# own Agent/Crew validators read their deprecated fields.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Cannot set an attribute on 'crewai:ImportWarning"),
    pytest.mark.filterwarnings("ignore:function_calling_llm is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning:crewai"),
]


@pytest.fixture(autouse=True)
def quiet_crewai(monkeypatch, tmp_path):
    """No telemetry, no tracing, no files outside tmp, no LiteLLM price-list download."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CREWAI_STORAGE_DIR", str(tmp_path / "crewai"))
    monkeypatch.setenv("CREWAI_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("CREWAI_TRACING_ENABLED", "false")
    monkeypatch.setenv("CREWAI_TESTING", "true")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.chdir(tmp_path)


@pytest.mark.service("llm")
def test_pick_llm_for_task_sends_the_routed_model(router, recorder):
    from dmr.integrations.crewai import pick_llm_for_task

    for task in (EASY, HARD):
        llm = pick_llm_for_task(task, router=router, max_tokens=8)
        # "openai/<name>" with a custom endpoint is CrewAI's native OpenAI client, not LiteLLM.
        assert type(llm).__name__ == "OpenAICompletion" and not llm.is_litellm
        assert llm.base_url == recorder.base_url
        assert isinstance(llm.call(task), str)
    assert recorder.models == [MODELS["low"], MODELS["high"]]
    assert [body["max_tokens"] for body in recorder.bodies] == [8, 8]


@pytest.mark.service("llm")
def test_dynamic_llm_routes_each_call(router, recorder):
    from dmr.integrations.crewai import DynamicLLM

    llm = DynamicLLM(router=router, max_tokens=8)
    assert isinstance(llm.call(EASY), str)
    assert llm.last_decision.model_name == MODELS["low"]
    assert isinstance(llm.call([{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": HARD}]), str)
    assert llm.last_decision.model_name == MODELS["high"]
    assert isinstance(asyncio.run(llm.acall(EASY)), str)
    assert recorder.models == [MODELS["low"], MODELS["high"], MODELS["low"]]
    assert llm.llm_for(EASY) is llm.llm_for("hello there")  # one delegate per routed model
    assert llm.get_token_usage_summary().successful_requests == 3


@pytest.mark.service("llm")
def test_the_calls_of_a_task_are_routed_on_the_task_not_on_crewais_own_turns(router, recorder):
    from dmr.integrations.crewai import DynamicLLM

    # The shape CrewAI gives a task's messages: its task turn, then turns of its own.
    task_turn = {"role": "user", "content": f"\nCurrent Task: {HARD}\n\nBegin! This is VERY important to you, "
                                            "use the tools available and give your best Final Answer, your job "
                                            "depends on it!\n\nThought:"}
    nudge = {"role": "user", "content": "Now it's time you MUST give your absolute best final answer. You'll "
                                        "ignore all previous instructions, stop using any tools, and just return "
                                        "your absolute BEST Final answer."}
    llm = DynamicLLM(router=router, max_tokens=8)
    llm.call([{"role": "system", "content": "You are Analyst."}, task_turn,
              {"role": "assistant", "content": "Thought: I should"}, nudge])
    easy_turn = {"role": "user", "content": f"\nCurrent Task: {EASY}\n\nProvide your complete response:"}
    llm.call([{"role": "system", "content": "You are Analyst."}, easy_turn])
    assert recorder.models == [MODELS["high"], MODELS["low"]]


@pytest.mark.service("llm")
def test_an_agents_stop_words_reach_the_routed_model(router, recorder):
    from crewai.llms.base_llm import call_stop_override

    from dmr.integrations.crewai import DynamicLLM

    llm = DynamicLLM(router=router, max_tokens=8, temperature=0)
    whole = llm.call(EASY)
    stop = whole.split()[-1]
    # What CrewAI's executor does around each call; the OpenAI client applies stop words itself.
    with call_stop_override(llm, [stop]):
        cut = llm.call(EASY)
    assert cut == whole[:whole.find(stop)].strip() != whole
    assert recorder.models == [MODELS["low"], MODELS["low"]]


@pytest.mark.service("llm")
def test_a_crew_runs_each_task_on_its_tier(router, recorder):
    from classifier.integrations.crewai import DynamicLLM
    from crewai import Agent, Crew, Task

    agent = Agent(role="Analyst", goal="Answer briefly", backstory="Terse.", max_iter=1,
                  llm=DynamicLLM(router=router, max_tokens=8))
    tasks = [Task(description=text, expected_output="a sentence", agent=agent) for text in (EASY, HARD)]
    Crew(agents=[agent], tasks=tasks).kickoff()
    assert recorder.models == [MODELS["low"], MODELS["high"]]


class Verdict(BaseModel):
    ok: bool


@pytest.mark.service("llm")
def test_a_call_with_tools_or_a_response_model_goes_to_a_model_that_takes_them(limited_router, recorder):
    from dmr.integrations.crewai import DynamicLLM

    llm = DynamicLLM(router=limited_router, max_tokens=32, temperature=0)
    llm.call(EASY, tools=[ADD_TOOL], available_functions={"add": lambda a, b: a + b})
    assert llm.last_decision.policies_applied == ("needs_function_calling:low->medium",)
    llm.call(EASY)
    llm.call(EASY, response_model=Verdict)  # a JSON schema, as CrewAI sends it
    assert recorder.models == [MODELS["medium"], MODELS["low"], MODELS["medium"]]
    assert recorder.bodies[0]["tools"][0]["function"]["name"] == "add"
    assert recorder.bodies[2]["response_format"]["type"] == "json_schema"
    # A response_format given to the DynamicLLM itself holds for every call.
    answering = DynamicLLM(router=limited_router, response_format=Verdict)
    assert answering.llm_for(EASY).model == MODELS["medium"]


@pytest.mark.service("llm")
def test_an_agent_with_tools_runs_on_a_model_that_takes_them(limited_router, recorder):
    from crewai import Agent, Crew, Task
    from crewai.tools import tool

    from dmr.integrations.crewai import DynamicLLM

    @tool("add")
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    agent = Agent(role="Analyst", goal="Answer briefly", backstory="Terse.", max_iter=1, tools=[add],
                  llm=DynamicLLM(router=limited_router, max_tokens=8))
    Crew(agents=[agent], tasks=[Task(description=EASY, expected_output="a sentence", agent=agent)]).kickoff()
    assert recorder.models and set(recorder.models) == {MODELS["medium"]}
    assert all(body["tools"] for body in recorder.bodies)


def test_a_call_with_an_image_goes_to_a_model_that_sees(seeing_router, seeing_server):
    from dmr.integrations.crewai import DynamicLLM, pick_llm_for_task

    llm = DynamicLLM(router=seeing_router)
    assert llm.call([image_turn(EASY)]) == "A red pixel."
    assert llm.last_decision.policies_applied == ("needs_vision:low->medium",)
    llm.call(EASY)
    assert sent_models(seeing_server) == [MODELS["medium"], MODELS["low"]]
    assert pick_llm_for_task(EASY, router=seeing_router, needs=["vision"]).model == MODELS["medium"]


def test_the_documented_example_constructs():
    from classifier.integrations.crewai import DynamicLLM
    from crewai import Agent

    # As documented, plus the backstory that CrewAI's Agent itself requires.
    agent = Agent(role="Analyst", goal="...", backstory="...", llm=DynamicLLM())
    assert isinstance(agent.llm, DynamicLLM) and agent.llm.router is None


def test_google_gets_crewais_native_gemini_class(monkeypatch):
    from dmr import Router
    from dmr.integrations.crewai import pick_llm_for_task

    monkeypatch.setenv("GOOGLE_API_KEY", "google-test-key")
    llm = pick_llm_for_task(HARD, router=Router(provider="google", layer2_enabled=False), temperature=0.2)
    assert type(llm).__name__ == "GeminiCompletion" and not llm.is_litellm
    assert llm.model.startswith("gemini-") and llm.api_key == "google-test-key"
    assert llm.temperature == 0.2


def test_a_missing_provider_sdk_names_the_crewai_extra(monkeypatch):
    from dmr import Router
    from dmr.integrations.crewai import pick_llm_for_task

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setitem(sys.modules, "crewai.llms.providers.anthropic.completion", None)
    with pytest.raises(NotAvailableError, match=r"pip install 'crewai\[anthropic\]'"):
        pick_llm_for_task(HARD, router=Router(provider="anthropic", layer2_enabled=False))


def test_without_crewai_both_entry_points_name_the_package(monkeypatch):
    import dmr.integrations.crewai as module
    from dmr import Router

    monkeypatch.setitem(sys.modules, "crewai", None)
    router = Router(provider="google", layer2_enabled=False)
    with pytest.raises(NotAvailableError, match="pip install 'crewai'"):
        module.pick_llm_for_task(EASY, router=router)
    with pytest.raises(NotAvailableError, match="pip install 'crewai'"):
        module._build_dynamic_llm()  # what the first access to DynamicLLM runs
    with pytest.raises(AttributeError):
        module.NoSuchThing  # noqa: B018
