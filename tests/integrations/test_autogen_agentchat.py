"""AutoGen AgentChat (0.4+): the routed model reaches the wire through autogen-ext's own clients."""

from __future__ import annotations

import asyncio
import sys

import pytest

from dmr.errors import NotAvailableError

from recording_proxy import EASY, HARD, MODELS

# The local LLM serves the three tier names with one model and answers with its own name, which
# AutoGen reports as a mismatch with the name it asked for.
pytestmark = [pytest.mark.filterwarnings("ignore:Resolved model mismatch:UserWarning")]

NATIVE_HARD = "Design a CQRS architecture for a bank's ledger with event sourcing and argue the trade-offs"


def _user(text):
    from autogen_core.models import UserMessage

    return UserMessage(content=text, source="user")


@pytest.mark.service("llm")
def test_get_model_client_sends_the_routed_model(router, recorder):
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    from dmr.integrations.autogen_agentchat import get_model_client

    async def run():
        for task in (EASY, HARD):
            client = get_model_client(task, router=router, max_tokens=4)
            assert type(client) is OpenAIChatCompletionClient
            # AutoGen does not know the local model names: the registry's capabilities stand in.
            assert client.model_info["vision"] is False and client.model_info["function_calling"] is True
            result = await client.create([_user(task)])
            assert isinstance(result.content, str)
            await client.close()

    asyncio.run(run())
    assert recorder.models == [MODELS["low"], MODELS["high"]]
    assert [body["max_tokens"] for body in recorder.bodies] == [4, 4]


@pytest.mark.service("llm")
def test_one_dynamic_client_routes_each_call_on_the_conversation(router, recorder):
    from autogen_core.models import AssistantMessage, ChatCompletionClient, SystemMessage

    from dmr.integrations.autogen_agentchat import DynamicChatCompletionClient

    client = DynamicChatCompletionClient(router=router, max_tokens=4)
    assert isinstance(client, ChatCompletionClient) and client.last_decision is None

    async def run():
        await client.create([SystemMessage(content="be brief"), _user(EASY)])
        assert client.last_decision.model_name == MODELS["low"]
        # The latest user message decides; a short follow-up keeps the tier of the request before it.
        conversation = [SystemMessage(content="be brief"), _user(HARD), AssistantMessage(content="Part one.", source="a"),
                        _user("continue")]
        await client.create(conversation)
        assert client.last_decision.model_name == MODELS["high"]
        assert client.last_decision.policies_applied == ("follow_up_floor:high",)
        chunks = [chunk async for chunk in client.create_stream([_user(HARD)])]
        assert isinstance(chunks[-1].content, str) and all(isinstance(c, str) for c in chunks[:-1])
        usage = client.total_usage()
        assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
        await client.close()

    asyncio.run(run())
    assert recorder.models == [MODELS["low"], MODELS["high"], MODELS["high"]]
    assert recorder.bodies[0]["messages"][0] == {"role": "system", "content": "be brief"}
    assert recorder.bodies[2].get("stream") is True


@pytest.mark.service("llm")
def test_an_assistant_agent_runs_on_the_dynamic_client(router, recorder):
    from autogen_agentchat.agents import AssistantAgent

    from dmr.integrations.autogen_agentchat import DynamicChatCompletionClient

    client = DynamicChatCompletionClient(router=router, max_tokens=4)
    agent = AssistantAgent("assistant", model_client=client, system_message="Answer briefly.")

    async def run():
        result = await agent.run(task=HARD)
        assert result.messages[-1].source == "assistant"
        await client.close()

    asyncio.run(run())
    assert recorder.models == [MODELS["high"]]
    assert client.model_info["vision"] is False and client.model_info["function_calling"] is True


def test_google_and_anthropic_get_their_clients_or_name_the_extra(monkeypatch):
    from dmr import Router
    from dmr.integrations.autogen_agentchat import get_model_client

    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    google = Router(provider="google", layer2_enabled=False)
    client = get_model_client(NATIVE_HARD, router=google)
    assert type(client).__name__ == "OpenAIChatCompletionClient"
    assert str(client._client.base_url).startswith("https://generativelanguage.googleapis.com/")
    assert client._client.api_key == "test-key"
    assert client._raw_config["model"] == google.classify(NATIVE_HARD).model_name

    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setitem(sys.modules, "autogen_ext.models.anthropic", None)
    with pytest.raises(NotAvailableError, match=r"autogen-ext\[anthropic\]"):
        get_model_client(NATIVE_HARD, router=Router(provider="anthropic", layer2_enabled=False))


def test_a_missing_key_names_the_variable(monkeypatch):
    from dmr import Router
    from dmr.integrations.autogen_agentchat import get_model_client

    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(NotAvailableError, match="GOOGLE_API_KEY"):
        get_model_client(NATIVE_HARD, router=Router(provider="google", layer2_enabled=False))


def test_importing_the_module_does_not_import_autogen():
    import subprocess

    code = ("import sys, dmr.integrations.autogen_agentchat as m; "
            "print(sorted(n for n in sys.modules if n.startswith(('autogen_core', 'autogen_ext', 'autogen_agentchat'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
