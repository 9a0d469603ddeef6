"""The README users already know (shared/SEED.md): each example that needs no network works as
written, through ``dmr`` and through the ``classifier`` alias."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dmr.cli.main import cli


def test_the_pitch():
    from classifier import classify

    decision = classify("What is 2+2?")  # → low tier (cheap)
    assert decision.tier.value == "low"
    decision = classify("Design a CQRS architecture for…")  # → high tier (capable)
    assert decision.tier.value == "high"
    print(decision.tier, decision.model_name)


def test_step_3_first_task():
    from classifier import classify

    decision = classify("Write a Python function to merge two sorted lists.")
    assert decision.model_name
    assert decision.tier.value in ("low", "medium", "high")
    assert decision.reasoning


def test_step_4_models_for_the_google_example():
    from classifier import Router

    router = Router()
    assert router.classify("Hi").model_name == "gemini-2.5-flash"
    assert router.classify("Design a distributed lock…").model_name == "gemini-2.5-pro"


def test_step_6_presets_and_own_pack():
    from classifier import KeywordPack, Router, TaskType

    router = Router.from_preset("healthcare")
    assert router.classify("Patient MRN 12345 has chest pain").tier.value == "high"
    legal_pack = (
        KeywordPack.builder("legal")
        .add(TaskType.REASONING, ["precedent", "tort", "indemnification"])
        .add(TaskType.DOC_CREATION, ["clause", "agreement", "NDA"])
        .build()
    )
    router = Router(extra_keyword_packs=[legal_pack])
    assert router.classify("Find precedent on tort indemnification").task_type is TaskType.REASONING
    assert router.classify("Draft an NDA clause").task_type is TaskType.DOC_CREATION


def test_step_7_dmr_yaml(tmp_path, monkeypatch):
    from classifier import Router

    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(cli, ["init"]).exit_code == 0
    router = Router.from_yaml("dmr.yaml")
    assert router.classify("Hi").tier.value == "low"


def test_layer_1_table():
    from classifier import KeywordPack, Router, TaskType

    pack = (KeywordPack.builder("biotech")
            .add(TaskType.REASONING, ["protein", "CRISPR", "in-vitro"])
            .escalator("genome-wide", weight=2)
            .build())
    router = Router(extra_keyword_packs=[pack], layer3_enabled=False)  # the pack is Layer 1's
    plain, escalated = router.classify("Is this protein stable?"), router.classify("Is this protein stable genome-wide?")
    assert plain.task_type is TaskType.REASONING
    assert escalated.difficulty > plain.difficulty
    Router(l1_weights={"primary": 5.0, "secondary": 1.0, "escalator": 2.0}).classify("Design a cache")
    assert Router(layer1_enabled=False, layer3_enabled=False).classify("Design a cache").layer == "default"
    assert Router(escalation_threshold=0.75).config.escalation_threshold == 0.75


def test_cross_cutting_options_that_need_no_service():
    from classifier import ModelTier, Router

    seen = []
    router = Router(
        provider="anthropic",
        tier_matrix={"conversation": {"simple": "medium", "standard": "medium"}},
        pre_classify_hooks=[lambda task, ctx: task.strip()],
        post_classify_hooks=[lambda decision, ctx: seen.append(decision)],
        on_error_hooks=[lambda exc, ctx: None],
        pii_policy={"min_tier": ModelTier.HIGH, "block": False},
    )
    decision = router.classify("  Hi  ")
    assert decision.tier is ModelTier.MEDIUM and decision.provider == "anthropic"
    assert seen == [decision]
    assert router.classify("mail jane@example.com").tier is ModelTier.HIGH
    tenant = router.classify("Hello there", tenant_config={"providers": ["openai"]})
    assert tenant.provider == "openai"
    custom = Router(custom_classifier=lambda task, ctx: None)
    assert custom.classify("Hi").tier is ModelTier.LOW


def test_registry_section(tmp_path):
    from classifier import ModelTier, Router, register_model_cost, register_provider

    register_provider("groq", {
        ModelTier.LOW: "llama-3.3-8b-instant",
        ModelTier.HIGH: "llama-3.3-70b-versatile",
    })
    register_model_cost("llama-3.3-70b-versatile", input_per_1m=0.59, output_per_1m=0.79)
    router = Router(provider="groq")
    assert router.classify("Hi").model_name == "llama-3.3-8b-instant"
    hard = router.classify("Design a distributed consensus protocol and prove its safety")
    assert hard.model_name == "llama-3.3-70b-versatile" and hard.estimated_cost_usd > 0


def test_custom_tokenizer_and_layer_plugin():
    from classifier import Router, Verdict, register_layer, register_tokenizer
    from dmr.layers import unregister_layer
    from dmr.tokens import unregister_tokenizer

    register_tokenizer("gemini-2.5-flash", lambda t: 1_000_000)
    try:
        assert Router().classify("Hi").estimated_cost_usd > 0.29  # 1M input tokens at $0.30/1M
    finally:
        unregister_tokenizer("gemini-2.5-flash")

    class MyCustomLayer:
        name = "mine"
        threshold = 0.0

        def classify(self, task, ctx):
            return Verdict("math", "research", 1.0, 0.9, self.name, "my layer")

    register_layer(MyCustomLayer(), position="first")
    try:
        decision = Router().classify("Hi")
        assert decision.layer == "mine" and decision.tier.value == "high"
    finally:
        unregister_layer("mine")


def test_route_model_decorator():
    from classifier import route_model

    @route_model(provider="anthropic")
    def call_claude(task: str, model_name: str = "claude-haiku-4-5-20251001"):
        return model_name

    assert call_claude("Hi") == "claude-haiku-4-5-20251001"
    assert call_claude("Design a fault-tolerant distributed database and prove linearizability") == "claude-opus-4-7"


@pytest.mark.parametrize("args", [
    ["classify", "task text"],
    ["classify", "--preset", "healthcare", "Patient MRN 12345 has chest pain"],
    ["models"],
    ["presets"],
    ["version"],
    ["doctor"],
])
def test_cli_reference(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output


def test_cli_registry_round_trip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-models.yaml").write_text(
        'version: "2026.05.01"\nproviders:\n  groq:\n    api_key_env: GROQ_API_KEY\n    tiers:\n'
        "      low: llama-3.3-8b-instant\n      medium: llama-3.3-70b-versatile\n      high: llama-3.3-70b-versatile\n"
        "models:\n  llama-3.3-8b-instant:\n    cost: { input_per_1m: 0.05, output_per_1m: 0.08 }\n"
        "    capabilities:\n      context_window: 128000\n      supports_function_calling: true\n"
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["models", "load", "my-models.yaml", "--replace"]).exit_code == 0
    assert runner.invoke(cli, ["models", "export", "--output", "snapshot.yaml"]).exit_code == 0
    from dmr.registry import reset_default_registry
    from classifier import Router

    reset_default_registry()
    assert Router().classify("Hi").model_name == "llama-3.3-8b-instant"
    assert "groq" in (tmp_path / "snapshot.yaml").read_text()


def test_load_registry_on_the_class_and_on_an_instance(tmp_path):
    from classifier import Router

    (tmp_path / "r.yaml").write_text('version: "1"\nproviders:\n  acme:\n    tiers: {low: a-small, high: a-large}\n')
    own = Router()
    own.load_registry(tmp_path / "r.yaml")
    assert "acme" in own.registry.providers()
    assert "acme" not in Router().registry.providers()
    Router.load_registry(str(tmp_path / "r.yaml"))
    assert Router(provider="acme").classify("Hi").model_name == "a-small"
