"""LiteLLM: each completion call is routed, and reaches the wire with the routed model."""

from __future__ import annotations

import asyncio
import sys

import pytest
from integration_support import ADD_TOOL, ANSWER_FORMAT, image_turn, offline_router, sent_models

from dmr.errors import NotAvailableError

from recording_proxy import EASY, HARD, MODELS

NATIVE_HARD = "Design a CQRS architecture for a bank's ledger with event sourcing and argue the trade-offs"


@pytest.mark.service("llm")
def test_completion_routes_each_call_on_its_messages(router, recorder):
    from dmr.integrations.litellm import acompletion, completion

    easy = completion([{"role": "user", "content": EASY}], router=router, max_tokens=4)
    assert isinstance(easy.choices[0].message.content, str)
    assert easy._hidden_params["dmr_decision"]["model_name"] == MODELS["low"]
    # A short follow-up keeps the tier of the request it follows.
    conversation = [{"role": "system", "content": "be brief"}, {"role": "user", "content": HARD},
                    {"role": "assistant", "content": "Part one."}, {"role": "user", "content": "continue"}]
    followed = asyncio.run(acompletion(conversation, router=router, max_tokens=4))
    assert followed._hidden_params["dmr_decision"]["policies_applied"] == ["follow_up_floor:high"]
    assert recorder.models == [MODELS["low"], MODELS["high"]]
    assert [body["max_tokens"] for body in recorder.bodies] == [4, 4]
    assert recorder.bodies[1]["messages"][0] == {"role": "system", "content": "be brief"}


@pytest.mark.service("llm")
def test_the_kwargs_reach_the_routed_endpoint(router, recorder):
    import litellm

    from dmr.integrations.litellm import get_completion_kwargs

    kwargs = get_completion_kwargs(HARD, router=router, max_tokens=4)
    assert kwargs["model"] == f"openai/{MODELS['high']}" and kwargs["base_url"] == recorder.base_url
    litellm.completion(messages=[{"role": "user", "content": HARD}], **kwargs)
    assert recorder.models == [MODELS["high"]]


@pytest.mark.service("llm")
def test_a_call_with_tools_or_a_json_schema_goes_to_a_model_that_takes_them(limited_router, recorder):
    from dmr.integrations.litellm import acompletion, completion

    messages = [{"role": "user", "content": EASY}]
    asyncio.run(acompletion(messages, router=limited_router, max_tokens=4, response_format=ANSWER_FORMAT))
    tools = completion(messages, router=limited_router, max_tokens=4, tools=[ADD_TOOL])
    completion(messages, router=limited_router, max_tokens=4)
    assert recorder.models == [MODELS["medium"], MODELS["medium"], MODELS["low"]]
    assert tools._hidden_params["dmr_decision"]["policies_applied"] == ["needs_function_calling:low->medium"]
    assert recorder.bodies[0]["response_format"] == ANSWER_FORMAT and recorder.bodies[1]["tools"] == [ADD_TOOL]


def test_a_call_with_an_image_goes_to_a_model_that_sees(seeing_router, seeing_server):
    from dmr.integrations.litellm import completion

    seen = completion([image_turn(EASY)], router=seeing_router)
    completion([{"role": "user", "content": EASY}], router=seeing_router)
    assert sent_models(seeing_server) == [MODELS["medium"], MODELS["low"]]
    assert seen._hidden_params["dmr_decision"]["policies_applied"] == ["needs_vision:low->medium"]
    assert seen.choices[0].message.content == "A red pixel."


def test_get_completion_kwargs_passes_the_needs():
    from dmr.integrations.litellm import get_completion_kwargs

    router = offline_router(limited=True)
    assert get_completion_kwargs(EASY, router=router)["model"] == "openai/" + MODELS["low"]
    assert get_completion_kwargs(EASY, router=router, needs=["json_schema"])["model"] == "openai/" + MODELS["medium"]


def test_native_providers_get_litellms_names_and_their_keys(monkeypatch):
    from dmr import Router
    from dmr.integrations.litellm import get_completion_kwargs

    monkeypatch.setenv("GOOGLE_API_KEY", "g-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a-key")
    for provider, prefix, key in (("google", "gemini/", "g-key"), ("anthropic", "anthropic/", "a-key")):
        router = Router(provider=provider, layer2_enabled=False)
        kwargs = get_completion_kwargs(NATIVE_HARD, router=router, temperature=0)
        assert kwargs == {"model": prefix + router.classify(NATIVE_HARD).model_name, "api_key": key, "temperature": 0}
    monkeypatch.delenv("GOOGLE_API_KEY")
    with pytest.raises(NotAvailableError, match="GOOGLE_API_KEY"):
        get_completion_kwargs(NATIVE_HARD, router=Router(provider="google", layer2_enabled=False))


def test_a_missing_litellm_names_the_package(monkeypatch, router):
    from dmr.integrations.litellm import completion

    monkeypatch.setitem(sys.modules, "litellm", None)
    with pytest.raises(NotAvailableError, match="pip install 'litellm'"):
        completion([{"role": "user", "content": EASY}], router=router)
