"""LlamaIndex: routed LLMs, checked by the model name each real call sends over the wire."""

from __future__ import annotations

import asyncio
import sys

import pytest
from integration_support import ANSWER_FORMAT, PNG, sent_models

from dmr import Router
from dmr.errors import NotAvailableError
from dmr.integrations import llamaindex as integration
from dmr.integrations.llamaindex import get_llm

from recording_proxy import EASY, HARD, MODELS


@pytest.mark.service("llm")
def test_get_llm_calls_the_routed_model(router, recorder):
    from llama_index.llms.openai_like import OpenAILike

    easy = get_llm(EASY, router=router, max_tokens=4, temperature=0)
    assert isinstance(easy, OpenAILike) and easy.metadata.is_chat_model
    assert (easy.model, easy.api_base, easy.max_tokens) == (MODELS["low"], recorder.base_url, 4)
    assert easy.complete(EASY).text
    get_llm(HARD, router=router, max_tokens=4).complete(HARD)
    assert recorder.models == [MODELS["low"], MODELS["high"]]
    assert "messages" in recorder.bodies[0]  # the chat endpoint, as is_chat_model=True asks


@pytest.mark.service("llm")
def test_one_dynamic_llm_routes_each_call(router, recorder):
    from llama_index.core.llms import LLM, ChatMessage

    from dmr.integrations.llamaindex import DynamicLLM

    llm = DynamicLLM(router=router, max_tokens=4, temperature=0)
    assert isinstance(llm, LLM) and llm.last_decision is None
    assert llm.chat([ChatMessage(role="user", content=EASY)]).message.content
    assert llm.last_decision.model_name == MODELS["low"]
    # The latest user turn decides, with the earlier turns as history.
    conversation = [ChatMessage(role="system", content="be brief"), ChatMessage(role="user", content=EASY),
                    ChatMessage(role="assistant", content="fine"), ChatMessage(role="user", content=HARD)]
    assert llm.chat(conversation).message.content
    assert llm.last_decision.model_name == MODELS["high"]
    assert llm.complete(EASY).text
    assert recorder.models == [MODELS["low"], MODELS["high"], MODELS["low"]]


@pytest.mark.service("llm")
def test_streaming_and_async_calls_are_routed(router, recorder):
    from llama_index.core.llms import ChatMessage

    from dmr.integrations.llamaindex import DynamicLLM

    llm = DynamicLLM(router=router, max_tokens=4)
    assert "".join(r.delta or "" for r in llm.stream_chat([ChatMessage(role="user", content=HARD)]))
    assert "".join(r.delta or "" for r in llm.stream_complete(EASY))

    async def run() -> None:
        assert (await llm.achat([ChatMessage(role="user", content=HARD)])).message.content
        assert (await llm.acomplete(EASY)).text
        assert "".join([r.delta or "" async for r in await llm.astream_complete(HARD)])

    asyncio.run(run())
    assert recorder.models == [MODELS["high"], MODELS["low"], MODELS["high"], MODELS["low"], MODELS["high"]]
    assert [body.get("stream", False) for body in recorder.bodies] == [True, True, False, False, True]


@pytest.mark.service("llm")
def test_tools_reach_the_routed_model(router, recorder):
    from llama_index.core.tools import FunctionTool

    from dmr.integrations.llamaindex import DynamicLLM

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    llm = DynamicLLM(router=router, max_tokens=4, is_function_calling_model=True)
    assert llm.metadata.is_function_calling_model
    response = llm.chat_with_tools([FunctionTool.from_defaults(add)], user_msg=HARD)
    (body,) = recorder.bodies
    assert body["model"] == MODELS["high"]
    assert [t["function"]["name"] for t in body["tools"]] == ["add"]
    assert isinstance(llm.get_tool_calls_from_response(response, error_on_no_tool_call=False), list)


