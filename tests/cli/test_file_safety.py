"""What the CLI does with the files a user hands it: it never overwrites an input, never loses the
lines after a bad one, reads files that begin with a byte-order mark, and says what is wrong with a
row in words rather than in Python's."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import dmr.cli.ml  # noqa: F401  # attaches `train` and `eval` to `cli`
from dmr.cli.main import cli

ROWS = [{"task": f"What is {i} + {i}?", "task_type": "math", "complexity": "simple"} for i in range(12)] + \
       [{"task": f"Write a short poem about the number {i}.", "task_type": "doc_creation", "complexity": "standard"}
        for i in range(12)]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def jsonl(rows):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def test_a_batch_never_writes_over_its_own_input(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"task": "hi"}\n{"task": "What is 2+2?"}\n', encoding="utf-8")
    before = source.read_bytes()
    for out in ("in.jsonl", "./sub/../in.jsonl"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        result = run("classify", "--batch", "in.jsonl", "--out", out)
        assert result.exit_code == 2 and "it would overwrite the input file" in result.output, result.output
    assert source.read_bytes() == before


def test_training_never_writes_its_metadata_over_its_data(tmp_path):
    data = tmp_path / "rows.json"  # JSONL under a .json name: the head's metadata goes to <output>.json
    data.write_text(jsonl(ROWS), encoding="utf-8")
    before = data.read_bytes()
    result = run("train", "--data", data, "-o", "rows.npz")
    assert result.exit_code == 2 and f"it would overwrite the input file {data.name}" in result.output, result.output
    assert data.read_bytes() == before and not (tmp_path / "rows.npz").exists()


def test_a_lone_surrogate_in_a_batch_line_loses_nothing(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"task": "ok"}\n{"task": "fine", "note": "\\udc00"}\n'
                                       '{"task": "bad \\ud800 text"}\n{"task": "last one"}\n', encoding="utf-8")
    result = run("classify", "--batch", "in.jsonl", "--out", "new/folder/out.jsonl")  # the folder is created
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "new/folder/out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["task"] for r in records] == ["ok", "fine", "bad \ufffd text", "last one"]
    assert records[1]["note"] == "\ufffd" and all("decision" in r for r in records)


def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path):
    (tmp_path / "in.jsonl").write_text("\ufeff" + '{"task": "What is 2+2?"}\n', encoding="utf-8")
    result = run("classify", "--batch", "in.jsonl")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["decision"]["task_type"] == "math"
    (tmp_path / "eval.jsonl").write_text("\ufeff" + jsonl(ROWS), encoding="utf-8")
    result = run("eval", "--data", "eval.jsonl", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n"] == len(ROWS)


@pytest.mark.parametrize("line, message", [
    ("[1, 2]", "eval.jsonl:3: expected a JSON object, got list"),
    ("null", "eval.jsonl:3: expected a JSON object, got NoneType"),
    ('{"task": "hi", "complexity": "simple"}', "eval.jsonl:3: no 'task_type' field"),
    ('{"task": "", "task_type": "math", "complexity": "simple"}', "eval.jsonl:3: 'task' must be a non-empty string"),
    ("{oops", "eval.jsonl:3: not valid JSON"),
])
def test_a_bad_labelled_row_is_described_in_words(tmp_path, line, message):
    rows = jsonl(ROWS).splitlines()
    rows.insert(2, line)
    (tmp_path / "eval.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    for args in (["eval", "--data", "eval.jsonl"], ["train", "--data", "eval.jsonl", "-o", "h.npz"]):
        result = run(*args)
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Error:" not in result.output.replace("error:", "")  # no Python exception names


def test_held_out_only_on_rows_none_of_which_is_held_out(tmp_path):
    from dmr.ml.train import is_heldout

    rows = [r for r in ROWS if not is_heldout(r["task"])]
    (tmp_path / "eval.jsonl").write_text(jsonl(rows), encoding="utf-8")
    result = run("eval", "--data", "eval.jsonl", "--heldout-only")
    assert result.exit_code == 2
    assert f"none of the {len(rows)} rows is in the held-out split" in result.output


def test_a_head_is_not_trained_on_one_task_type(tmp_path):
    (tmp_path / "math.jsonl").write_text(jsonl(ROWS[:12]), encoding="utf-8")
    result = run("train", "--data", "math.jsonl", "-o", "h.npz")
    assert result.exit_code == 1
    assert "the training rows hold one task type only (math)" in result.output
    assert not (tmp_path / "h.npz").exists()


def test_generate_data_that_reaches_no_model_leaves_no_empty_file(tmp_path):
    # Nothing listens on port 9 of this machine: the first call fails.
    args = ["generate-data", "--domain", "billing", "--provider", "openai", "--model", "x",
            "--base-url", "http://127.0.0.1:9/v1", "--per-slot", "1", "--out", "gen.jsonl"]
    first = run(*args)
    assert first.exit_code == 1, first.output
    assert not (tmp_path / "gen.jsonl").exists()
    again = run(*args)
    assert "exists: use --append" not in again.output
