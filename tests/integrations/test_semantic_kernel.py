"""Semantic Kernel: the routed model reaches the wire through SK's own chat completion services."""

from __future__ import annotations

import asyncio
import importlib.util
import sys

import pytest

from dmr.errors import NotAvailableError

from integration_support import offline_router
from recording_proxy import EASY, HARD, MODELS

# Semantic Kernel's own pydantic models use a hook that pydantic 2.11 deprecated.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:The `__get_pydantic_core_schema__` method of the `BaseModel` class is deprecated:DeprecationWarning"),
]

NATIVE_HARD = "Design a CQRS architecture for a bank's ledger with event sourcing and argue the trade-offs"


def ask(service, prompt: str) -> str:
    from semantic_kernel.connectors.ai.open_ai import OpenAIChatPromptExecutionSettings
    from semantic_kernel.contents import ChatHistory

    history = ChatHistory(system_message="Answer briefly.")
    history.add_user_message(prompt)
    settings = OpenAIChatPromptExecutionSettings(max_tokens=8)
    replies = asyncio.run(service.get_chat_message_contents(chat_history=history, settings=settings))
    return str(replies[0])


@pytest.mark.service("llm")
def test_get_chat_service_sends_the_routed_model(router, recorder):
    from semantic_kernel.connectors.ai.open_ai import OpenAIChatCompletion

    from dmr.integrations.semantic_kernel import get_chat_service

    for task in (EASY, HARD):
        service = get_chat_service(task, router=router)
        assert type(service) is OpenAIChatCompletion
        assert service.service_id == service.ai_model_id  # Semantic Kernel's default
        assert str(service.client.base_url).rstrip("/") == recorder.base_url
        assert isinstance(ask(service, task), str)
    assert recorder.models == [MODELS["low"], MODELS["high"]]
    assert [body["max_tokens"] for body in recorder.bodies] == [8, 8]


@pytest.mark.service("llm")
def test_a_kernel_calls_the_routed_service(router, recorder):
    from semantic_kernel import Kernel
    from semantic_kernel.connectors.ai.open_ai import OpenAIChatPromptExecutionSettings
    from semantic_kernel.functions import KernelArguments

    from dmr.integrations.semantic_kernel import get_chat_service

    kernel = Kernel()
    kernel.add_service(get_chat_service(HARD, router=router, service_id="planner"))
    settings = OpenAIChatPromptExecutionSettings(service_id="planner", max_tokens=8)
    answer = asyncio.run(kernel.invoke_prompt(HARD, arguments=KernelArguments(settings=settings)))
    assert isinstance(str(answer), str)
    assert recorder.models == [MODELS["high"]]


def test_needs_pass_over_a_model_that_lacks_them():
    from dmr.integrations.semantic_kernel import get_chat_service

    router = offline_router(limited=True)
    assert get_chat_service(EASY, router=router).ai_model_id == MODELS["low"]
    assert get_chat_service(EASY, router=router, needs=["function_calling"]).ai_model_id == MODELS["medium"]


def test_google_gets_the_google_ai_service(monkeypatch):
    pytest.importorskip("semantic_kernel.connectors.ai.google.google_ai", reason="semantic-kernel[google] is missing")
    from dmr import Router
    from dmr.integrations.semantic_kernel import get_chat_service

    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    router = Router(provider="google", layer2_enabled=False)
    service = get_chat_service(NATIVE_HARD, router=router, service_id="gemini")
    assert type(service).__name__ == "GoogleAIChatCompletion"
    assert service.ai_model_id == router.classify(NATIVE_HARD).model_name and service.service_id == "gemini"
    assert service.service_settings.api_key.get_secret_value() == "test-key"


def test_anthropic_gets_the_anthropic_service_or_names_the_extra(monkeypatch):
    from dmr import Router
    from dmr.integrations.semantic_kernel import get_chat_service

    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    router = Router(provider="anthropic", layer2_enabled=False)
    if importlib.util.find_spec("anthropic") is not None:
        service = get_chat_service(NATIVE_HARD, router=router)
        assert type(service).__name__ == "AnthropicChatCompletion"
        assert service.ai_model_id == router.classify(NATIVE_HARD).model_name
    monkeypatch.setitem(sys.modules, "semantic_kernel.connectors.ai.anthropic", None)
    with pytest.raises(NotAvailableError, match=r"semantic-kernel\[anthropic\]"):
        get_chat_service(NATIVE_HARD, router=router)


def test_missing_pieces_are_named(monkeypatch):
    from dmr import Router
    from dmr.integrations.semantic_kernel import get_chat_service

    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(NotAvailableError, match="GOOGLE_API_KEY"):
        get_chat_service(EASY, router=Router(provider="google", layer2_enabled=False))
    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    monkeypatch.setitem(sys.modules, "semantic_kernel.connectors.ai.google.google_ai", None)
    with pytest.raises(NotAvailableError, match=r"semantic-kernel\[google\]"):
        get_chat_service(EASY, router=Router(provider="google", layer2_enabled=False))
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setitem(sys.modules, "semantic_kernel.connectors.ai.open_ai", None)
    with pytest.raises(NotAvailableError, match="pip install 'semantic-kernel'"):
        get_chat_service(EASY, router=Router(provider="openai", layer2_enabled=False))