@pytest.mark.service("llm")
def test_tools_and_a_json_schema_go_to_a_model_that_takes_them(limited_router, recorder):
    from llama_index.core.llms import ChatMessage
    from llama_index.core.tools import FunctionTool

    from dmr.integrations.llamaindex import DynamicLLM

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    llm = DynamicLLM(router=limited_router, max_tokens=4, is_function_calling_model=True)
    llm.chat_with_tools([FunctionTool.from_defaults(add)], user_msg=EASY)
    assert llm.last_decision.policies_applied == ("needs_function_calling:low->medium",)
    llm.chat([ChatMessage(role="user", content=EASY)])
    asyncio.run(llm.achat([ChatMessage(role="user", content=EASY)], response_format=ANSWER_FORMAT))
    assert recorder.models == [MODELS["medium"], MODELS["low"], MODELS["medium"]]
    assert "tools" in recorder.bodies[0] and recorder.bodies[2]["response_format"] == ANSWER_FORMAT


def test_an_image_block_goes_to_a_model_that_sees(seeing_router, seeing_server):
    from llama_index.core.llms import ChatMessage, ImageBlock, TextBlock

    from dmr.integrations.llamaindex import DynamicLLM

    llm = DynamicLLM(router=seeing_router)
    image = ChatMessage(role="user", blocks=[TextBlock(text=EASY), ImageBlock(image=PNG, image_mimetype="image/png")])
    assert llm.chat([image]).message.content == "A red pixel."
    assert llm.last_decision.policies_applied == ("needs_vision:low->medium",)
    (sent,) = seeing_server.requests[0]["body"]["messages"]
    assert [part["type"] for part in sent["content"]] == ["text", "image_url"]
    llm.complete(EASY)
    assert sent_models(seeing_server) == [MODELS["medium"], MODELS["low"]]
    assert get_llm(EASY, router=seeing_router, needs=["vision"]).model == MODELS["medium"]


def test_own_options_stay_with_llamaindex_and_the_rest_go_to_each_llm():
    from dmr.integrations.llamaindex import DynamicLLM

    llm = DynamicLLM(system_prompt="be brief", temperature=0.2, max_tokens=8, context_window=2048)
    assert llm.system_prompt == "be brief" and llm.router is None
    assert llm.llm_kwargs == {"temperature": 0.2, "max_tokens": 8, "context_window": 2048}
    meta = llm.metadata
    assert (meta.is_chat_model, meta.num_output, meta.context_window) == (True, 8, 2048)
    assert not meta.is_function_calling_model


def test_an_openai_target_gets_its_endpoint_and_key(monkeypatch):
    router = Router(provider="openai", layer2_enabled=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(NotAvailableError, match="OPENAI_API_KEY"):
        get_llm(HARD, router=router)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    llm = get_llm(HARD, router=router, temperature=0.1)
    assert llm.model == router.classify(HARD).model_name
    assert (llm.api_base, llm.api_key, llm.temperature) == ("https://api.openai.com/v1", "sk-test", 0.1)
    assert get_llm(HARD, router=router, api_key="sk-mine").api_key == "sk-mine"


@pytest.mark.parametrize(("provider", "package"), [("anthropic", "llama-index-llms-anthropic"),
                                                   ("google", "llama-index-llms-google-genai")])
def test_a_native_provider_needs_its_llamaindex_package(monkeypatch, provider, package):
    from dmr.integrations.llamaindex import DynamicLLM

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("GOOGLE_API_KEY", "test")
    router = Router(provider=provider, layer2_enabled=False)
    with pytest.raises(NotAvailableError, match=f"pip install '{package}'"):
        get_llm(EASY, router=router)
    with pytest.raises(NotAvailableError, match=f"pip install '{package}'"):
        DynamicLLM(router=router).complete(EASY)


def test_without_llamaindex_the_error_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_index.llms.openai_like", None)
    with pytest.raises(NotAvailableError, match="pip install 'llama-index-llms-openai-like'"):
        get_llm(EASY, router=Router(provider="openai", layer2_enabled=False))
    monkeypatch.setitem(sys.modules, "llama_index.core.llms.function_calling", None)
    with pytest.raises(NotAvailableError, match="pip install 'llama-index-core'"):
        integration._build()  # what the first access to DynamicLLM runs


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        integration.Nothing  # noqa: B018
