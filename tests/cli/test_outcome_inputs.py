"""What `dmr train --outcomes/--from-log` and `dmr eval --outcomes` do with inputs a user gets wrong:
each is refused with one line saying what to change, before any training or scoring is done, and
a decision log's tier outcomes train without naming the order."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import dmr.cli.ml  # noqa: F401  # attaches `train` and `eval` to `cli`
from dmr import Router
from dmr.cli.main import cli
from dmr.ml.outcomes import OutcomeModel, order_by_price

_EASY = ["say hi to my friend", "what colour is the sky", "name a fruit", "thanks a lot"]
_HARD = ["prove that the square root of two is irrational, step by step",
         "derive the closed form of the recurrence and analyse its complexity"]


def _run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(n=40, models=("cheap", "dear")):
    rows = []
    for i in range(n):
        hard = i % 3 == 0
        prompt = (_HARD[i % 2] if hard else _EASY[i % 4]) + f" (case {i})"
        rows.append({"id": f"q{i}", "prompt": prompt, "outcomes": {models[0]: 0.0 if hard else 1.0, models[1]: 1.0}})
    return rows


@pytest.fixture
def outcomes(tmp_path):
    return _write(tmp_path / "outcomes.jsonl", _rows())


@pytest.fixture
def prices(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"cheap": [0.1, 0.2, "test"], "dear": [10, 20, "test"]}), encoding="utf-8")
    return path


def test_a_decision_log_s_tier_outcomes_train_without_naming_the_order(tmp_path):
    log = tmp_path / "decisions.sqlite3"
    with Router(decision_logger=str(log)) as router:
        for i in range(30):
            hard = i % 3 == 0
            decision = router.classify((_HARD[i % 2] if hard else _EASY[i % 4]) + f" (case {i})")
            router.record_outcome(decision.decision_id, 0.0 if hard else 1.0, tier="low")
            router.record_outcome(decision.decision_id, 1.0, tier="high")
    result = _run("train", "--from-log", log, "--output", tmp_path / "model.npz")
    assert result.exit_code == 0, result.output
    assert "models cheapest to best: low, high" in result.output
    model = OutcomeModel.load(tmp_path / "model.npz")
    assert model.models_ == ("low", "high")
    easy, hard = model.difficulty(["name a fruit (case 100)", _HARD[0] + " (case 100)"])
    assert hard > easy


def test_a_log_without_outcomes_is_an_error_saying_how_to_record_them_not_a_usage_error(tmp_path):
    log = tmp_path / "decisions.jsonl"
    with Router(decision_logger=str(log)) as router:
        router.classify("name a fruit")
    result = _run("train", "--from-log", log, "--output", tmp_path / "model.npz")
    assert result.exit_code == 1 and "record_outcome" in result.stderr
    assert not (tmp_path / "model.npz").exists()


def test_tiers_go_in_tier_order_and_models_by_price():
    assert order_by_price(["high", "low", "medium"]) == ("low", "medium", "high")
    assert order_by_price(["b", "a"], {"a": 2.0, "b": 1.0}) == ("b", "a")
    with pytest.raises(ValueError, match="--models A,B"):
        order_by_price(["high", "gpt-x"], {})  # a mix is not a tier order


@pytest.mark.parametrize("models, message", [
    ("cheap,cheap,dear", "name cheap more than once"),
    ("cheap,ghost", "no row scores ghost (the rows score cheap, dear)"),
    ("dear,cheap", "the models go cheapest first, but the prices order them cheap, dear"),
])
def test_an_order_that_names_a_model_twice_or_one_never_scored_is_refused(outcomes, prices, tmp_path, models,
                                                                          message):
    result = _run("train", "--outcomes", outcomes, "--models", models, "--prices", prices,
                  "--output", tmp_path / "m.npz")
    assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("output, message", [
    ("outcomes.jsonl/m.npz", "outcomes.jsonl is a file, not a folder"),
    ("", "is a folder, not a file name"),
])
def test_an_output_that_cannot_be_written_is_refused_before_training(outcomes, tmp_path, monkeypatch, output,
                                                                     message):
    monkeypatch.chdir(tmp_path)
    result = _run("train", "--outcomes", outcomes, "--models", "cheap,dear", "--output", output)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "-fold held-out" not in result.output and not list(tmp_path.rglob("*.npz"))


@pytest.mark.parametrize("plot, message", [
    ("curve.txt", "matplotlib cannot write .txt files"),
    ("outcomes.jsonl/curve.png", "outcomes.jsonl is a file, not a folder"),
])
def test_a_plot_that_cannot_be_written_is_refused_before_scoring(outcomes, prices, tmp_path, monkeypatch, plot,
                                                                 message):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    result = _run("eval", "--outcomes", outcomes, "--strong", "dear", "--weak", "cheap", "--prices", prices,
                  "--plot", plot)
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_plot_in_a_new_folder_is_written(outcomes, prices, tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "new" / "folder" / "curve.png"
    result = _run("eval", "--outcomes", outcomes, "--strong", "dear", "--weak", "cheap", "--prices", prices,
                  "--plot", target)
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("price", ["[-1, 2, \"x\"]", "[NaN, 2, \"x\"]", "[1e309, 2, \"x\"]", "[Infinity, 1, \"x\"]"])
def test_a_price_that_is_negative_or_not_finite_is_refused(outcomes, tmp_path, price):
    path = tmp_path / "prices.json"
    path.write_text('{"cheap": ' + price + ', "dear": [10, 20, "x"]}', encoding="utf-8")
    result = _run("eval", "--outcomes", outcomes, "--strong", "dear", "--weak", "cheap", "--prices", path)
    assert result.exit_code == 1
    assert "'cheap' must be [input, output, source]: two prices in USD per 1M tokens, finite and not negative" \
        in result.output


def test_a_strong_model_cheaper_than_the_weak_one_is_refused(outcomes, prices):
    result = _run("eval", "--outcomes", outcomes, "--strong", "cheap", "--weak", "dear", "--prices", prices)
    assert result.exit_code == 1
    assert "the strong model 'cheap' costs less than the weak one 'dear'" in result.output
    assert "swap them" in result.output


@pytest.mark.parametrize("edit, message", [
    ({"contaminated": "false"}, "outcomes.jsonl:3: 'contaminated' must be true or false, got 'false'"),
    ({"outcomes": {"": 1.0, "dear": 1.0}}, "outcomes.jsonl:3: a model name in 'outcomes' is empty"),
    ({"id": "q0"}, "outcomes.jsonl:3: id 'q0' is already used at"),
])
def test_a_bad_row_is_refused_with_its_line(tmp_path, prices, edit, message):
    rows = _rows()
    rows[2].update(edit)
    path = _write(tmp_path / "outcomes.jsonl", rows)
    for args in (["eval", "--outcomes", path, "--strong", "dear", "--weak", "cheap", "--prices", prices],
                 ["train", "--outcomes", path, "--models", "cheap,dear", "--output", tmp_path / "m.npz"]):
        result = _run(*args)
        assert result.exit_code == 1 and message in result.output, result.output


def test_real_booleans_still_mark_contaminated_rows(tmp_path, prices):
    rows = _rows()
    rows[2]["contaminated"] = True
    rows[3]["contaminated"] = False
    result = _run("eval", "--outcomes", _write(tmp_path / "outcomes.jsonl", rows), "--strong", "dear", "--weak",
                  "cheap", "--prices", prices, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert (report["n"], report["contaminated_excluded"]) == (39, 1)
    assert np.isfinite(report["subsets"][0]["routers"]["router"]["cs95"])


def test_rows_without_both_scores_are_counted_and_a_gapless_pair_has_no_apgr(tmp_path, prices):
    rows = _rows()
    for r in rows:  # the weak model as good as the strong one everywhere: no gap to recover
        r["outcomes"]["dear"] = r["outcomes"]["cheap"]
    del rows[5]["outcomes"]["dear"]  # the strong model never answered this one
    path = _write(tmp_path / "outcomes.jsonl", rows)
    args = ["eval", "--outcomes", path, "--strong", "dear", "--weak", "cheap", "--prices", prices,
            "--difficulty-from", "length"]
    result = _run(*args)
    assert result.exit_code == 0, result.output
    assert "39 prompts (0 contaminated, 1 without scores of both models left out)" in result.output
    assert "APGR     -   CPT(50%)     -   CPT(80%)     -" in result.output
    report = json.loads(_run(*args, "--json").output)
    assert report["unscored_excluded"] == 1
    assert report["subsets"][0]["routers"]["length"]["apgr"] is None
