"""AutoGen (AG2): the routed model as an ``llm_config``."""

from __future__ import annotations

import sys

import pytest

from dmr.errors import NotAvailableError
from dmr.integrations import target
from dmr.integrations.autogen import get_autogen_llm_config

from integration_support import offline_router
from recording_proxy import EASY, HARD, MODELS

# AG2 reads jsonschema's deprecated RefResolver and __version__ when imported and when it builds a
# client; building one also imports vertexai, which warns about this venv's google-cloud-storage 2.x.
pytestmark = [
    pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Accessing jsonschema.__version__ is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Support for google-cloud-storage < 3.0.0:FutureWarning"),
]


@pytest.mark.service("llm")
@pytest.mark.parametrize(("prompt", "model"), [(EASY, MODELS["low"]), (HARD, MODELS["high"])])
def test_an_agent_calls_the_routed_model(router, recorder, prompt, model):
    from autogen import ConversableAgent

    config = get_autogen_llm_config(prompt, router=router, max_tokens=8, temperature=0)
    agent = ConversableAgent("helper", llm_config=config, human_input_mode="NEVER")
    reply = agent.generate_reply(messages=[{"role": "user", "content": prompt}])
    assert reply
    assert recorder.models == [model]
    assert (recorder.bodies[0]["max_tokens"], recorder.bodies[0]["temperature"]) == (8, 0)


def test_the_config_is_ag2s_classic_dict():
    config = get_autogen_llm_config(HARD, router=offline_router(), temperature=0.2, cache_seed=None)
    assert config == {
        "config_list": [{"model": MODELS["high"], "api_key": "not-needed", "base_url": "http://127.0.0.1:9/v1",
                         "api_type": "openai", "price": [10.0 / 1000, 20.0 / 1000]}],
        "temperature": 0.2, "cache_seed": None}
    from autogen import LLMConfig

    entry = LLMConfig.ensure_config(dict(config)).config_list[0]  # AG2 accepts it as it is
    assert (entry.api_type, entry.model, entry.price) == ("openai", MODELS["high"], [0.01, 0.02])


def test_needs_pass_over_a_model_that_lacks_them():
    router = offline_router(limited=True)
    for needs, model in ((None, MODELS["low"]), (["function_calling"], MODELS["medium"])):
        assert get_autogen_llm_config(EASY, router=router, needs=needs)["config_list"][0]["model"] == model


def test_google_gets_ag2s_native_client(monkeypatch):
    from autogen import LLMConfig
    from dmr import Router

    router = Router(provider="google", layer2_enabled=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "g-test")
    config = get_autogen_llm_config(HARD, router=router)
    entry = config["config_list"][0]
    assert (entry["api_type"], entry["model"], entry["api_key"]) == ("google", target(HARD, router=router).model, "g-test")
    assert "base_url" not in entry  # AG2's Gemini client has its own endpoint
    assert len(entry["price"]) == 2
    assert type(LLMConfig.ensure_config(config).config_list[0]).__name__ == "GeminiLLMConfigEntry"


def test_anthropic_names_ag2s_extra(monkeypatch):
    from dmr import Router

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setitem(sys.modules, "anthropic", None)
    with pytest.raises(NotAvailableError, match=r"ag2\[anthropic\]"):
        get_autogen_llm_config(HARD, router=Router(provider="anthropic", layer2_enabled=False))


def test_a_missing_key_names_the_variable(monkeypatch):
    from dmr import Router

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(NotAvailableError, match="OPENAI_API_KEY"):
        get_autogen_llm_config(EASY, router=Router(provider="openai", layer2_enabled=False))


def test_without_ag2_the_error_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "autogen", None)
    with pytest.raises(NotAvailableError, match=r"pip install 'ag2\[openai\]'"):
        get_autogen_llm_config(EASY, router=offline_router())


def test_the_agents_sdk_helper_is_importable_from_here_too():
    from dmr.integrations import autogen, openai_agents

    assert autogen.get_openai_agent_model is openai_agents.get_openai_agent_model
