"""Quality targets: the cheapest tier expected to reach a share of the best tier's quality, from the
difficulty prior or from an outcome model; the policies still apply afterwards."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dmr.errors import ConfigError
from dmr.quality import MAX_GAP, QualityTarget, prior_shares
from dmr.router import Router
from dmr.types import ModelTier, TaskComplexity, TaskType, Verdict

EASY = "What is 2+2?"
HARD = "Design a CQRS architecture for an order system that is distributed across regions, with event sourcing"
TASKS = [EASY, HARD, "Hi!", "Translate 'good morning' into French",
         "Write a Python function to merge two sorted lists",
         "Prove that there are infinitely many primes and discuss the history of the proof",
         "Could you look at our churn numbers and tell me what stands out?",
         "Summarise this memo in two sentences", "Implement a lock-free queue in C++ with hazard pointers"]
TARGETS = (0.5, 0.8, 0.9, 0.95, 0.99, 1.0)
ACME = {"version": "1", "providers": {"acme": {"tiers": {"low": "acme-s", "medium": "acme-m", "high": "acme-l"}}}}


def rank(tier) -> int:
    return ModelTier(tier).rank


def fixed(difficulty: float, complexity=TaskComplexity.SIMPLE):
    """A custom classifier whose verdict carries a chosen raw difficulty."""
    def classify(task, ctx):
        return Verdict(TaskType.MATH, complexity, 0.9, difficulty, "custom", "custom says so")
    return classify


# -- the prior -------------------------------------------------------------------------------------

def test_the_prior_keeps_the_top_tier_whole_and_cheaper_tiers_lose_more_as_tasks_get_harder():
    assert prior_shares(0.0) == (1.0, 1.0, 1.0)
    assert prior_shares(1.0) == pytest.approx((1 - MAX_GAP, 1 - MAX_GAP / 2, 1.0))
    assert prior_shares(float("nan")) == prior_shares(0.5)
    assert prior_shares(7.0) == prior_shares(1.0) and prior_shares(-1.0) == prior_shares(0.0)


@pytest.mark.parametrize("difficulty, tier", [(0.0, "low"), (0.25, "low"), (0.26, "medium"), (0.5, "medium"),
                                              (0.51, "high"), (1.0, "high")])
def test_at_a_target_of_090_the_prior_reproduces_the_default_matrix_boundaries(difficulty, tier):
    assert QualityTarget(0.9).from_prior(difficulty).tier == tier


@settings(max_examples=300, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1), st.floats(0.01, 1), st.floats(0.01, 1))
def test_with_the_prior_a_higher_target_or_difficulty_never_gives_a_cheaper_tier(d1, d2, t1, t2):
    (d_lo, d_hi), (t_lo, t_hi) = sorted((d1, d2)), sorted((t1, t2))
    assert rank(QualityTarget(t_hi).from_prior(d_lo).tier) >= rank(QualityTarget(t_lo).from_prior(d_lo).tier)
    assert rank(QualityTarget(t_lo).from_prior(d_hi).tier) >= rank(QualityTarget(t_lo).from_prior(d_lo).tier)


def test_the_prior_works_with_custom_tier_levels(tier_levels):
    tier_levels(["nano", "low", "medium", "high", "frontier"])
    shares = prior_shares(1.0)
    assert len(shares) == 5 and shares[-1] == 1.0 and list(shares) == sorted(shares)
    assert QualityTarget(1.0).from_prior(0.5).tier == "frontier"
    assert QualityTarget(0.5).from_prior(1.0).tier == "nano"


@pytest.fixture
def tier_levels():
    from dmr.types import set_tier_levels

    yield set_tier_levels
    set_tier_levels(["low", "medium", "high"])


# -- through the Router ----------------------------------------------------------------------------

ROUTERS: dict[float, Router] = {}


def router_for(target: float) -> Router:
    if target not in ROUTERS:
        ROUTERS[target] = Router(quality_target=target)
    return ROUTERS[target]


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.sampled_from(TASKS), st.text(min_size=1, max_size=200).filter(str.strip)))
def test_a_higher_target_never_gives_a_cheaper_tier(task):
    ranks = [router_for(target).classify(task).tier.rank for target in TARGETS]
    assert ranks == sorted(ranks)


def test_the_decision_says_the_quality_target_chose_the_tier():
    decision = Router(quality_target=0.95, custom_classifier=fixed(0.3)).classify(EASY)
    assert decision.tier is ModelTier.HIGH
    assert decision.policies_applied == ("quality_target:0.95->high",)
    assert "quality target 0.95: high is the cheapest tier expected to reach it" in decision.reasoning
    assert "instead of the tier matrix's low" in decision.reasoning
    agree = Router(quality_target=0.95, custom_classifier=fixed(0.05)).classify(EASY)
    assert agree.tier is ModelTier.LOW and "instead of" not in agree.reasoning


def test_without_a_target_the_matrix_decides_as_before():
    from dmr.tiers import TierMatrix

    plain, targeted, matrix = Router(), Router(quality_target=0.5), TierMatrix()
    for task in TASKS:
        decision = plain.classify(task)
        assert not any(p.startswith("quality_target") for p in decision.policies_applied)
        assert decision.tier is matrix.tier(decision.task_type, decision.complexity)
        assert targeted.classify(task).policies_applied[0].startswith("quality_target:0.5->")


def test_a_target_of_one_picks_the_best_tier_unless_the_task_has_no_difficulty():
    assert Router(quality_target=1.0, custom_classifier=fixed(0.01)).classify(EASY).tier is ModelTier.HIGH
    assert Router(quality_target=1.0, custom_classifier=fixed(0.0)).classify(EASY).tier is ModelTier.LOW
    chosen = [Router(quality_target=1.0).classify(task) for task in TASKS]
    for decision in chosen:
        # Only a task with no difficulty at all (banded at 0 in the low tier) stays low.
        assert decision.tier is (ModelTier.LOW if decision.difficulty == 0.0 else ModelTier.HIGH)
    assert {d.tier for d in chosen} == {ModelTier.LOW, ModelTier.HIGH}


def test_the_decision_difficulty_stays_banded_in_the_chosen_tier():
    decision = Router(quality_target=0.95, custom_classifier=fixed(0.3)).classify(EASY)
    assert 2 / 3 <= decision.difficulty < 1.0


def test_policies_still_apply_after_the_target():
    floor = Router(quality_target=0.5, pii_policy={"min_tier": "high"}).classify("Email jane@example.com: hi")
    assert floor.tier is ModelTier.HIGH
    assert floor.policies_applied[0] == "quality_target:0.5->low" and "pii_floor:high" in floor.policies_applied
    capped = Router(quality_target=1.0).classify(HARD, tenant_config={"max_tier": "low"})
    assert capped.tier is ModelTier.LOW
    assert capped.policies_applied == ("quality_target:1->high", "tenant_max_tier:low")


def test_without_any_layer_answer_and_no_outcome_model_the_default_tier_stays():
    decision = Router(quality_target=1.0, layer1_enabled=False, layer3_enabled=False).classify(HARD)
    assert decision.tier is ModelTier.MEDIUM and decision.policies_applied == ()


@pytest.mark.parametrize("value", [0, -0.1, 1.01, True, float("nan"), "high"])
def test_quality_target_must_be_in_zero_one(value):
    with pytest.raises(ConfigError) as caught:
        Router(quality_target=value)
    assert [path for path, _ in caught.value.problems] == ["quality_target"]


def test_an_outcome_model_needs_a_target():
    with pytest.raises(ConfigError) as caught:
        Router(outcome_model="model.npz")
    assert caught.value.problems == [
        ("outcome_model", "Value error, needs quality_target (the share of the best tier's quality to aim for)")]


def test_quality_target_in_dmr_yaml(tmp_path):
    (tmp_path / "dmr.yaml").write_text(yaml.safe_dump({"quality_target": 0.95}))
    router = Router.from_yaml(tmp_path / "dmr.yaml")
    assert router.classify(HARD).policies_applied[0] == "quality_target:0.95->high"


# -- with an outcome model -------------------------------------------------------------------------

SIMPLE = [f"Hi there, how are you doing today {i}?" for i in range(8)]
MIDDLE = [f"Summarise the meeting notes from week {i} into three bullet points" for i in range(8)]
DEEP = [f"Prove the conjecture about prime gaps in case {i} and design a distributed verifier" for i in range(8)]


@pytest.fixture(scope="module")
def outcome_model_file(tmp_path_factory):
    import dmr.ml.outcomes as outcomes

    prompts = SIMPLE + MIDDLE + DEEP
    scores = ([{"low": 1, "medium": 1, "high": 1}] * 8 + [{"low": 0, "medium": 1, "high": 1}] * 8
              + [{"low": 0, "medium": 0, "high": 1}] * 8)
    model = outcomes.OutcomeModel(l2=1e-2, use_head=False, encoder=None)
    model.fit(prompts, scores, models=["low", "medium", "high"])
    return model.save(tmp_path_factory.mktemp("outcomes") / "outcome-model.npz")


def expected_tier(probabilities, target: float) -> ModelTier:
    for tier, p in zip(ModelTier.levels(), probabilities):
        if p >= target:
            return tier
    return ModelTier.levels()[-1]


@pytest.mark.parametrize("target", [0.3, 0.6, 0.9, 0.99, 1.0])
def test_with_an_outcome_model_choices_follow_its_probabilities(outcome_model_file, target):
    from dmr.ml.outcomes import OutcomeModel

    model = OutcomeModel.load(outcome_model_file)
    router = Router(quality_target=target, outcome_model=str(outcome_model_file))
    for task in SIMPLE[:2] + MIDDLE[:2] + DEEP[:2] + [EASY, HARD]:
        probabilities = model.predict([task])[0]
        decision = router.classify(task)
        assert decision.tier is expected_tier(probabilities, target), (task, probabilities)
        assert decision.policies_applied[0] == f"quality_target:{target:g}->{decision.tier}"
        assert "from the outcome model" in decision.reasoning
        low, high = decision.tier.rank / 3, (decision.tier.rank + 1) / 3
        assert low <= decision.difficulty < high
        assert decision.difficulty == pytest.approx(low + min(1 - probabilities[0], 0.999) / 3, abs=1e-4)


def test_the_outcome_model_separates_easy_from_hard_tasks(outcome_model_file):
    router = Router(quality_target=0.8, outcome_model=str(outcome_model_file))
    assert router.classify(SIMPLE[0]).tier is ModelTier.LOW
    assert router.classify(DEEP[0]).tier is ModelTier.HIGH


def test_an_outcome_model_decides_even_when_no_layer_answers(outcome_model_file):
    router = Router(quality_target=0.8, outcome_model=str(outcome_model_file), layer1_enabled=False,
                    layer3_enabled=False)
    assert router.classify(SIMPLE[0]).tier is ModelTier.LOW


def test_outcome_model_relative_to_dmr_yaml(outcome_model_file, tmp_path):
    import shutil

    for suffix in (".npz", ".json"):
        shutil.copy(outcome_model_file.with_suffix(suffix), tmp_path / f"om{suffix}")
    (tmp_path / "dmr.yaml").write_text("quality_target: 0.8\noutcome_model: om.npz\n")
    assert Router.from_yaml(tmp_path / "dmr.yaml").classify(DEEP[0]).tier is ModelTier.HIGH


def test_outcome_model_columns_named_by_registry_model(tmp_path):
    import dmr.ml.outcomes as outcomes

    prompts = SIMPLE + DEEP
    scores = [{"acme-s": 1, "acme-l": 1}] * 8 + [{"acme-s": 0, "acme-l": 1}] * 8
    model = outcomes.OutcomeModel(l2=1e-2, use_head=False, encoder=None)
    path = model.fit(prompts, scores, models=["acme-s", "acme-l"]).save(tmp_path / "acme.npz")
    router = Router(quality_target=0.8, outcome_model=str(path), model_registry=ACME)
    easy, hard = router.classify(SIMPLE[0]), router.classify(DEEP[0])
    assert (easy.tier, easy.model_name) == (ModelTier.LOW, "acme-s")
    assert (hard.tier, hard.model_name) == (ModelTier.HIGH, "acme-l")
    with pytest.raises(ConfigError, match="'acme-s', 'acme-l'.*neither tiers"):
        Router(quality_target=0.8, outcome_model=str(path), model_registry={"version": "1", "providers": {}})


def test_routers_with_different_outcome_models_never_share_cached_decisions():
    # Two Routers (two replicas, or two tenants' routers) on one cache: each model's own tier, not
    # the first one's from the cache; the same model again does share.
    import dmr.ml.outcomes as outcomes
    from dmr.store import MemoryCache

    def fitted(low_score):
        model = outcomes.OutcomeModel(l2=1e-2, use_head=False, encoder=None)
        return model.fit(SIMPLE, [{"low": low_score, "high": 1}] * 8, models=["low", "high"])

    cache = MemoryCache()
    easy, hard = fitted(1), fitted(0)
    assert Router(quality_target=0.9, outcome_model=easy, cache_backend=cache).classify(SIMPLE[0]).tier is ModelTier.LOW
    decision = Router(quality_target=0.9, outcome_model=hard, cache_backend=cache).classify(SIMPLE[0])
    assert decision.tier is ModelTier.HIGH and "cache_hit" not in decision.policies_applied
    again = Router(quality_target=0.9, outcome_model=fitted(0), cache_backend=cache).classify(SIMPLE[0])
    assert again.tier is ModelTier.HIGH and "cache_hit" in again.policies_applied


def test_an_outcome_model_retrained_at_the_same_path_never_gets_the_old_models_cached_decisions(tmp_path):
    import dmr.ml.outcomes as outcomes
    from dmr.store import MemoryCache

    path = tmp_path / "model.npz"
    cache = MemoryCache()
    for low_score, tier in ((1, ModelTier.LOW), (0, ModelTier.HIGH)):
        model = outcomes.OutcomeModel(l2=1e-2, use_head=False, encoder=None)
        model.fit(SIMPLE, [{"low": low_score, "high": 1}] * 8, models=["low", "high"]).save(path)
        decision = Router(quality_target=0.9, outcome_model=str(path), cache_backend=cache).classify(SIMPLE[0])
        assert decision.tier is tier and "cache_hit" not in decision.policies_applied


def test_a_broken_outcome_model_falls_back_to_the_prior_unless_strict(outcome_model_file):
    router = Router(quality_target=0.9, outcome_model=str(outcome_model_file))
    router._quality.model.featurizer_ = None  # breaks predict, as a corrupted model would
    decision = router.classify(HARD)
    assert "the outcome model failed" in decision.reasoning and "difficulty prior" in decision.reasoning
    strict = Router(quality_target=0.9, outcome_model=str(outcome_model_file), strict=True)
    strict._quality.model.featurizer_ = None
    with pytest.raises(AttributeError):
        strict.classify(HARD)


def test_a_missing_or_unreadable_outcome_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        Router(quality_target=0.9, outcome_model=str(tmp_path / "absent.npz"))
    assert caught.value.problems[0][0] == "outcome_model"
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ConfigError, match="outcome_model"):
        Router(quality_target=0.9, outcome_model=str(tmp_path / "bad.npz"))
    with pytest.raises(ConfigError, match="expected a path or an OutcomeModel"):
        Router(quality_target=0.9, outcome_model=42)
    with pytest.raises(ConfigError, match="the path is empty"):  # not "PosixPath('.') has an empty name"
        Router(quality_target=0.9, outcome_model="")
    from dmr.ml.outcomes import OutcomeModel

    with pytest.raises(ConfigError, match="not fitted; call fit"):
        Router(quality_target=0.9, outcome_model=OutcomeModel())


def test_prior_expectations_are_finite_for_any_verdict_difficulty():
    for d in (0.0, 0.5, 1.0, float("nan"), float("inf")):
        assert all(math.isfinite(s) for s in prior_shares(d))


@pytest.mark.parametrize("raw, shown", [(-1.0, "0.00"), (float("nan"), "0.50"), (3.0, "1.00")])
def test_a_custom_classifiers_difficulty_out_of_range_is_read_and_reported_within_0_and_1(raw, shown):
    def classifier(text, ctx=None):
        return Verdict(TaskType.REASONING, TaskComplexity.STANDARD, 0.99, raw, layer="custom")

    decision = Router(custom_classifier=classifier, quality_target=0.9).classify("hello")
    assert f"at difficulty {shown})" in decision.reasoning
    assert 0.0 <= decision.difficulty <= 1.0
