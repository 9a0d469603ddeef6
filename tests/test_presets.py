"""Domain presets: listing, loading, and what a preset does to a Router."""

from __future__ import annotations

import pytest

from dmr.errors import ConfigError
from dmr.packs import KeywordPack
from dmr.pii import PIIDetector
from dmr.presets import Preset, list_presets, load_preset
from dmr.router import Router
from dmr.types import ModelTier, TaskType


def test_list_presets_is_sorted_and_complete():
    assert list_presets() == ["fintech", "healthcare", "legal"]


@pytest.mark.parametrize("name", ["fintech", "healthcare", "legal"])
def test_each_preset_loads(name):
    preset = load_preset(name)
    assert isinstance(preset, Preset)
    assert preset.name == name and preset.description
    assert isinstance(preset.pack, KeywordPack) and preset.pack.name == name
    assert preset.pack.primary  # at least one type keyword
    assert preset.pii_patterns
    assert set(preset.pii_policy or {}) <= {"min_tier", "block"}
    PIIDetector(preset.pii_patterns)  # every preset pattern compiles
    Router(preset=name)  # and a Router accepts the whole preset


def test_load_preset_is_cached():
    assert load_preset("legal") is load_preset("legal")


@pytest.mark.parametrize("name", ["nope", "../legal", "legal.yaml", ""])
def test_an_unknown_preset_lists_the_known_ones(name):
    with pytest.raises(ConfigError) as caught:
        load_preset(name)
    assert "known: fintech, healthcare, legal" in str(caught.value)
    assert caught.value.problems[0][0] == "preset"


def test_router_with_an_unknown_preset_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        Router.from_preset("nope")


def test_healthcare_seed_example_is_raised_to_high_for_pii():
    decision = Router.from_preset("healthcare").classify("Patient MRN 12345 has chest pain")
    assert decision.tier >= ModelTier.HIGH
    assert "pii_floor:high" in decision.policies_applied
    assert "pii_detected:medical_record_number" in decision.policies_applied
    assert "personal data found" in decision.reasoning


def test_without_the_preset_the_same_task_is_not_raised():
    decision = Router().classify("Patient MRN 12345 has chest pain")
    assert decision.tier < ModelTier.HIGH
    assert decision.policies_applied == ()


def test_the_preset_pack_recognises_domain_terms():
    task = "Review the contraindications for this medication"
    # The pack is Layer 1's: look at Layer 1 alone.
    assert Router.from_preset("healthcare", layer3_enabled=False).classify(task).task_type is TaskType.REASONING


def test_the_preset_adds_its_own_pii_kinds():
    decision = Router.from_preset("fintech").classify("Check account number 12345678901 for fraud")
    assert "pii_detected:account_number" in decision.policies_applied
    assert decision.tier is ModelTier.HIGH


def test_an_explicit_pii_policy_overrides_the_presets():
    decision = Router.from_preset("healthcare", pii_policy={"min_tier": "medium"}).classify(
        "Patient MRN 12345 has chest pain")
    assert "pii_floor:high" not in decision.policies_applied
    assert decision.tier is not ModelTier.HIGH


def test_legal_preset_floor_is_medium():
    decision = Router.from_preset("legal").classify("hello, my passport number X1234567")
    assert decision.tier is ModelTier.MEDIUM
    assert decision.policies_applied == ("pii_detected:passport", "pii_floor:medium")
