"""LangChain: routed chat models, checked by the model name each real call sends over the wire."""

from __future__ import annotations

import asyncio
import sys

import pytest
from integration_support import ANSWER_FORMAT, PNG_URL, sent_models

from dmr import Router
from dmr.errors import NotAvailableError
from dmr.integrations import langchain as integration
from dmr.integrations.langchain import get_chat_model

from recording_proxy import EASY, HARD, MODELS


@pytest.mark.service("llm")
def test_get_chat_model_calls_the_routed_model(router, recorder):
    from langchain_openai import ChatOpenAI

    easy = get_chat_model(EASY, router=router, max_tokens=4, temperature=0)
    assert isinstance(easy, ChatOpenAI)
    assert (easy.model_name, easy.openai_api_base, easy.max_tokens) == (MODELS["low"], recorder.base_url, 4)
    assert easy.invoke(EASY).content
    get_chat_model(HARD, router=router, max_tokens=4).invoke(HARD)
    assert recorder.models == [MODELS["low"], MODELS["high"]]


@pytest.mark.service("llm")
def test_one_dynamic_chat_model_routes_each_call(router, recorder):
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    from dmr.integrations.langchain import DynamicChatModel

    chat = DynamicChatModel(router=router, max_tokens=4, temperature=0)
    assert isinstance(chat, BaseChatModel) and chat.last_decision is None
    assert chat.invoke(EASY).content
    assert chat.last_decision.model_name == MODELS["low"]
    # The latest human turn decides, with the earlier turns as history.
    conversation = [SystemMessage("be brief"), HumanMessage(EASY), AIMessage("fine"), HumanMessage(HARD)]
    assert chat.invoke(conversation).content
    assert chat.last_decision.model_name == MODELS["high"]
    assert recorder.models == [MODELS["low"], MODELS["high"]]
    assert recorder.bodies[1]["messages"][0] == {"role": "system", "content": "be brief"}


@pytest.mark.service("llm")
def test_streaming_and_async_calls_are_routed(router, recorder):
    from dmr.integrations.langchain import DynamicChatModel

    chat = DynamicChatModel(router=router, max_tokens=4)
    assert "".join(chunk.content for chunk in chat.stream(HARD))

    async def run() -> None:
        assert (await chat.ainvoke(EASY)).content
        assert "".join([chunk.content async for chunk in chat.astream(HARD)])

    asyncio.run(run())
    assert recorder.models == [MODELS["high"], MODELS["low"], MODELS["high"]]
    assert [body.get("stream", False) for body in recorder.bodies] == [True, False, True]


@pytest.mark.service("llm")
def test_bound_tools_reach_the_routed_model(router, recorder):
    from langchain_core.tools import tool

    from dmr.integrations.langchain import DynamicChatModel

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    DynamicChatModel(router=router, max_tokens=4).bind_tools([add], tool_choice="auto").invoke(HARD)
    (body,) = recorder.bodies
    assert body["model"] == MODELS["high"] and body["tool_choice"] == "auto"
    assert [t["function"]["name"] for t in body["tools"]] == ["add"]


@pytest.mark.service("llm")
def test_bound_tools_and_a_json_schema_go_to_a_model_that_takes_them(limited_router, recorder):
    from langchain_core.tools import tool

    from dmr.integrations.langchain import DynamicChatModel

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    chat = DynamicChatModel(router=limited_router, max_tokens=4)
    chat.bind_tools([add]).invoke(EASY)
    assert chat.last_decision.policies_applied == ("needs_function_calling:low->medium",)
    chat.invoke(EASY)
    asyncio.run(chat.bind(response_format=ANSWER_FORMAT, max_tokens=32, temperature=0).ainvoke(EASY))
    assert recorder.models == [MODELS["medium"], MODELS["low"], MODELS["medium"]]
    assert "tools" in recorder.bodies[0] and recorder.bodies[2]["response_format"]["type"] == "json_schema"


def test_an_image_goes_to_a_model_that_sees(seeing_router, seeing_server):
    from langchain_core.messages import HumanMessage

    from dmr.integrations.langchain import DynamicChatModel

    chat = DynamicChatModel(router=seeing_router)
    image = HumanMessage(content=[{"type": "text", "text": EASY}, {"type": "image_url", "image_url": {"url": PNG_URL}}])
    assert chat.invoke([image]).content == "A red pixel."
    assert chat.last_decision.policies_applied == ("needs_vision:low->medium",)
    chat.invoke(EASY)
    assert sent_models(seeing_server) == [MODELS["medium"], MODELS["low"]]
    assert get_chat_model(EASY, router=seeing_router, needs=["vision"]).model_name == MODELS["medium"]


def test_own_options_stay_with_langchain_and_the_rest_go_to_each_model():
    from dmr.integrations.langchain import DynamicChatModel

    chat = DynamicChatModel(tags=["team-a"], temperature=0.2, max_tokens=8)
    assert chat.tags == ["team-a"] and chat.router is None
    assert chat.chat_kwargs == {"temperature": 0.2, "max_tokens": 8}


def test_an_openai_target_gets_its_endpoint_and_key(monkeypatch):
    router = Router(provider="openai", layer2_enabled=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(NotAvailableError, match="OPENAI_API_KEY"):
        get_chat_model(HARD, router=router)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = get_chat_model(HARD, router=router, temperature=0.1)
    assert model.model_name == router.classify(HARD).model_name
    assert model.openai_api_base == "https://api.openai.com/v1"
    assert model.openai_api_key.get_secret_value() == "sk-test" and model.temperature == 0.1
    assert get_chat_model(HARD, router=router, api_key="sk-mine").openai_api_key.get_secret_value() == "sk-mine"


@pytest.mark.parametrize(("provider", "package"), [("anthropic", "langchain-anthropic"),
                                                   ("google", "langchain-google-genai")])
def test_a_native_provider_needs_its_langchain_package(monkeypatch, provider, package):
    from dmr.integrations.langchain import DynamicChatModel

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("GOOGLE_API_KEY", "test")
    router = Router(provider=provider, layer2_enabled=False)
    with pytest.raises(NotAvailableError, match=f"pip install '{package}'"):
        get_chat_model(EASY, router=router)
    with pytest.raises(NotAvailableError, match=f"pip install '{package}'"):
        DynamicChatModel(router=router).invoke(EASY)


def test_without_langchain_the_error_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "langchain_openai", None)
    with pytest.raises(NotAvailableError, match="pip install 'langchain-openai'"):
        get_chat_model(EASY, router=Router(provider="openai", layer2_enabled=False))
    monkeypatch.setitem(sys.modules, "langchain_core.language_models", None)
    with pytest.raises(NotAvailableError, match="pip install 'langchain-core'"):
        integration._build()  # what the first access to DynamicChatModel runs


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        integration.Nothing  # noqa: B018
