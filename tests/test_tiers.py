"""The tier matrix and the difficulty bands that keep difficulty monotone with tier."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dmr.errors import ConfigError
from dmr.router import Router
from dmr.tiers import DEFAULT_MATRIX, TierMatrix, band_difficulty
from dmr.types import ModelTier, TaskComplexity, TaskType, Verdict, register_task_type, set_tier_levels

BUILTIN_TYPES = ["reasoning", "thinking", "analyzing", "code_creation", "doc_creation",
                 "translation", "math", "conversation", "multimodal"]
FIVE_TIERS = ["nano", "low", "medium", "high", "frontier"]


@pytest.fixture
def five_tiers():
    set_tier_levels(FIVE_TIERS)
    yield [ModelTier(t) for t in FIVE_TIERS]
    set_tier_levels(["low", "medium", "high"])


# -- the matrix ------------------------------------------------------------------------------

def test_default_matrix_covers_every_type_and_complexity():
    assert sorted(DEFAULT_MATRIX) == sorted(BUILTIN_TYPES)
    matrix = TierMatrix()
    for type_name in BUILTIN_TYPES:
        assert sorted(DEFAULT_MATRIX[type_name]) == sorted(str(c) for c in TaskComplexity)
        tiers = [matrix.tier(TaskType(type_name), c) for c in TaskComplexity]
        assert all(isinstance(t, ModelTier) for t in tiers)
        assert [t.rank for t in tiers] == sorted(t.rank for t in tiers), type_name
        assert tiers[-1] is ModelTier.HIGH


def test_a_registered_type_without_a_row_is_routed_like_reasoning():
    extra = register_task_type("test_tiers_extra")
    matrix = TierMatrix()
    assert [matrix.tier(extra, c) for c in TaskComplexity] == [
        matrix.tier(TaskType.REASONING, c) for c in TaskComplexity]


def test_overrides_merge_into_the_defaults():
    matrix = TierMatrix({"doc_creation": {"standard": "medium"}, "math": {"simple": "medium"}})
    assert matrix.tier(TaskType.DOC_CREATION, TaskComplexity.STANDARD) is ModelTier.MEDIUM
    assert matrix.tier(TaskType.DOC_CREATION, TaskComplexity.SIMPLE) is ModelTier.LOW  # untouched
    assert matrix.tier(TaskType.MATH, TaskComplexity.SIMPLE) is ModelTier.MEDIUM
    assert matrix.tier(TaskType.TRANSLATION, TaskComplexity.STANDARD) is ModelTier.LOW  # other rows too
    assert DEFAULT_MATRIX["doc_creation"]["standard"] == "low"  # the default is not modified


def test_an_override_row_for_a_registered_type_starts_from_the_fallback_row():
    extra = register_task_type("test_tiers_row")
    matrix = TierMatrix({"test_tiers_row": {"simple": "medium"}})
    assert [str(matrix.tier(extra, c)) for c in TaskComplexity] == ["medium", "medium", "high", "high"]


def test_overrides_are_case_insensitive():
    matrix = TierMatrix({"MATH": {"Simple": "MEDIUM"}})
    assert matrix.tier(TaskType.MATH, TaskComplexity.SIMPLE) is ModelTier.MEDIUM


def test_a_non_monotone_override_names_the_cell():
    with pytest.raises(ConfigError) as caught:
        TierMatrix({"math": {"research": "low"}})
    assert caught.value.problems == [("tier_matrix.math.research", "a harder complexity may not map to a cheaper tier")]
    assert "tier_matrix.math.research" in str(caught.value)


def test_every_problem_is_listed_at_once():
    with pytest.raises(ConfigError) as caught:
        TierMatrix({
            "astrology": {"simple": "low"},
            "math": {"extreme": "high", "simple": "ultra"},
            "doc_creation": "high",
            "code_creation": {"simple": "high", "standard": "low"},
        })
    assert sorted(path for path, _ in caught.value.problems) == [
        "tier_matrix.astrology",
        "tier_matrix.code_creation.standard",
        "tier_matrix.doc_creation",
        "tier_matrix.math.extreme",
        "tier_matrix.math.simple",
    ]
    messages = dict(caught.value.problems)
    assert "register_task_type" in messages["tier_matrix.astrology"]
    assert "unknown complexity" in messages["tier_matrix.math.extreme"]
    assert "'ultra'" in messages["tier_matrix.math.simple"] and "low" in messages["tier_matrix.math.simple"]


def test_the_router_reports_matrix_problems_as_config_errors():
    with pytest.raises(ConfigError, match="tier_matrix.math.research"):
        Router(tier_matrix={"math": {"research": "low"}})


def test_a_five_tier_matrix(five_tiers):
    matrix = TierMatrix({"math": {"simple": "nano", "research": "frontier"}})
    assert matrix.tier(TaskType.MATH, TaskComplexity.SIMPLE) is ModelTier.NANO
    assert matrix.tier(TaskType.MATH, TaskComplexity.RESEARCH) is ModelTier.FRONTIER
    with pytest.raises(ConfigError, match="tier_matrix.math.complex"):
        TierMatrix({"math": {"research": "frontier", "complex": "nano"}})


def test_a_default_tier_missing_from_the_levels_in_force_is_reported():
    set_tier_levels(["small", "large"])
    try:
        with pytest.raises(ConfigError) as caught:
            TierMatrix()
        assert "tier_matrix.reasoning.simple" in dict(caught.value.problems)
    finally:
        set_tier_levels(["low", "medium", "high"])


# -- difficulty bands --------------------------------------------------------------------------

def test_band_difficulty_places_the_estimate_inside_the_tier_band():
    assert band_difficulty(ModelTier.LOW, 0.0) == 0.0
    assert band_difficulty(ModelTier.MEDIUM, 0.5) == pytest.approx(0.5)
    assert band_difficulty(ModelTier.HIGH, 1.0) < 1.0
    assert band_difficulty(ModelTier.LOW, 1.0) < band_difficulty(ModelTier.MEDIUM, 0.0)
    assert band_difficulty(ModelTier.LOW, -3.0) == 0.0
    assert band_difficulty(ModelTier.HIGH, float("nan")) == pytest.approx(2 / 3, abs=1e-4)


def test_band_difficulty_with_five_tiers(five_tiers):
    assert band_difficulty(ModelTier.NANO, 0.999) < band_difficulty(ModelTier.LOW, 0.0) == 0.2
    assert band_difficulty(ModelTier.FRONTIER, 0.0) == 0.8


# -- the property: a higher difficulty never comes with a cheaper tier -----------------------------

verdicts = st.builds(
    Verdict,
    task_type=st.sampled_from(BUILTIN_TYPES).map(TaskType),
    complexity=st.sampled_from(list(TaskComplexity)),
    confidence=st.floats(0, 1),
    difficulty=st.floats(0, 1),
    layer=st.just("custom"),
)


def router_driven_by(**options) -> Router:
    """A Router whose custom classifier answers with the verdict passed as the task's ``history``."""
    return Router(custom_classifier=lambda task, ctx: ctx.history[0], **options)


