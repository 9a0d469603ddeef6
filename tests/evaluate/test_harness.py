"""The outcome report: reference routers, subsets and the pool frontier."""

from __future__ import annotations

import random

import pytest

from dmr.evaluate.harness import (
    compare,
    cross_validated,
    fold_of,
    pool_report,
    subset_report,
)
from dmr.evaluate.outcomes import OutcomeRow


def _rows(n=400, seed=0):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        weak = 1.0 if rng.random() < 0.6 else 0.0
        strong = 1.0 if weak or rng.random() < 0.7 else 0.0
        rows.append(OutcomeRow(f"r{i}", "x" * rng.randint(1, 50), {"s": strong, "w": weak},
                               "a" if i % 2 else "b"))
    return rows


PRICES = {"s": 10.0, "w": 1.0}


def test_oracle_near_one_and_reversed_oracle_near_zero():
    rows = _rows()
    gap = [r.outcomes["s"] - r.outcomes["w"] for r in rows]
    report = subset_report(rows, {"perfect": gap, "reversed": [-g for g in gap]}, strong="s", weak="w", prices=PRICES)
    assert report["routers"]["perfect"]["apgr"] > 0.85
    assert report["routers"]["reversed"]["apgr"] < 0.15
    assert report["routers"]["random"]["apgr"] == pytest.approx(0.5)
    assert report["routers"]["perfect"] == report["routers"]["oracle"]
    assert report["routers"]["perfect"]["cs95"] > report["routers"]["random"]["cs95"]
    assert set(report["curves"]) == {"perfect", "reversed", "random"}
    curve = report["curves"]["perfect"]
    assert curve["shares"][0] == 0 and curve["shares"][-1] == 1
    assert curve["qualities"][-1] == pytest.approx(report["strong_quality"], abs=1e-4)


def test_compare_reports_each_benchmark():
    rows = _rows()
    out = compare(rows, {"len": lambda rs: [len(r.prompt) for r in rs]}, strong="s", weak="w", prices=PRICES)
    assert [s["benchmark"] for s in out] == ["b", "a"]
    assert sum(s["n"] for s in out) == len(rows)
    merged = compare(rows, {"len": lambda rs: [len(r.prompt) for r in rs]}, strong="s", weak="w", prices=PRICES,
                     by_benchmark=False)
    assert len(merged) == 1 and merged[0]["n"] == len(rows)
    # "length" is the same score as "len" here
    assert merged[0]["routers"]["len"] == merged[0]["routers"]["length"]


def test_cross_validated_never_scores_a_row_with_a_model_that_saw_it():
    rows = _rows(100)
    seen = {}

    def fit_predict(train, test):
        ids = {r.id for r in train}
        assert not ids & {r.id for r in test}
        # trained on every other fold, scoring exactly one fold
        assert len(train) + len(test) == len(rows) and len({fold_of(r.id) for r in test}) == 1
        return [float(r.id[1:]) for r in test]

    out = cross_validated(rows, fit_predict, on_fold=lambda f: seen.setdefault(f, True))
    # every row gets its own score back, in its own place
    assert out == [float(r.id[1:]) for r in rows] and sorted(seen) == [0, 1, 2, 3, 4]


def test_cross_validated_splits_deal_the_rows_differently_and_still_hold_each_row_out():
    rows = _rows(100)
    groups = {}
    for split in (0, 1, 2):
        tested = []

        def fit_predict(train, test):
            assert not {r.id for r in train} & {r.id for r in test}
            tested.append(frozenset(r.id for r in test))
            return [float(r.id[1:]) for r in test]

        out = cross_validated(rows, fit_predict, split=split)
        assert out == [float(r.id[1:]) for r in rows]  # every row scored once, held out
        groups[split] = set(tested)
    # split 0 is the plain hash of id; the others put different rows together
    assert groups[0] == {frozenset(r.id for r in rows if fold_of(r.id) == f) for f in range(5)}
    assert groups[1] != groups[0] and groups[2] != groups[1]


def _pool_rows(n=300, seed=1):
    # Three models; a prompt's hidden level says which models solve it: level 0 all, 1 mid and
    # high, 2 only high.
    rng = random.Random(seed)
    rows, level = [], []
    for i in range(n):
        lv = rng.choice([0, 0, 0, 1, 1, 2])
        level.append(lv)
        rows.append(OutcomeRow(str(i), "p", {"cheap": float(lv == 0), "mid": float(lv <= 1), "top": 1.0}))
    return rows, level


def test_pool_with_perfect_difficulty_saves_most_of_the_cost():
    rows, level = _pool_rows()
    prices = {"cheap": 1.0, "mid": 4.0, "top": 20.0}
    good = pool_report(rows, level, ["top", "cheap", "mid"], prices)
    bad = pool_report(rows, [-x for x in level], ["top", "cheap", "mid"], prices)
    assert good["models"] == ["cheap", "mid", "top"] and good["best_single"] == "top"
    assert good["target_quality"] == pytest.approx(0.95)
    # the frontier rises with cost and ends at (or below) the best single model
    costs = [p["cost"] for p in good["frontier"]]
    qualities = [p["quality"] for p in good["frontier"]]
    assert costs == sorted(costs) and qualities == sorted(qualities)
    assert all(abs(sum(p["shares"]) - 1) < 1e-3 for p in good["frontier"])
    # only the level-2 sixth truly needs "top": a perfect router saves about 70% of the cost
    assert good["cost_saved"] == pytest.approx(0.78, abs=0.05)
    assert bad["cost_saved"] is not None and bad["cost_saved"] < 0.4


def test_pool_needs_two_models():
    rows, level = _pool_rows(10)
    with pytest.raises(ValueError, match="at least two models"):
        pool_report(rows, level, ["top"], {"top": 1.0})
