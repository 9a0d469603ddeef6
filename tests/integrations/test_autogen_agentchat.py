"""AutoGen AgentChat (0.4+): the routed model reaches the wire through autogen-ext's own clients."""

from __future__ import annotations

import asyncio
import sys

import pytest
from integration_support import PNG, limited_registry, offline_router, sent_models
from pydantic import BaseModel

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


class Verdict(BaseModel):
    ok: bool


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.mark.service("llm")
# autogen-ext dumps the OpenAI SDK's parsed completion, whose declared type has no room for the
# parsed answer: pydantic warns about it, on AutoGen's side.
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
def test_a_call_with_tools_or_structured_output_goes_to_a_model_that_takes_them(limited_router, recorder):
    from autogen_core.tools import FunctionTool

    from dmr.integrations.autogen_agentchat import DynamicChatCompletionClient

    client = DynamicChatCompletionClient(router=limited_router, max_tokens=4)

    async def run():
        await client.create([_user(EASY)], tools=[FunctionTool(add, description="Add two integers.")])
        assert client.last_decision.policies_applied == ("needs_function_calling:low->medium",)
        await client.create([_user(EASY)])
        await client.create([_user(EASY)], json_output=Verdict, extra_create_args={"max_tokens": 32, "temperature": 0})
        await client.close()

    asyncio.run(run())
    assert recorder.models == [MODELS["medium"], MODELS["low"], MODELS["medium"]]
    assert recorder.bodies[0]["tools"][0]["function"]["name"] == "add"
    assert recorder.bodies[2]["response_format"]["type"] == "json_schema"


@pytest.mark.service("llm")
def test_an_assistant_agent_with_tools_runs_on_a_model_that_takes_them(limited_router, recorder):
    from autogen_agentchat.agents import AssistantAgent

    from dmr.integrations.autogen_agentchat import DynamicChatCompletionClient

    client = DynamicChatCompletionClient(router=limited_router, max_tokens=4)
    # AutoGen refuses tools unless model_info promises function calling: local-large can.
    agent = AssistantAgent("assistant", model_client=client, tools=[add], system_message="Answer briefly.")

    async def run():
        await agent.run(task=EASY)
        await client.close()

    asyncio.run(run())
    assert recorder.models == [MODELS["medium"]]


def test_an_image_goes_to_a_model_that_sees(seeing_router, seeing_server):
    import base64

    from autogen_core import Image
    from autogen_core.models import UserMessage

    from dmr.integrations.autogen_agentchat import DynamicChatCompletionClient, get_model_client

    client = DynamicChatCompletionClient(router=seeing_router)
    image = UserMessage(content=[EASY, Image.from_base64(base64.b64encode(PNG).decode())], source="user")

    async def run():
        assert (await client.create([image])).content == "A red pixel."
        assert client.last_decision.policies_applied == ("needs_vision:low->medium",)
        await client.create([_user(EASY)])
        await client.close()

    asyncio.run(run())
    assert sent_models(seeing_server) == [MODELS["medium"], MODELS["low"]]
    assert get_model_client(EASY, router=seeing_router, needs=["vision"])._raw_config["model"] == MODELS["medium"]


def test_model_info_promises_what_routing_can_keep():
    from dmr import Router
    from dmr.integrations.autogen_agentchat import DynamicChatCompletionClient

    def info(**capabilities):
        registry = limited_registry("http://127.0.0.1:9/v1")
        for name, caps in capabilities.items():
            registry["models"][MODELS[name]]["capabilities"] = caps
        client = DynamicChatCompletionClient(router=Router(model_registry=registry, provider="local",
                                                           layer2_enabled=False))
        return client.model_info["vision"], client.model_info["function_calling"]

    # local-small lacks both, and says so: a call that needs them climbs to local-medium.
    assert info() == (True, True)
    # The top tier lacks tools: a hard task with tools has nowhere to go.
    assert info(high={"supports_vision": True, "supports_function_calling": False}) == (True, False)
    # local-medium does not say whether it sees: routing would send an image to it, AutoGen would not.
    assert info(medium={}) == (False, True)
    assert DynamicChatCompletionClient(router=offline_router()).model_info["vision"] is False


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
