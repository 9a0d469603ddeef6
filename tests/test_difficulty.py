"""Difficulty = the type's gap x the position on the complexity scale, the same scale in all layers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dmr.difficulty import TYPE_GAPS, difficulty, expected_difficulty, set_type_gap, type_gap
from dmr.layers.prompt import difficulty_of
from dmr.router import Router
from dmr.types import TaskComplexity, TaskType, register_task_type

positions = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def test_every_built_in_type_has_a_gap_in_the_unit_interval():
    assert set(TYPE_GAPS) == {str(t) for t in list(TaskType)[:9]}
    assert all(0.0 < gap <= 1.0 for gap in TYPE_GAPS.values())


def test_precise_work_has_wider_gaps_than_prose_and_chat():
    # The prior's order: maths first, then reasoning and code, conversation last.
    assert type_gap("math") == max(TYPE_GAPS.values())
    assert type_gap("reasoning") > type_gap("analyzing") > type_gap("doc_creation") > type_gap("conversation")
    assert type_gap("code_creation") > type_gap("translation")


@given(positions, positions)
def test_difficulty_grows_with_the_position_for_every_type(a, b):
    lo, hi = sorted((a, b))
    for task_type in TYPE_GAPS:
        assert difficulty(task_type, lo) <= difficulty(task_type, hi)
        assert 0.0 <= difficulty(task_type, hi) <= 1.0


def test_no_position_means_no_difficulty_whatever_the_type():
    assert all(difficulty(t, 0.0) == 0.0 for t in TYPE_GAPS)


def test_positions_are_clamped_and_nan_counts_as_the_middle():
    assert difficulty("math", 7.0) == 1.0
    assert difficulty("math", -1.0) == 0.0
    assert difficulty("math", float("nan")) == 0.5


def test_expected_difficulty_weights_the_gaps_by_the_type_probabilities():
    probs = {"math": 0.5, "conversation": 0.5}
    assert expected_difficulty(probs, 0.8) == pytest.approx(0.8 * (1.0 + 0.1) / 2)
    # Unnormalised probabilities are normalised; none at all fall back to reasoning's gap.
    assert expected_difficulty({"math": 2.0, "conversation": 2.0}, 0.8) == pytest.approx(0.44)
    assert expected_difficulty({}, 0.5) == pytest.approx(0.5 * type_gap("reasoning"))
    assert expected_difficulty({"math": 0.0}, 0.5) == pytest.approx(0.5 * type_gap("reasoning"))


def test_a_registered_type_takes_its_own_gap_or_reasoning_s():
    register_task_type("gap_probe_with_gap", gap=0.2)
    register_task_type("gap_probe_without_gap")
    assert type_gap("gap_probe_with_gap") == 0.2
    assert difficulty("gap_probe_with_gap", 0.5) == pytest.approx(0.1)
    assert type_gap("gap_probe_without_gap") == type_gap("reasoning")


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, math.inf, "0.5", True, None])
def test_a_gap_outside_the_unit_interval_is_refused(bad):
    with pytest.raises(ValueError, match="must be a number in"):
        set_type_gap("gap_probe_bad", bad)
    assert type_gap("gap_probe_bad") == type_gap("reasoning")
    if bad is not None:  # None means "no gap of its own" to register_task_type
        with pytest.raises(ValueError, match="must be a number in"):
            register_task_type("gap_probe_refused", gap=bad)
        assert "gap_probe_refused" not in TaskType


def test_layer_2_difficulty_scales_its_complexity_by_the_type():
    complex_ = TaskComplexity.COMPLEX
    assert difficulty_of(TaskType.MATH, complex_) == pytest.approx(0.625)
    assert difficulty_of(TaskType.DOC_CREATION, complex_) == pytest.approx(0.625 * type_gap("doc_creation"))
    ranks = [difficulty_of(TaskType.CODE_CREATION, c) for c in TaskComplexity]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)


def test_with_a_quality_target_a_short_puzzle_outranks_a_long_story():
    """The point of difficulty over complexity: long prose is complex-looking and cheap models write
    it well; a two-line probability question is where they fail."""
    router = Router(quality_target=0.9)
    puzzle = router.classify("When rolling two dice, what is the probability of a sum of at least 3?")
    story = router.classify("Write a short story about a lighthouse keeper who finds a message in a bottle, "
                            "with a twist at the end and a hopeful tone")
    assert puzzle.difficulty > story.difficulty and puzzle.tier.rank > story.tier.rank
    assert router.classify("hi").difficulty == 0.0  # trivial input stays at no difficulty at all


def test_on_held_out_capability_labels_the_shipped_difficulty_beats_complexity_and_length():
    """On the team's held-out capability rows (never trained on): the estimate Layer 3 ships ranks
    the labels better than the type-gap formula, which ranks them better than length."""
    from pathlib import Path

    import numpy as np

    from dmr.layers.embedding import DEFAULT_HEAD
    from dmr.ml.head import NgramHead
    from dmr.ml.needs import load_capability, needs_report, predict_needs
    from dmr.ml.train import is_heldout, l1_signals

    rows = [r for r in load_capability(Path(__file__).resolve().parents[1] / "datasets" / "capability")
            if is_heldout(r[0])]
    texts, needs = [t for t, _ in rows], [n for _, n in rows]
    head = NgramHead.load(DEFAULT_HEAD)
    shipped = needs_report(predict_needs(head, texts), needs)
    p_type, p_cx = head.predict_proba(texts, l1_signals(texts))
    position = p_cx @ np.arange(p_cx.shape[1]) / (p_cx.shape[1] - 1)
    formula = [expected_difficulty(dict(zip(head.type_labels_, p)), x) for p, x in zip(p_type, position)]
    by_formula = needs_report(formula, needs)
    by_length = needs_report([len(t) for t in texts], needs)
    assert len(rows) > 1000
    assert shipped["spearman"] > by_formula["spearman"] > by_length["spearman"]
    assert shipped["auc_needs_2"] > 0.85
