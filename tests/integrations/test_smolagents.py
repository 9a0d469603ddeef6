"""smolagents: the routed model reaches the wire as a smolagents Model, per task and per call."""

from __future__ import annotations

import sys

import pytest
from integration_support import ANSWER_FORMAT, PNG, sent_models
from recording_proxy import EASY, HARD, MODELS

from dmr.errors import NotAvailableError


@pytest.fixture(autouse=True)
def private_dirs(monkeypatch, tmp_path):
    """Nothing under the real HOME; LiteLLM keeps its bundled price list (no download)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def user(text: str) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


@pytest.mark.service("llm")
def test_get_model_sends_the_routed_model(router, recorder):
    from smolagents import OpenAIServerModel

    from dmr.integrations.smolagents import get_model

    for task in (EASY, HARD):
        model = get_model(task, router=router, max_tokens=8)
        assert isinstance(model, OpenAIServerModel)
        assert model.generate([user(task)]).content
    assert recorder.models == [MODELS["low"], MODELS["high"]]
    assert [body["max_tokens"] for body in recorder.bodies] == [8, 8]


@pytest.mark.service("llm")
def test_every_step_is_routed_on_the_task_not_on_smolagents_own_turns(router, recorder):
    from dmr.integrations.smolagents import DynamicModel

    model = DynamicModel(router=router, max_tokens=8)
    steps = [{"role": "system", "content": [{"type": "text", "text": "You are an expert assistant."}]},
             user(f"New task:\n{HARD}"),
             {"role": "assistant", "content": [{"type": "text", "text": "1. Compare replication schemes."}]},
             user("Now proceed and carry out this plan.")]
    model.generate(steps)
    model.generate([steps[0], user(f"New task:\n{EASY}")])
    assert recorder.models == [MODELS["high"], MODELS["low"]]


@pytest.mark.service("llm")
def test_dynamic_model_routes_each_call(router, recorder):
    from smolagents import ChatMessage, MessageRole

    from dmr.integrations.smolagents import DynamicModel

    model = DynamicModel(router=router, max_tokens=8)
    model.generate([ChatMessage(role=MessageRole.USER, content=[{"type": "text", "text": EASY}])])
    assert model.last_decision.model_name == MODELS["low"]
    model([{"role": "system", "content": "Be brief."}, user(HARD)])  # __call__ is generate
    assert model.last_decision.model_name == MODELS["high"]
    assert "".join(delta.content or "" for delta in model.generate_stream([user(EASY)]))
    assert recorder.models == [MODELS["low"], MODELS["high"], MODELS["low"]]
    assert model.model_for([user(EASY)]) is model.model_for([user("hello there")])


@pytest.mark.service("llm")
def test_an_agent_runs_each_task_on_its_tier(router, recorder):
    from classifier.integrations.smolagents import DynamicModel
    from smolagents import ToolCallingAgent

    model = DynamicModel(router=router, max_tokens=8)
    agent = ToolCallingAgent(tools=[], model=model, max_steps=1, verbosity_level=0)
    seen = []
    for task in (EASY, HARD):
        recorder.requests.clear()
        agent.run(task)  # one step, then the final-answer call: both on the task's tier
        seen.append(set(recorder.models))
    assert seen == [{MODELS["low"]}, {MODELS["high"]}]


@pytest.mark.service("llm")
def test_a_step_with_tools_or_a_json_schema_goes_to_a_model_that_takes_them(limited_router, recorder):
    from smolagents import tool

    from dmr.integrations.smolagents import DynamicModel

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers.

        Args:
            a: the first integer
            b: the second integer
        """
        return a + b

    model = DynamicModel(router=limited_router, max_tokens=8)
    model.generate([user(EASY)], tools_to_call_from=[add])
    assert model.last_decision.policies_applied == ("needs_function_calling:low->medium",)
    model.generate([user(EASY)])
    model.generate([user(EASY)], response_format=ANSWER_FORMAT)
    assert recorder.models == [MODELS["medium"], MODELS["low"], MODELS["medium"]]
    assert recorder.bodies[0]["tools"][0]["function"]["name"] == "add"
    assert recorder.bodies[2]["response_format"] == ANSWER_FORMAT


@pytest.mark.service("llm")
def test_a_tool_calling_agent_runs_on_a_model_that_takes_tools(limited_router, recorder):
    from smolagents import ToolCallingAgent

    from dmr.integrations.smolagents import DynamicModel

    # Every step of a ToolCallingAgent offers tools (final_answer at least); the final-answer call
    # after its last step offers none.
    agent = ToolCallingAgent(tools=[], model=DynamicModel(router=limited_router, max_tokens=8), max_steps=1,
                             verbosity_level=0)
    agent.run(EASY)
    assert recorder.models == [MODELS["medium"], MODELS["low"]]
    assert [bool(body.get("tools")) for body in recorder.bodies] == [True, False]


def test_an_image_goes_to_a_model_that_sees(seeing_router, seeing_server):
    import io

    from PIL import Image

    from dmr.integrations.smolagents import DynamicModel, get_model

    model = DynamicModel(router=seeing_router)
    picture = Image.open(io.BytesIO(PNG))
    image = {"role": "user", "content": [{"type": "text", "text": EASY}, {"type": "image", "image": picture}]}
    assert model.generate([image]).content == "A red pixel."
    assert model.last_decision.policies_applied == ("needs_vision:low->medium",)
    model.generate([user(EASY)])
    assert sent_models(seeing_server) == [MODELS["medium"], MODELS["low"]]
    assert seeing_server.requests[0]["body"]["messages"][0]["content"][1]["type"] == "image_url"
    assert get_model(EASY, router=seeing_router, needs=["vision"]).model_id == MODELS["medium"]


@pytest.mark.parametrize("provider, prefix, key_env", [("anthropic", "anthropic/claude-", "ANTHROPIC_API_KEY"),
                                                       ("google", "gemini/gemini-", "GOOGLE_API_KEY")])
def test_native_providers_get_litellm_models(monkeypatch, provider, prefix, key_env):
    from smolagents import LiteLLMModel

    from dmr import Router
    from dmr.integrations.smolagents import get_model

    monkeypatch.setenv(key_env, "test-key")
    model = get_model(HARD, router=Router(provider=provider, layer2_enabled=False), temperature=0.3)
    assert isinstance(model, LiteLLMModel)
    assert model.model_id.startswith(prefix) and model.api_key == "test-key"
    assert model.api_base is None and model.kwargs["temperature"] == 0.3


def test_a_missing_client_library_names_the_smolagents_extra(monkeypatch):
    from dmr import Router
    from dmr.integrations.smolagents import get_model

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setitem(sys.modules, "litellm", None)
    with pytest.raises(NotAvailableError, match=r"pip install 'smolagents\[litellm\]'"):
        get_model(HARD, router=Router(provider="anthropic", layer2_enabled=False))


def test_without_smolagents_both_entry_points_name_the_package(monkeypatch):
    import dmr.integrations.smolagents as module
    from dmr import Router

    monkeypatch.setitem(sys.modules, "smolagents", None)
    with pytest.raises(NotAvailableError, match="pip install 'smolagents'"):
        module.get_model(EASY, router=Router(provider="google", layer2_enabled=False))
    with pytest.raises(NotAvailableError, match="pip install 'smolagents'"):
        module._build_dynamic_model()  # what the first access to DynamicModel runs
    with pytest.raises(AttributeError):
        module.NoSuchThing  # noqa: B018