def decide(router: Router, verdict: Verdict):
    return router.classify("any task", history=[verdict])


def assert_monotone(d1, d2) -> None:
    if d1.difficulty < d2.difficulty:
        assert d1.tier.rank <= d2.tier.rank, (d1, d2)
    if d2.difficulty < d1.difficulty:
        assert d2.tier.rank <= d1.tier.rank, (d1, d2)


def test_difficulty_is_monotone_with_tier():
    router = router_driven_by()

    @given(verdicts, verdicts)
    def check(v1, v2):
        d1, d2 = decide(router, v1), decide(router, v2)
        assert (d1.task_type, d1.complexity) == (v1.task_type, v1.complexity)
        assert_monotone(d1, d2)

    check()


def test_difficulty_is_monotone_with_tier_over_five_tiers(five_tiers):
    registry = {"version": "1", "providers": {"five": {"tiers": {t: f"model-{t}" for t in FIVE_TIERS}}}}
    matrix = {t: {"simple": "nano", "standard": "low", "complex": "high", "research": "frontier"}
              for t in ("math", "code_creation")}
    matrix["conversation"] = {"simple": "nano", "standard": "nano", "complex": "medium", "research": "high"}
    router = router_driven_by(tier_matrix=matrix, model_registry=registry)

    @given(verdicts, verdicts)
    def check(v1, v2):
        d1, d2 = decide(router, v1), decide(router, v2)
        assert d1.model_name == f"model-{d1.tier}"  # no tier substitution blurs the bands
        assert_monotone(d1, d2)

    check()
    assert decide(router, Verdict(TaskType.MATH, TaskComplexity.RESEARCH, 1, 1, "custom")).tier is ModelTier.FRONTIER
    assert decide(router, Verdict(TaskType.MATH, TaskComplexity.SIMPLE, 1, 0, "custom")).tier is ModelTier.NANO


def test_difficulty_stays_monotone_with_tier_after_pii_floors_and_tenant_limits():
    router = router_driven_by(pii_policy={"min_tier": "high"})
    tiers = st.sampled_from(["low", "medium", "high"])
    limits = st.fixed_dictionaries({}, optional={"min_tier": tiers, "max_tier": tiers}).filter(
        lambda t: ModelTier(t.get("min_tier", "low")) <= ModelTier(t.get("max_tier", "high")))
    calls = st.tuples(verdicts, st.sampled_from(["no personal data", "mail jane@example.com"]), limits)

    @given(calls, calls)
    def check(c1, c2):
        (v1, task1, tenant1), (v2, task2, tenant2) = c1, c2
        d1 = router.classify(task1, history=[v1], tenant_config=tenant1)
        d2 = router.classify(task2, history=[v2], tenant_config=tenant2)
        assert_monotone(d1, d2)

    check()
