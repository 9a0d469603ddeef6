"""Turning Layer 2 on and off, and what happens when its SDK or key is missing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fault_server import FaultServer, Reply

from dmr import ConfigError, Router
from dmr.layers import LayerUnavailable
from dmr.providers import adapter_names, register_adapter, unregister_adapter
from dmr.providers.base import Completion, Usage

VAGUE = "Something about the thing we talked about, with a few more words in it."


def test_layer2_is_off_by_default():
    assert "layer2" not in Router().layers
    assert "layer2" not in Router(layer2_enabled=False, layer2_provider="openai").layers


@pytest.mark.parametrize("options", [{"layer2_enabled": True}, {"layer2_provider": "anthropic"},
                                     {"layer2_model": "gpt-4o-mini"}])
def test_layer2_is_on_when_asked_for(options):
    assert Router(**options).layers[-1] == "layer2"


def test_a_missing_key_passes_with_how_to_fix_it(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    decision = Router(layer2_provider="anthropic", escalation_threshold=1.0, layer3_enabled=False).classify(VAGUE)
    step = decision.trace[-1]
    assert (step.layer, step.outcome) == ("layer2", "passed")
    assert "ANTHROPIC_API_KEY" in step.detail
    assert decision.layer == "layer1"


def test_a_key_set_later_is_picked_up(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with FaultServer() as server:
        server.script(Reply.anthropic({"task_type": "math", "complexity": "simple", "confidence": 0.6}))
        registry = {"version": "1", "models": {}, "providers": {"anthropic": {
            "api_key_env": "ANTHROPIC_API_KEY", "base_url": server.url, "tiers": {"low": "claude-x"}}}}
        router = Router(model_registry=registry, layer2_provider="anthropic", escalation_threshold=1.0,
                        layer3_enabled=False)
        assert "ANTHROPIC_API_KEY" in router.classify(VAGUE).trace[-1].detail
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-later")
        assert router.classify(VAGUE).layer == "layer2"
        assert server.count == 1


def test_strict_mode_raises_instead(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LayerUnavailable, match="OPENAI_API_KEY"):
        Router(layer2_provider="openai", escalation_threshold=1.0, layer3_enabled=False, strict=True).classify(VAGUE)


def test_an_unknown_provider_without_base_url_passes():
    decision = Router(layer2_provider="nowhere", layer2_model="m", escalation_threshold=1.0,
                      layer3_enabled=False).classify(VAGUE)
    assert "no adapter" in decision.trace[-1].detail


def test_a_missing_sdk_passes_with_the_extra_to_install():
    # The SDK is made unimportable in a child process; dmr's own code is untouched.
    code = (
        "import sys, json; sys.modules['openai'] = None\n"
        "from dmr import Router\n"
        "r = Router(layer2_provider='openai', layer2_base_url='http://127.0.0.1:9/v1', layer2_model='m',"
        " escalation_threshold=1.0, layer3_enabled=False)\n"
        "d = r.classify('Something about the thing we talked about, with a few more words.')\n"
        "print(json.dumps([d.layer, d.trace[-1].outcome, d.trace[-1].detail]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    layer, outcome, detail = json.loads(out)
    assert (layer, outcome) == ("layer1", "passed")
    assert "dynamic-model-router[openai]" in detail


def test_an_openai_compatible_provider_by_registry_entry():
    with FaultServer() as server:
        server.script(Reply.openai({"task_type": "analyzing", "complexity": "standard", "confidence": 0.7}))
        registry = {"version": "1", "providers": {"local": {"base_url": server.url + "/v1",
                                                             "tiers": {"low": "tiny", "high": "big"}}},
                    "models": {}}
        router = Router(model_registry=registry, layer2_provider="local", escalation_threshold=1.0,
                        layer3_enabled=False)
        decision = router.classify(VAGUE)
        assert decision.layer == "layer2" and decision.task_type == "analyzing"
        assert server.requests[0]["body"]["model"] == "tiny"  # the provider's low-tier model


def test_a_custom_prompt_template(monkeypatch):
    with FaultServer() as server:
        server.script(Reply.openai({"task_type": "math", "complexity": "simple", "confidence": 0.7}))
        router = Router(layer2_provider="openai", layer2_base_url=server.url + "/v1", escalation_threshold=1.0,
                        layer3_enabled=False,
                        layer2_prompt_template="Our domain is accounting. Label this:\n{task}")
        router.classify(VAGUE)
        user = server.requests[0]["body"]["messages"][1]["content"]
        assert user.startswith("Our domain is accounting.") and "<task>" in user
    with pytest.raises(ConfigError, match="layer2_prompt_template"):
        Router(layer2_enabled=True, layer2_prompt_template="no placeholder")


def test_adapters_register_by_name():
    class Echo:
        def __init__(self, settings):
            self.name, self.model = settings.provider, settings.model

        def complete_json(self, system, user, schema, *, timeout, max_tokens):
            return Completion({"task_type": "translation", "complexity": "simple", "confidence": 0.6},
                              Usage(1, 1), self.model)

    register_adapter("echo", Echo)
    try:
        assert "echo" in adapter_names()
        decision = Router(layer2_provider="echo", layer2_model="e1", escalation_threshold=1.0,
                          layer3_enabled=False).classify(VAGUE)
        assert decision.layer == "layer2" and decision.task_type == "translation"
    finally:
        unregister_adapter("echo")


def test_options_are_checked_even_with_layer2_off():
    with pytest.raises(ConfigError):
        Router(layer2_timeout=0)
    with pytest.raises(ConfigError, match="layer2_base_url"):
        Router(layer2_base_url="ftp://example.org/v1")
    with pytest.raises(ConfigError):
        Router(l2_circuit_breaker={"cooldown_secs": -1})
