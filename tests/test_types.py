"""The open enumerations (task types, complexities, tiers) and the two frozen result objects."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle

import pytest

from dmr.types import (
    Decision,
    LayerStep,
    ModelTier,
    TaskComplexity,
    TaskType,
    Verdict,
    register_task_type,
    set_tier_levels,
)

BUILTIN_TYPES = ["reasoning", "thinking", "analyzing", "code_creation", "doc_creation",
                 "translation", "math", "conversation", "multimodal"]


@pytest.fixture
def default_levels():
    """Tests that change the tier levels get the default three back, whatever happens."""
    yield
    set_tier_levels(["low", "medium", "high"])


def make_decision(**changes) -> Decision:
    fields = {
        "tier": ModelTier.MEDIUM, "model_name": "m-1", "provider": "acme", "task_type": TaskType.MATH,
        "complexity": TaskComplexity.STANDARD, "confidence": 0.8, "difficulty": 0.45, "layer": "layer1",
        "reasoning": "because", "latency_ms": 0.1, "estimated_cost_usd": 0.002, "decision_id": "abc",
        "policies_applied": ("pii_detected:email",),
        "trace": (LayerStep("layer1", "decided", 0.8, 0.05),),
    }
    return Decision(**{**fields, **changes})


# -- open enumerations -----------------------------------------------------------------------

def test_lookup_by_value_is_case_and_space_insensitive_and_interned():
    assert TaskType("math") is TaskType.MATH
    assert TaskType(" MATH ") is TaskType.MATH
    assert TaskType["Code_Creation"] is TaskType.CODE_CREATION
    assert ModelTier(ModelTier.HIGH) is ModelTier.HIGH


def test_lookup_of_an_unknown_value_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"'nope' is not a valid TaskType \(known: reasoning, .*multimodal"):
        TaskType("nope")
    with pytest.raises(KeyError):
        TaskComplexity["extreme"]
    with pytest.raises(ValueError):
        TaskType(3)


def test_iteration_follows_definition_order():
    assert [str(t) for t in TaskType][: len(BUILTIN_TYPES)] == BUILTIN_TYPES
    assert [str(c) for c in TaskComplexity] == ["simple", "standard", "complex", "research"]
    assert [c.rank for c in TaskComplexity] == [0, 1, 2, 3]
    assert ModelTier.levels() == (ModelTier.LOW, ModelTier.MEDIUM, ModelTier.HIGH)


def test_members_are_strings_that_equal_and_hash_like_their_value():
    assert TaskType.MATH == "math"
    assert "math" == TaskType.MATH
    assert TaskType.MATH != "reasoning"
    assert isinstance(TaskType.MATH, str)
    assert {"math": 1}[TaskType.MATH] == 1
    assert str(TaskType.MATH) == "math" and f"{TaskType.MATH}" == "math"
    assert TaskType.MATH.value == "math" and TaskType.MATH.name == "MATH"
    assert repr(ModelTier.LOW) == "<ModelTier.LOW: 'low'>"
    assert "math" in TaskType and "MATH" in TaskType and "nope" not in TaskType and 3 not in TaskType
    assert len(TaskComplexity) == 4


def test_members_survive_pickle_and_copy_as_the_same_object():
    for member in (TaskType.MATH, TaskComplexity.RESEARCH, ModelTier.HIGH):
        assert pickle.loads(pickle.dumps(member)) is member
        assert copy.copy(member) is member
        assert copy.deepcopy(member) is member


def test_tiers_order_by_rank_not_alphabetically():
    assert ModelTier.LOW < ModelTier.MEDIUM < ModelTier.HIGH
    assert ModelTier.HIGH >= ModelTier.HIGH > ModelTier.LOW
    assert max([ModelTier.MEDIUM, ModelTier.HIGH, ModelTier.LOW]) is ModelTier.HIGH
    assert sorted([ModelTier.HIGH, ModelTier.LOW, ModelTier.MEDIUM]) == ["low", "medium", "high"]


def test_a_tier_compares_with_a_tier_name_by_rank():
    # Alphabetically "low" > "high"; by rank it is cheaper.
    assert ModelTier.LOW < "high"
    assert ModelTier.HIGH > "medium"
    assert "high" > ModelTier.LOW
    with pytest.raises(ValueError, match="not a valid ModelTier"):
        ModelTier.LOW < "gigantic"  # noqa: B015


def test_complexities_order_by_rank_not_alphabetically():
    # Alphabetically "simple" > "research"; the docstring promises an ordered scale.
    assert TaskComplexity.SIMPLE < TaskComplexity.STANDARD < TaskComplexity.COMPLEX < TaskComplexity.RESEARCH
    assert sorted([TaskComplexity.RESEARCH, TaskComplexity.SIMPLE, TaskComplexity.COMPLEX]) == [
        "simple", "complex", "research"]


def test_register_task_type_adds_a_member_idempotently():
    created = register_task_type("Test_Biotech")
    assert created is TaskType("test_biotech") is TaskType.TEST_BIOTECH
    assert register_task_type("test_biotech") is created
    assert "test_biotech" in TaskType
    assert list(TaskType).count(created) == 1
    assert pickle.loads(pickle.dumps(created)) is created


def test_register_task_type_with_a_hyphen_gets_an_underscored_attribute():
    created = register_task_type("test-legal-review")
    assert TaskType.TEST_LEGAL_REVIEW is created
    assert created == "test-legal-review"


@pytest.mark.parametrize("bad", ["", "   ", "has space", "semi;colon", "dot.ted"])
def test_register_task_type_rejects_bad_names(bad):
    with pytest.raises(ValueError, match="invalid TaskType name"):
        register_task_type(bad)


def test_set_tier_levels_with_five_tiers(default_levels):
    levels = set_tier_levels(["nano", "low", "medium", "high", "frontier"])
    assert [str(t) for t in levels] == ["nano", "low", "medium", "high", "frontier"]
    assert ModelTier.levels() == levels
    assert ModelTier("frontier") is ModelTier.FRONTIER
    assert [t.rank for t in levels] == [0, 1, 2, 3, 4]
    assert ModelTier.NANO < ModelTier.LOW < ModelTier.FRONTIER


def test_set_tier_levels_can_drop_a_tier_whose_rank_then_fails(default_levels):
    set_tier_levels(["small", "large"])
    assert ModelTier.SMALL < ModelTier.LARGE
    with pytest.raises(ValueError, match="not among the tier levels in force"):
        _ = ModelTier.MEDIUM.rank


@pytest.mark.parametrize("levels, message", [
    (["only"], "at least two"),
    (["a", "b", "A"], "duplicate"),
])
def test_set_tier_levels_rejects_bad_lists_and_keeps_the_old_ones(default_levels, levels, message):
    with pytest.raises(ValueError, match=message):
        set_tier_levels(levels)
    assert [str(t) for t in ModelTier.levels()] == ["low", "medium", "high"]


def test_the_fixture_restored_the_default_levels():
    # Runs after the tests above in file order: nothing leaked.
    assert [str(t) for t in ModelTier.levels()] == ["low", "medium", "high"]


# -- results ---------------------------------------------------------------------------------

def test_verdict_is_frozen():
    verdict = Verdict(TaskType.MATH, TaskComplexity.SIMPLE, 0.9, 0.1, "layer1")
    assert verdict.reasoning == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.confidence = 0.1  # type: ignore[misc]


def test_decision_is_frozen_and_pickles():
    decision = make_decision()
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.tier = ModelTier.HIGH  # type: ignore[misc]
    with pytest.raises((AttributeError, TypeError)):
        decision.extra = 1  # type: ignore[attr-defined]
    clone = pickle.loads(pickle.dumps(decision))
    assert clone == decision and clone.tier is ModelTier.MEDIUM


def test_decision_equality_ignores_the_trace():
    assert make_decision(trace=()) == make_decision()
    assert make_decision(tier=ModelTier.HIGH) != make_decision()


def test_to_dict_is_complete_and_json_ready():
    decision = make_decision()
    data = decision.to_dict()
    assert set(data) == {f.name for f in dataclasses.fields(Decision)}
    assert json.loads(json.dumps(data)) == data
    assert data["tier"] == "medium" and type(data["tier"]) is str
    assert type(data["task_type"]) is str and type(data["complexity"]) is str
    assert data["policies_applied"] == ["pii_detected:email"]
    assert data["trace"] == [{"layer": "layer1", "outcome": "decided", "confidence": 0.8,
                              "latency_ms": 0.05, "detail": ""}]
    assert data["estimated_cost_usd"] == 0.002 and data["decision_id"] == "abc"


def test_to_dict_of_a_decision_without_model_or_cost():
    data = make_decision(model_name=None, provider=None, estimated_cost_usd=None, trace=()).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["model_name"] is None and data["estimated_cost_usd"] is None and data["trace"] == []
