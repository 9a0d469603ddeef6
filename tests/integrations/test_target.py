"""The shared part of the integrations: reading a framework's messages and routing them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pytest

from dmr.errors import InputError, NotAvailableError
from dmr.integrations import history_of, require, target, task_of
from dmr.integrations.target import NO_KEY, Target

from recording_proxy import EASY, HARD, MODELS


class Role(Enum):
    USER = "user"
    ASSISTANT = "assistant"


@dataclass
class Part:
    text: str


@dataclass
class Message:
    role: object
    content: object


def test_reads_the_latest_user_turn_in_each_framework_shape():
    assert task_of("plain text") == "plain text"
    assert task_of(b"bytes \xff") == "bytes \ufffd"
    assert task_of({"role": "user", "content": "one dict"}) == "one dict"
    openai_style = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "first"},
                    {"role": "assistant", "content": "answer"},
                    {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url"}]}]
    assert task_of(openai_style) == "second\n[image]"  # a media part is named, for the router
    assert history_of(openai_style) == [{"role": "system", "content": "be brief"},
                                        {"role": "user", "content": "first"}, {"role": "assistant", "content": "answer"}]
    # LangChain marks turns with .type ("human"); Semantic Kernel with an enum role and item lists.
    langchain_style = [type("M", (), {"type": "human", "content": "from a human"})(),
                       type("M", (), {"type": "ai", "content": "from the model"})()]
    assert task_of(langchain_style) == "from a human"
    assert history_of(langchain_style) == []
    kernel_style = [Message(Role.USER, [Part("part one"), Part("part two")]), Message(Role.ASSISTANT, "ok")]
    assert task_of(kernel_style) == "part one\npart two"


def test_a_turn_with_only_media_is_routed_as_media_never_on_the_system_prompt():
    image_only = [{"role": "system", "content": "Answer in French. Be brief."},
                  {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}]
    assert task_of(image_only) == "[image]"
    assert task_of([{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                                  {"type": "input_audio", "input_audio": {}}]}]) == "What is this?\n[audio]"
    gemini_part = type("Part", (), {"text": None, "inline_data": type("Blob", (), {"mime_type": "video/mp4"})()})()
    assert task_of([Message("user", [gemini_part])]) == "[video]"


def test_deeply_nested_content_is_an_input_error_not_a_crash():
    content = "hi"
    for _ in range(5000):
        content = [content]
    with pytest.raises(InputError, match="no text"):
        task_of([{"role": "user", "content": content}])
    assert task_of([{"role": "user", "content": [[{"type": "text", "text": "two deep"}]]}]) == "two deep"


def test_an_agents_task_is_found_behind_its_marker():
    from dmr.integrations.target import marked_task

    turns = [{"role": "system", "content": "Current Task: not the system prompt"},
             {"role": "user", "content": "Current Task: the old one\n\nBegin!"},
             {"role": "user", "content": "\nCurrent Task: the task\n\nBegin! This is VERY important"},
             {"role": "user", "content": "Now it's time you MUST give your absolute best final answer."}]
    assert marked_task(turns, "Current Task:", ["\n\nBegin!"]) == "the task"
    assert marked_task(turns, "New task:") is None
    assert marked_task([{"role": "user", "content": "Current Task:   "}], "Current Task:") is None


def test_without_a_user_turn_the_last_turn_with_text_is_the_task():
    messages = [{"role": "system", "content": "rules"}, {"role": "developer", "content": "do the thing"}]
    assert task_of(messages) == "do the thing"
    assert history_of(messages) == [{"role": "system", "content": "rules"}]


@pytest.mark.parametrize("empty", [[], "", "   ", [{"role": "user", "content": ""}], [{"role": "user"}]])
def test_no_text_is_an_input_error(empty):
    with pytest.raises(InputError, match="no text"):
        task_of(empty)


@pytest.mark.service("llm")
def test_target_is_the_decision_and_the_endpoint(router, recorder):
    easy, hard = target(EASY, router=router), target(HARD, router=router)
    assert (easy.model, hard.model) == (MODELS["low"], MODELS["high"])
    assert easy.decision.model_name == easy.model and easy.provider == "local"
    assert easy.base_url == recorder.base_url and easy.openai_compatible
    assert easy.litellm_model == "openai/local-small"
    assert easy.key_or_placeholder() == NO_KEY


def test_native_providers_and_keys(monkeypatch):
    from dmr import Router

    router = Router(provider="anthropic", layer2_enabled=False)
    found = target("Design a CQRS architecture for a bank's ledger with event sourcing", router=router)
    assert found.provider == "anthropic" and not found.openai_compatible
    assert found.litellm_model == f"anthropic/{found.model}"
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(NotAvailableError, match="ANTHROPIC_API_KEY"):
        found.key_or_placeholder()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    assert found.key_or_placeholder() == "sk-test"
    google = target("hi", router=Router(provider="google", layer2_enabled=False))
    assert google.litellm_model == f"gemini/{google.model}"


def test_a_router_without_models_is_a_clear_error():
    from dmr import Router

    router = Router(model_registry={"version": "empty", "providers": {}, "models": {}}, layer2_enabled=False)
    assert router.classify(EASY).model_name is None
    with pytest.raises(NotAvailableError, match="no model for it"):
        target(EASY, router=router)


def test_a_provider_with_one_model_serves_every_tier():
    from dmr import Router

    registry = {"version": "t", "providers": {"p": {"base_url": "http://127.0.0.1:9/v1", "tiers": {"high": "big"}}},
                "models": {"big": {"provider": "p"}}}
    found = target(EASY, router=Router(model_registry=registry, provider="p", layer2_enabled=False))
    assert (found.model, found.base_url) == ("big", "http://127.0.0.1:9/v1")


def test_require_names_the_package():
    with pytest.raises(NotAvailableError, match="pip install 'no-such-framework'"):
        require("no_such_framework_module", "no-such-framework")
    assert require("json", "json").dumps([]) == "[]"


def test_target_is_immutable():
    t = Target(decision=None, provider="p", model="m")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        t.model = "other"  # type: ignore[misc]


@pytest.mark.service("llm")
def test_atarget_routes_like_target(router, recorder):
    import asyncio

    from dmr.integrations import atarget

    hard, easy = asyncio.run(atarget(HARD, router=router)), asyncio.run(atarget(EASY, router=router))
    assert (hard.model, easy.model) == (MODELS["high"], MODELS["low"])
    assert hard.decision.model_name == hard.model and hard.base_url == recorder.base_url


@pytest.mark.service("llm")
def test_routed_models_builds_once_per_endpoint_and_keeps_the_last_decision(router):
    from dmr.integrations.target import RoutedModels

    built = []
    models = RoutedModels(lambda found: built.append(found.model) or f"client for {found.model}")
    assert models.last_decision is None
    assert models.get(target(EASY, router=router)) == "client for local-small"
    assert models.get(target(HARD, router=router)) == "client for local-large"
    assert models.get(target(EASY, router=router)) == "client for local-small"
    assert built == ["local-small", "local-large"]
    assert models.last_decision.model_name == "local-small"


def test_lazy_classes_build_on_first_access_only():
    from dmr.integrations.target import lazy_classes

    calls = []

    def build():
        calls.append(1)
        return type("Built", (), {})

    getattr_ = lazy_classes("m", {"Built": build})
    assert calls == []
    assert getattr_("Built") is getattr_("Built") and calls == [1]
    with pytest.raises(AttributeError, match="no attribute 'Other'"):
        getattr_("Other")


def test_the_integrations_create_no_event_loop():
    """conftest.py lets event loops that frameworks drop unclosed pass: dmr's own code makes none."""
    import re
    from pathlib import Path

    import dmr.integrations

    package = Path(dmr.integrations.__file__).parent
    sources = {path.name: path.read_text(encoding="utf-8") for path in package.rglob("*.py")}
    assert len(sources) > 10
    made = re.compile(r"new_event_loop|get_event_loop|set_event_loop|asyncio\.run\b|EventLoop\(")
    assert {name for name, text in sources.items() if made.search(text)} == set()
