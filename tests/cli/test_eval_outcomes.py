"""`dmr eval --outcomes` and `dmr train --outcomes`: on outcome files the tests write themselves,
and (when it is present) on the shared public evaluation data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

import dmr.cli.ml  # noqa: F401  # attaches `train` and `eval` to `cli`
from dmr.cli.main import cli
from services import kafka_server  # noqa: F401  # a real Kafka-protocol broker (tests/services.py)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "eval"

_EASY = ["say hi to my friend", "what colour is the sky", "name a fruit", "thanks a lot", "translate 'cat' to French"]
_HARD = ["prove that the square root of two is irrational and explain each step carefully",
         "design a distributed consensus protocol that tolerates byzantine faults, with proofs",
         "derive the closed form of the recurrence and analyse its complexity in detail"]

_METRICS = {"type": "object", "required": ["apgr", "cpt50", "cpt80", "cs95"],
            "properties": {k: {"type": ["number", "null"]} for k in ("apgr", "cpt50", "cpt80", "cs95")}}
REPORT_SCHEMA = {
    "type": "object",
    "required": ["mode", "n", "contaminated_excluded", "strong", "weak", "prices", "scorer", "subsets", "pool"],
    "properties": {
        "mode": {"const": "outcomes"},
        "n": {"type": "integer", "minimum": 1},
        "contaminated_excluded": {"type": "integer", "minimum": 0},
        "prices": {"type": "object", "additionalProperties": {"type": "number"}},
        "subsets": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["benchmark", "n", "weak_quality", "strong_quality", "routers", "curves"],
            "properties": {
                "routers": {"type": "object", "required": ["random", "length", "oracle"],
                            "additionalProperties": _METRICS},
                "curves": {"type": "object", "additionalProperties": {
                    "type": "object", "required": ["shares", "qualities"]}},
            }}},
        "pool": {"type": ["object", "null"]},
    },
}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _rows(n=120, seed=0):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        hard = i % 3 == 0
        prompt = rng.choice(_HARD if hard else _EASY) + f" (case {i})"
        weak = 0.0 if hard else 1.0
        rows.append({"id": f"q{i}", "prompt": prompt, "benchmark": "alpha" if i % 2 else "beta",
                     "outcomes": {"big-model": 1.0, "small-model": weak, "mid-model": 1.0 if i % 6 else weak}})
    rows.append({"id": "leak", "prompt": "seen in training", "outcomes": {"big-model": 1, "small-model": 1,
                                                                           "mid-model": 1}, "contaminated": True})
    return rows


@pytest.fixture
def outcomes(tmp_path):
    path = tmp_path / "outcomes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()), encoding="utf-8")
    return path


@pytest.fixture
def prices(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"big-model": [10, 30, "test"], "mid-model": [2, 4, "test"],
                                "small-model": [0.5, 0.5, "test"]}))
    return path


def _run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def test_eval_prints_the_metrics_of_every_router(outcomes, prices):
    result = _run("eval", "--outcomes", outcomes, "--strong", "big-model", "--weak", "small-model",
                  "--prices", prices)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "120 prompts (1 contaminated left out)" in out
    assert "alpha (n=60)" in out and "beta (n=60)" in out
    for name in ("router", "random", "length", "oracle"):
        assert f"  {name}" in out
    assert out.count("CS@95") == 8 and "APGR" in out
    # beta: a third of the prompts are hard (the weak model fails them), so weak scores 2/3; the
    # oracle sends exactly that third to the strong model: PGR climbs to 1 over the first third
    # (APGR 1 - 1/6) and 80 % of the gap needs 80 % of that third.
    assert "beta (n=60): weak 0.667, strong 1.000" in out
    oracle = [line for line in out.splitlines() if line.strip().startswith("oracle")]
    assert len(oracle) == 2 and all("APGR 0.833" in line and "CPT(80%) 26.7%" in line for line in oracle)


def test_eval_json_report_follows_the_schema(outcomes, prices):
    result = _run("eval", "--outcomes", outcomes, "--strong", "big-model", "--weak", "small-model",
                  "--prices", prices, "--benchmark", "alpha", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    jsonschema.validate(report, REPORT_SCHEMA)
    assert [s["benchmark"] for s in report["subsets"]] == ["alpha"]
    assert report["prices"] == {"big-model": 20.0, "small-model": 0.5}
    sub = report["subsets"][0]
    assert sub["weak_quality"] == pytest.approx(2 / 3, abs=0.02) and sub["strong_quality"] == 1.0
    # the oracle knows the outcomes: it reaches the strong model's quality after 1/3 of the calls
    assert sub["routers"]["oracle"]["cpt80"] <= 0.34
    assert sub["routers"]["oracle"]["apgr"] > 0.8


def test_eval_baselines_and_pool(outcomes, prices):
    result = _run("eval", "--outcomes", outcomes, "--pool", "big-model,small-model,mid-model", "--prices", prices,
                  "--difficulty-from", "length", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["strong"] == "big-model" and report["weak"] == "small-model" and report["scorer"] == "length"
    pool = report["pool"]
    assert pool["models"] == ["small-model", "mid-model", "big-model"] and pool["best_single"] == "big-model"
    assert pool["cost_saved"] == pytest.approx(0.756, abs=0.05)
    costs = [p["cost"] for p in pool["frontier"]]
    qualities = [p["quality"] for p in pool["frontier"]]
    assert costs == sorted(costs) and qualities == sorted(qualities)
    assert qualities[-1] <= pool["singles"]["big-model"]["quality"] + 1e-9
    text = _run("eval", "--outcomes", outcomes, "--pool", "big-model,small-model,mid-model", "--prices", prices)
    assert "cost saved against big-model at 95% of its quality" in text.output


def test_missing_price_is_a_clear_error(outcomes, tmp_path):
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"big-model": [10, 30, "test"]}))
    result = _run("eval", "--outcomes", outcomes, "--strong", "big-model", "--weak", "small-model",
                  "--prices", partial)
    assert result.exit_code == 1
    assert "no price for 'small-model'" in result.output
    result = _run("eval", "--outcomes", outcomes, "--strong", "big-model", "--weak", "small-model")
    assert result.exit_code == 1 and "model registry" in result.output


def test_usage_errors(outcomes, prices):
    result = _run("eval")
    assert result.exit_code == 2 and "--outcomes" in result.output
    result = _run("eval", "--outcomes", outcomes, "--prices", prices)  # three models, no pair named
    assert result.exit_code == 1 and "--strong" in result.output
    result = _run("eval", "--outcomes", outcomes, "--prices", prices, "--strong", "big-model", "--weak",
                  "small-model", "--benchmark", "gamma")
    assert result.exit_code == 2 and "gamma" in result.output


def test_plot_writes_a_png(outcomes, prices, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "curve.png"
    result = _run("eval", "--outcomes", outcomes, "--strong", "big-model", "--weak", "small-model",
                  "--prices", prices, "--difficulty-from", "random", "--plot", png)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_pool_is_drawn_in_a_row_of_its_own(outcomes, prices, tmp_path):
    """The pool is measured on every prompt, so it is not drawn over one benchmark's panel (whose
    single-model points are that benchmark's): two benchmarks and the pool make three rows."""
    pytest.importorskip("matplotlib")

    def rows_drawn(*extra):
        png = tmp_path / "curve.png"
        result = _run("eval", "--outcomes", outcomes, "--prices", prices, "--difficulty-from", "random",
                      "--plot", png, *extra)
        assert result.exit_code == 0, result.output
        height = int.from_bytes(png.read_bytes()[20:24], "big")  # the PNG header's height
        return height / (4.8 * 110)  # each row is 4.8 inches at 110 dpi

    assert rows_drawn("--strong", "big-model", "--weak", "small-model") == pytest.approx(2, abs=0.01)
    assert rows_drawn("--pool", "big-model,small-model,mid-model") == pytest.approx(3, abs=0.01)


