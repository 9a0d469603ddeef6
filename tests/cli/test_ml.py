"""`dmr train` and `dmr eval`: a head trained from JSONL that a Router can load, and the report."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

import dmr
import dmr.cli.ml  # noqa: F401  # attaches `train` and `eval` to `cli`
from dmr.cli.main import cli

_ROWS = [
    ("write a python function that reverses a list", "code_creation", "simple"),
    ("implement a lock-free queue in C++ with tests", "code_creation", "complex"),
    ("translate 'good morning' into French", "translation", "simple"),
    ("translate this paragraph into German", "translation", "standard"),
    ("what is 17 times 23?", "math", "simple"),
    ("prove that there are infinitely many primes", "math", "complex"),
    ("hi there!", "conversation", "simple"),
    ("write a short thank-you email to my landlord", "doc_creation", "simple"),
    ("summarise this meeting transcript in five bullets", "analyzing", "simple"),
    ("brainstorm ten names for a bakery", "thinking", "simple"),
    # A made-up word the bundled head has never seen, taught as research-level reasoning.
    ("zorblax the quintessence", "reasoning", "research"),
    ("explain zorblax to me", "reasoning", "research"),
    ("zorblax zorblax", "reasoning", "research"),
]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "train.jsonl"
    lines = [json.dumps({"task": f"{t} #{k}", "task_type": ty, "complexity": c})
             for k in range(6) for t, ty, c in _ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_train_writes_a_head_that_a_router_loads_by_config(data, tmp_path):
    out = tmp_path / "mine.npz"
    result = CliRunner().invoke(cli, ["train", "--data", str(data), "--output", str(out), "--max-iter", "80"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert "held-out metrics:" in result.stdout and "tier" in result.stdout
    assert f"layer3_head={str(out)!r}" in result.stdout

    task = "zorblax zorblax zorblax"
    before = dmr.Router(escalation_threshold=1.0, layer3_threshold=0.0).classify(task)
    mine = dmr.Router(layer3_head=str(out), escalation_threshold=1.0, layer3_threshold=0.0).classify(task)
    assert (mine.task_type, mine.complexity, mine.layer) == ("reasoning", "research", "layer3")
    assert (before.task_type, before.complexity) != (mine.task_type, mine.complexity)

    yaml_file = tmp_path / "dmr.yaml"
    yaml_file.write_text("layer3_head: mine.npz\nescalation_threshold: 1.0\nlayer3_threshold: 0.0\n")
    assert dmr.Router.from_yaml(yaml_file).classify(task).complexity == "research"


def test_train_json_report(data, tmp_path):
    result = CliRunner().invoke(cli, ["train", "--data", str(data), "-o", str(tmp_path / "h.npz"),
                                      "--max-iter", "30", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["train_rows"] + report["heldout_rows"] == len(_ROWS) * 6
    assert {"type_macro_f1", "tier_accuracy", "ece", "per_language"} <= set(report["heldout"])


def test_train_with_rows_that_teach_the_type_only(data, tmp_path):
    types = tmp_path / "types.jsonl"
    rows = [{"task": f"quxfrob gadget {i}", "task_type": "translation"} for i in range(30)]
    types.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "typed.npz"
    result = CliRunner().invoke(cli, ["train", "--data", str(data), "--type-data", str(types), "-o", str(out),
                                      "--max-iter", "60"])
    assert result.exit_code == 0, result.output
    assert re.search(r"\d+ training rows, \d+ more for the task type, \d+ held out", result.stdout)
    decision = dmr.Router(layer3_head=str(out), escalation_threshold=1.0, layer3_threshold=0.0).classify(
        "quxfrob gadget")
    assert decision.task_type == "translation" and decision.layer == "layer3"


def test_router_train_matches_the_command(data, tmp_path):
    report = dmr.Router().train(data=str(data), output=tmp_path / "r.npz", max_iter=30)
    assert report["path"].endswith("r.npz")
    assert dmr.Router(layer3_head=report["path"]).layers[:2] == ("layer1", "layer3")


def test_train_rejects_bad_rows(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "x", "task_type": "nonsense", "complexity": "simple"}\n')
    result = CliRunner().invoke(cli, ["train", "--data", str(bad)])
    assert result.exit_code == 1
    assert "bad.jsonl:1" in result.output


def test_eval_reports_every_field_as_json(data):
    result = CliRunner().invoke(cli, ["eval", "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in ("n", "type_accuracy", "type_macro_f1", "complexity_accuracy", "complexity_macro_f1", "tier_accuracy",
                "ece", "decided_by", "layer3_share_of_layer1_unsure", "type_confusion", "complexity_confusion"):
        assert key in report
    assert report["n"] == len(_ROWS) * 6
    assert sum(info["share"] for info in report["decided_by"].values()) == pytest.approx(1.0, abs=1e-3)
    assert sum(map(sum, report["type_confusion"])) == report["n"]


def test_eval_says_how_many_tasks_went_above_and_below_their_tier(tmp_path):
    # Labels chosen so that the default Router's tiers are known: a greeting labelled as research
    # math goes below its tier, a proof and a system design labelled as simple chat go above, a
    # greeting labelled as one is right.
    rows = [("Hi, how are you?", "math", "research"),
            ("Prove that there are infinitely many primes, rigorously, with a full proof by contradiction.",
             "conversation", "simple"),
            ("Design a globally distributed database with strong consistency, automatic failover and "
             "multi-region replication, and justify every trade-off.", "conversation", "simple"),
            ("Hello!", "conversation", "simple")]
    data = tmp_path / "labels.jsonl"
    data.write_text("".join(json.dumps({"task": t, "task_type": y, "complexity": c}) + "\n" for t, y, c in rows))
    result = CliRunner().invoke(cli, ["eval", "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["tier_above"], report["tier_below"], report["tier_accuracy"]) == (0.5, 0.25, 0.25)
    readable = CliRunner().invoke(cli, ["eval", "--data", str(data)])
    assert "routed above its tier  50.0%, below 25.0%" in readable.stdout


def test_eval_readable_output_and_plot(data, tmp_path):
    png = tmp_path / "eval.png"
    result = CliRunner().invoke(cli, ["eval", "--data", str(data), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.stdout and "decided by:" in result.stdout and "confusion" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_heldout_only_with_no_rows_is_a_usage_error(tmp_path):
    one = tmp_path / "one.jsonl"
    task = next(f"task {i}" for i in range(100) if not dmr.ml.train.is_heldout(f"task {i}"))
    one.write_text(json.dumps({"task": task, "task_type": "math", "complexity": "simple"}) + "\n")
    result = CliRunner().invoke(cli, ["eval", "--data", str(one), "--heldout-only"])
    assert result.exit_code == 2


def test_eval_scores_each_task_text_once_and_says_how_many_rows_repeated_one(tmp_path):
    # A repeated row counted once per copy: one easy task in the file four times made the router
    # look better than it is. Copies that disagree in their labels are named.
    rows = [("Hi, how are you?", "math", "research")] + [("Hello!", "conversation", "simple")] * 4 + [
        ("Hi, how are you?", "conversation", "simple")]
    data = tmp_path / "labels.jsonl"
    data.write_text("".join(json.dumps({"task": t, "task_type": y, "complexity": c}) + "\n" for t, y, c in rows))
    report = json.loads(CliRunner().invoke(cli, ["eval", "--data", str(data), "--json"]).stdout)
    assert (report["n"], report["duplicates_dropped"], report["tier_accuracy"]) == (2, 4, 0.5)
    assert report["label_conflicts"] == [{"task": "Hi, how are you?", "labels": [
        {"task_type": "math", "complexity": "research"}, {"task_type": "conversation", "complexity": "simple"}]}]
    assert sum(map(sum, report["type_confusion"])) == 2
    readable = CliRunner().invoke(cli, ["eval", "--data", str(data)]).stdout
    assert "4 duplicate row(s) left out: each task text is scored once, by its first row" in readable
    assert "'Hi, how are you?': math · research / conversation · simple" in readable
