"""Haystack: the routed model reaches the wire through Haystack's own generator components."""

from __future__ import annotations

import os
import sys

import pytest

from dmr.errors import NotAvailableError

from integration_support import offline_router
from recording_proxy import EASY, HARD, MODELS

# Haystack decides on telemetry when it is first imported: switch it off before any test can.
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"


NATIVE_HARD = "Design a CQRS architecture for a bank's ledger with event sourcing and argue the trade-offs"


def test_haystack_telemetry_is_off():
    from haystack.telemetry import _telemetry

    assert _telemetry.telemetry is None


@pytest.mark.service("llm")
def test_get_generator_sends_the_routed_model(router, recorder):
    from dmr.integrations.haystack import get_generator

    for task in (EASY, HARD):
        generator = get_generator(task, router=router, max_tokens=8)
        assert generator.api_base_url == recorder.base_url
        assert generator.generation_kwargs == {"max_tokens": 8}
        reply = generator.run(task)["replies"][0]
        assert isinstance(getattr(reply, "text", reply), str)
    assert recorder.models == [MODELS["low"], MODELS["high"]]
    assert [body["max_tokens"] for body in recorder.bodies] == [8, 8]


@pytest.mark.service("llm")
def test_get_chat_generator_sends_the_routed_model(router, recorder):
    from haystack.components.generators.chat import OpenAIChatGenerator
    from haystack.dataclasses import ChatMessage

    from dmr.integrations.haystack import get_chat_generator

    generator = get_chat_generator(HARD, router=router, generation_kwargs={"max_tokens": 8}, temperature=0.0)
    assert type(generator) is OpenAIChatGenerator
    assert generator.generation_kwargs == {"max_tokens": 8, "temperature": 0.0}
    assert generator.api_key.resolve_value() == "not-needed"  # a local server: a placeholder key
    replies = generator.run(messages=[ChatMessage.from_system("Answer briefly."), ChatMessage.from_user(HARD)])
    assert isinstance(replies["replies"][0].text, str)
    assert recorder.models == [MODELS["high"]]


def test_needs_pass_over_a_model_that_lacks_them():
    from dmr.integrations.haystack import get_chat_generator, get_generator

    router = offline_router(limited=True)
    assert get_generator(EASY, router=router).model == MODELS["low"]
    assert get_generator(EASY, router=router, needs=["vision"]).model == MODELS["medium"]
    assert get_chat_generator(EASY, router=router, needs=["function_calling"]).model == MODELS["medium"]


def test_google_gets_the_google_genai_generator(monkeypatch):
    pytest.importorskip("haystack_integrations.components.generators.google_genai",
                        reason="google-genai-haystack is not installed")
    from dmr import Router
    from dmr.integrations.haystack import get_chat_generator, get_generator

    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    router = Router(provider="google", layer2_enabled=False)
    for make in (get_generator, get_chat_generator):
        generator = make(NATIVE_HARD, router=router, max_tokens=8)
        assert type(generator).__name__ == "GoogleGenAIChatGenerator"
        assert generator._model == router.classify(NATIVE_HARD).model_name
        assert generator._generation_kwargs == {"max_tokens": 8}
        # The key stays in its variable, so the component can still be serialised.
        assert generator._api_key.to_dict() == {"type": "env_var", "env_vars": ["GOOGLE_API_KEY"], "strict": True}


def test_native_providers_without_their_integration_name_the_package(monkeypatch):
    from dmr import Router
    from dmr.integrations.haystack import get_chat_generator, get_generator

    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    for provider, module, package in (
            ("google", "haystack_integrations.components.generators.google_genai", "google-genai-haystack"),
            ("anthropic", "haystack_integrations.components.generators.anthropic", "anthropic-haystack")):
        monkeypatch.setitem(sys.modules, module, None)
        for make in (get_generator, get_chat_generator):
            with pytest.raises(NotAvailableError, match=package):
                make(NATIVE_HARD, router=Router(provider=provider, layer2_enabled=False))


def test_a_missing_key_names_its_variable(monkeypatch):
    from dmr import Router
    from dmr.integrations.haystack import get_chat_generator

    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(NotAvailableError, match="GOOGLE_API_KEY"):
        get_chat_generator(NATIVE_HARD, router=Router(provider="google", layer2_enabled=False))


def test_without_haystack_the_error_names_the_package(monkeypatch):
    from dmr import Router
    from dmr.integrations.haystack import get_chat_generator, get_generator

    registry = {"version": "t", "providers": {"p": {"base_url": "http://127.0.0.1:9/v1", "tiers": {"low": "m"}}},
                "models": {"m": {"provider": "p"}}}
    router = Router(model_registry=registry, provider="p", layer2_enabled=False)
    for module in ("haystack.components.generators", "haystack.components.generators.chat", "haystack.utils"):
        monkeypatch.setitem(sys.modules, module, None)
    for make in (get_generator, get_chat_generator):
        with pytest.raises(NotAvailableError, match="haystack-ai"):
            make(EASY, router=router)