def test_train_then_eval_with_the_outcome_model(outcomes, prices, tmp_path):
    model = tmp_path / "om.npz"
    result = _run("train", "--outcomes", outcomes, "--models", "small-model,big-model", "--prices", prices,
                  "--output", model)
    assert result.exit_code == 0, result.output
    assert "5-fold held-out" in result.output and "CS@95" in result.output
    assert model.exists() and model.with_suffix(".json").exists()
    # The output says in which form the sentence encoder was kept, as the saved model has it.
    meta = json.loads(model.with_suffix(".json").read_text())
    said = ("prototype features" if meta["prototypes"] else "raw embedding") if meta["encoder"] else "encoder: none"
    assert said in result.output and "ridge penalty" in result.output
    near = meta["neighbours"]
    assert (f"from the {near['k']} most similar" if near["blend"] else "no neighbour blend") in result.output
    report = json.loads(_run("train", "--outcomes", outcomes, "--models", "small-model,big-model",
                             "--prices", prices, "--output", model, "--json").output)
    # the words of the hard prompts decide the outcome: held out, the model finds them
    assert report["heldout"]["routers"]["outcome_model"]["apgr"] > 0.8
    result = _run("eval", "--outcomes", outcomes, "--strong", "big-model", "--weak", "small-model",
                  "--prices", prices, "--outcome-model", model, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["scorer"] == "outcome-model"
    assert all(s["routers"]["outcome-model"]["apgr"] > 0.8 for s in out["subsets"])


def test_train_from_log_without_a_path_needs_a_configured_log():
    result = _run("train", "--from-log")
    assert result.exit_code == 2 and "decision_logger" in result.output


@pytest.mark.skipif(not (SHARED / "routellm_gpt4_mixtral.jsonl").exists(), reason="shared eval data not here")
def test_eval_on_the_shared_mt_bench_subset():
    result = _run("eval", "--outcomes", SHARED / "routellm_gpt4_mixtral.jsonl", "--prices", SHARED / "prices.json",
                  "--benchmark", "mt_bench", "--difficulty-from", "length", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    sub = report["subsets"][0]
    # the reference points of ../shared/eval/README.md
    assert sub["n"] == 72 and sub["weak_quality"] == pytest.approx(0.828, abs=1e-3)
    assert report["contaminated_excluded"] == 8  # MT-Bench's own, not the whole file's
    assert sub["routers"]["length"]["apgr"] == pytest.approx(0.55, abs=0.01)
    assert sub["routers"]["length"]["cs95"] == pytest.approx(0.65, abs=0.01)
    assert sub["routers"]["oracle"]["cs95"] == pytest.approx(0.89, abs=0.01)


def log_feedback(logger, n):
    """Route ``n`` tickets, half hard, logging to ``logger``: each was answered at both tiers and
    scored, and the low tier failed the hard ones."""
    from dmr import Router

    with Router(decision_logger=logger) as router:
        for i in range(n):
            hard = i % 2 == 0
            decision = router.classify((_HARD if hard else _EASY)[i % 3] + f" (ticket {i})")
            router.record_outcome(decision.decision_id, 0.0 if hard else 1.0, tier="low")
            router.record_outcome(decision.decision_id, 1.0, tier="high")


def test_train_from_the_decision_log_end_to_end(tmp_path):
    from dmr.ml.outcomes import OutcomeModel
    from dmr.store import SQLiteLogger

    log = tmp_path / "decisions.sqlite3"
    log_feedback(SQLiteLogger(log), 40)
    model = tmp_path / "from-log.npz"
    result = _run("train", "--from-log", log, "--models", "low,high", "--folds", "2", "--output", model)
    assert result.exit_code == 0, result.output
    assert "40 rows" in result.output and "2-fold held-out" in result.output
    loaded = OutcomeModel.load(model)
    assert loaded.models == ("low", "high")
    hard, easy = loaded.difficulty([_HARD[0] + " (ticket 99)", _EASY[0] + " (ticket 99)"])
    assert hard > easy


@pytest.mark.service("kafka")
def test_train_from_a_kafka_log_by_url(kafka_server, tmp_path):
    import uuid

    from dmr.ml.outcomes import OutcomeModel
    from dmr.store import KafkaLogger

    topic = f"dmr-train-{uuid.uuid4().hex[:8]}"
    log_feedback(KafkaLogger([kafka_server.bootstrap], topic), 30)
    model = tmp_path / "from-kafka.npz"
    result = _run("train", "--from-log", f"kafka://{kafka_server.bootstrap}/{topic}", "--models", "low,high",
                  "--folds", "2", "--output", model)
    assert result.exit_code == 0, result.output
    assert "30 rows" in result.output
    hard, easy = OutcomeModel.load(model).difficulty([_HARD[1] + " (ticket 99)", _EASY[1] + " (ticket 99)"])
    assert hard > easy


def test_with_a_quality_target_in_the_config_the_sweep_follows_the_router_s_difficulty(outcomes, prices, tmp_path):
    from dmr.evaluate.curves import curve
    from dmr.router import Router

    (tmp_path / "dmr.yaml").write_text("quality_target: 0.9\n", encoding="utf-8")
    result = _run("eval", "--outcomes", outcomes, "--strong", "big-model", "--weak", "small-model",
                  "--prices", prices, "--benchmark", "beta", "--config", tmp_path / "dmr.yaml", "--json")
    assert result.exit_code == 0, result.output
    rows = [r for r in _rows() if r.get("benchmark") == "beta"]
    decisions = Router(quality_target=0.9).classify_batch([r["prompt"] for r in rows])
    assert all(d.policies_applied[0].startswith("quality_target:0.9->") for d in decisions)
    expected = curve([d.difficulty for d in decisions], [r["outcomes"]["big-model"] for r in rows],
                     [r["outcomes"]["small-model"] for r in rows]).apgr
    assert json.loads(result.output)["subsets"][0]["routers"]["router"]["apgr"] == pytest.approx(expected, abs=1e-3)
    # The hard prompts (the weak model fails them) need a stronger model than the easy ones.
    hard = [d.difficulty for d, r in zip(decisions, rows) if r["outcomes"]["small-model"] == 0.0]
    easy = [d.difficulty for d, r in zip(decisions, rows) if r["outcomes"]["small-model"] == 1.0]
    assert min(hard) > max(easy)


def test_train_no_neighbours_turns_the_blend_off(outcomes, prices, tmp_path):
    for flags, tried in (((), True), (("--no-neighbours",), False)):
        model = tmp_path / f"om{len(flags)}.npz"
        result = _run("train", "--outcomes", outcomes, "--models", "small-model,big-model", "--prices", prices,
                      "--output", model, "--json", *flags)
        assert result.exit_code == 0, result.output
        near = json.loads(result.output)["neighbours"]
        assert bool(near["tried"]) is tried
        if not tried:
            assert near["blend"] == 0 and json.loads(model.with_suffix(".json").read_text())["neighbours"]["rows"] == 0
            with np.load(model, allow_pickle=False) as arrays:
                assert "neighbour_embeddings" not in arrays.files
    result = _run("train", "--outcomes", outcomes, "--models", "small-model,big-model", "--prices", prices,
                  "--output", tmp_path / "off.npz", "--no-neighbours")
    assert "neighbour blend off" in result.output
    result = _run("train", "--data", outcomes, "--no-neighbours")
    assert result.exit_code == 2 and "outcome model" in result.output
