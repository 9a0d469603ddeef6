"""DSPy: the routed model reaches the wire through ``dspy.LM``, directly and inside ``route``."""

from __future__ import annotations

import contextlib
import sys

import pytest
from integration_support import offline_router
from recording_proxy import EASY, HARD, MODELS

from dmr.errors import NotAvailableError

TINY = {"cache": False, "max_tokens": 8}  # never DSPy's on-disk cache; keep generation short


@pytest.fixture(autouse=True)
def private_dirs(monkeypatch, tmp_path):
    """DSPy's cache and anything under HOME go to tmp; LiteLLM keeps its bundled price list."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DSPY_CACHEDIR", str(tmp_path / "dspy_cache"))
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.mark.service("llm")
def test_get_lm_sends_the_routed_model(router, recorder):
    from dmr.integrations.dspy import get_lm

    for task in (EASY, HARD):
        lm = get_lm(task, router=router, **TINY)
        assert lm.kwargs["api_base"] == recorder.base_url and lm.cache is False
        outputs = lm(task)
        assert len(outputs) == 1
    assert recorder.models == [MODELS["low"], MODELS["high"]]
    # DSPy's engine sends the limit as OpenAI's newer max_completion_tokens.
    assert [body.get("max_completion_tokens", body.get("max_tokens")) for body in recorder.bodies] == [8, 8]


@pytest.mark.service("llm")
def test_route_makes_the_routed_lm_current_for_the_block(router, recorder):
    import dspy
    from classifier.integrations.dspy import route

    qa = dspy.Predict("question -> answer")
    before = dspy.settings.lm
    for task, model in ((EASY, MODELS["low"]), (HARD, MODELS["high"])):
        recorder.requests.clear()
        with route(task, router=router, **TINY) as lm:
            assert dspy.settings.lm is lm and lm.model == f"openai/{model}"
            # A 135M model seldom writes DSPy's answer format; the wire is what is checked here.
            with contextlib.suppress(dspy.AdapterParseError):
                qa(question=task)
        assert dspy.settings.lm is before
        assert recorder.models and set(recorder.models) == {model}


@pytest.mark.service("llm")
def test_nested_routes_restore_the_outer_lm(router, recorder):
    import dspy

    from dmr.integrations.dspy import route

    with route(EASY, router=router, **TINY) as outer:
        with route(HARD, router=router, **TINY) as inner:
            dspy.settings.lm("one")
        dspy.settings.lm("two")
        assert dspy.settings.lm is outer and inner is not outer
    assert recorder.models == [MODELS["high"], MODELS["low"]]


def test_needs_pass_over_a_model_that_lacks_them():
    from dmr.integrations.dspy import get_lm, route

    router = offline_router(limited=True)
    assert get_lm(EASY, router=router).model == "openai/" + MODELS["low"]
    assert get_lm(EASY, router=router, needs=["json_schema"]).model == "openai/" + MODELS["medium"]
    with route(EASY, router=router, needs=["vision"]) as lm:
        assert lm.model == "openai/" + MODELS["medium"]


@pytest.mark.parametrize("provider, prefix, key_env", [("anthropic", "anthropic/claude-", "ANTHROPIC_API_KEY"),
                                                       ("google", "gemini/gemini-", "GOOGLE_API_KEY")])
def test_native_providers_get_litellm_native_model_strings(monkeypatch, provider, prefix, key_env):
    from dmr import Router
    from dmr.integrations.dspy import get_lm

    monkeypatch.setenv(key_env, "test-key")
    lm = get_lm(HARD, router=Router(provider=provider, layer2_enabled=False), temperature=0.3, cache=False)
    assert lm.model.startswith(prefix)
    assert lm.kwargs["api_key"] == "test-key" and lm.kwargs["temperature"] == 0.3
    assert "api_base" not in lm.kwargs  # the provider's own API, not an OpenAI-compatible endpoint


def test_a_missing_key_names_the_variable(monkeypatch):
    from dmr import Router
    from dmr.integrations.dspy import get_lm

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(NotAvailableError, match="ANTHROPIC_API_KEY"):
        get_lm(EASY, router=Router(provider="anthropic", layer2_enabled=False))


def test_without_dspy_both_entry_points_name_the_package(monkeypatch):
    from dmr import Router
    from dmr.integrations.dspy import get_lm, route

    monkeypatch.setitem(sys.modules, "dspy", None)
    router = Router(provider="google", layer2_enabled=False)
    with pytest.raises(NotAvailableError, match="pip install 'dspy'"):
        get_lm(EASY, router=router)
    with pytest.raises(NotAvailableError, match="pip install 'dspy'"), route(EASY, router=router):
        pass
