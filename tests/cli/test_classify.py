"""`dmr classify`: one task from the argument or stdin, or a JSONL batch; exit codes 0, 1 and 2."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import dmr.cli.classify  # noqa: F401  # attaches `classify` to `cli`
from dmr.cli.main import cli


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty folder, so that no ./dmr.yaml is picked up."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(cli, ["classify", *args], input=input)


def fields(output: str) -> dict[str, str]:
    """The readable output as {label: value}."""
    return {line[:12].strip(): line[12:] for line in output.splitlines()}


def test_readable_output():
    result = run("What is 2+2?")
    assert result.exit_code == 0, result.output
    shown = fields(result.stdout)
    assert list(shown) == ["tier", "model", "task", "confidence", "layer", "cost", "why"]
    assert shown["tier"] == "low"
    assert shown["model"] == "google/gemini-2.5-flash"
    assert shown["task"] == "math · simple"
    assert shown["cost"].startswith("~$")
    assert shown["why"].startswith("Layer 1: math")


def test_json_output_parses_into_the_decision():
    result = run("--json", "Design a CQRS architecture for a distributed system with event sourcing")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["tier"] == "high" and data["layer"] in ("layer1", "layer3")
    assert {"decision_id", "estimated_cost_usd", "trace", "policies_applied"} <= set(data)


def test_a_preset_applies_its_policies():
    result = run("--preset", "healthcare", "Patient MRN 12345 has chest pain")
    assert result.exit_code == 0, result.output
    shown = fields(result.stdout)
    assert shown["tier"] == "high"
    assert shown["policies"] == "pii_detected:medical_record_number, pii_floor:high"


@pytest.mark.parametrize("args", [(), ("-",)])
def test_the_task_can_come_from_stdin(args):
    result = run("--json", *args, input="Translate 'good morning' into French\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["task_type"] == "translation"


def test_stdin_that_is_not_utf8_still_gives_a_decision():
    result = run("--json", input=b"Design a scalable \xff system")
    assert result.exit_code == 0, result.output
    assert "not valid UTF-8" in json.loads(result.stdout)["reasoning"]


def test_a_config_file_is_used(tmp_path):
    (tmp_path / "other.yaml").write_text("provider: anthropic\n", encoding="utf-8")
    result = run("--json", "--config", "other.yaml", "What is 2+2?")
    assert json.loads(result.stdout)["provider"] == "anthropic"


def test_a_dmr_yaml_in_the_current_folder_is_picked_up(tmp_path):
    (tmp_path / "dmr.yaml").write_text("provider: openai\n", encoding="utf-8")
    assert json.loads(run("--json", "hi").stdout)["provider"] == "openai"


def test_dmr_config_names_the_file(tmp_path, monkeypatch):
    (tmp_path / "elsewhere.yaml").write_text("provider: mistral\n", encoding="utf-8")
    monkeypatch.setenv("DMR_CONFIG", str(tmp_path / "elsewhere.yaml"))
    assert json.loads(run("--json", "hi").stdout)["provider"] == "mistral"


# -- exit codes --------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (("   ",), "error: task is empty or only whitespace; there is nothing to classify"),
    (("--preset", "nope", "hi"), "error: unknown preset 'nope' (known: fintech, healthcare, legal)"),
])
def test_errors_exit_1_with_one_clean_line(args, message):
    result = run(*args)
    assert result.exit_code == 1
    assert result.stderr.strip() == message
    assert result.stdout == ""


@pytest.mark.parametrize("args, message", [
    (("--json", ""), "task is empty or only whitespace; there is nothing to classify"),
    (("--json", "-"), "task is empty or only whitespace; there is nothing to classify"),  # empty stdin
    (("--json", "--preset", "nope", "hi"), "unknown preset 'nope' (known: fintech, healthcare, legal)"),
])
def test_with_json_an_error_is_json_where_the_decision_would_be_and_still_exits_1(args, message):
    result = run(*args, input="")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"error": message}
    assert result.stderr == ""


def test_a_broken_config_exits_1_listing_the_problems(tmp_path):
    (tmp_path / "dmr.yaml").write_text("bogus: 1\nescalation_threshold: 5\n", encoding="utf-8")
    result = run("hi")
    assert result.exit_code == 1
    assert "bogus: unknown option" in result.stderr and "escalation_threshold" in result.stderr


@pytest.mark.parametrize("args", [
    ("--bogus", "hi"),
    ("hi", "--batch", "tasks.jsonl"),
    ("hi", "--out", "out.jsonl"),
    ("--batch", "missing.jsonl"),
])
def test_usage_errors_exit_2(tmp_path, args):
    (tmp_path / "tasks.jsonl").write_text('{"task": "hi"}\n', encoding="utf-8")
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "Usage:" in result.stderr


# -- batches -----------------------------------------------------------------------------------

BATCH = "\n".join([
    '{"id": 1, "task": "What is 2+2?"}',
    '{not json',
    '"Design a distributed CQRS system with event sourcing"',
    '',
    '{"id": 4, "task": ""}',
    '{"id": 5}',
    '[1, 2]',
]) + "\n"


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_batch_writes_one_record_per_line_and_keeps_bad_lines(tmp_path):
    (tmp_path / "in.jsonl").write_text(BATCH, encoding="utf-8")
    result = run("--batch", "in.jsonl", "--out", "out.jsonl")
    assert result.exit_code == 0, result.output
    assert "classified 2 task(s), 4 failed; wrote out.jsonl" in result.stderr
    records = read_jsonl(tmp_path / "out.jsonl")
    assert len(records) == 6  # the blank line is skipped, everything else is kept
    first, malformed, bare, empty, missing, listed = records
    assert first["id"] == 1 and first["decision"]["tier"] == "low"
    assert malformed == {"line": 2, "raw": "{not json", "error": malformed["error"]}
    assert malformed["error"].startswith("invalid JSON")
    assert bare["task"].startswith("Design") and bare["decision"]["tier"] == "high"
    assert empty["id"] == 4 and "empty" in empty["error"] and "decision" not in empty
    assert missing == {"id": 5, "error": "no 'task' field", "line": 6}
    assert listed == {"task": [1, 2], "error": "task must be str (or UTF-8 bytes), not list", "line": 7}
    assert empty["line"] == 5


def test_a_batch_without_out_writes_to_stdout(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"task": "hi"}\n{"task": "What is 2+2?"}\n', encoding="utf-8")
    result = run("--batch", "in.jsonl")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["decision"]["task_type"] for r in lines] == ["conversation", "math"]
    assert "classified 2 task(s), 0 failed" in result.stderr


def test_a_batch_where_every_line_fails_exits_1(tmp_path):
    (tmp_path / "in.jsonl").write_text('{oops\n{"task": "  "}\n', encoding="utf-8")
    result = run("--batch", "in.jsonl", "--out", "out.jsonl")
    assert result.exit_code == 1
    assert "classified 0 task(s), 2 failed" in result.stderr
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 2


def test_a_batch_line_may_carry_the_conversation_before_its_task(tmp_path):
    hard = "Implement a lock-free MPMC queue in Rust, prove its memory orderings and test it with loom."
    lines = [{"task": "continue"}, {"task": "continue", "history": [{"role": "user", "content": hard}, "Part one."]},
             {"task": "continue", "history": 42}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    result = run("--batch", "in.jsonl", "--out", "out.jsonl")
    assert "classified 2 task(s), 1 failed" in result.stderr
    alone, followed, bad = read_jsonl(tmp_path / "out.jsonl")
    assert alone["decision"]["tier"] == "low"
    assert followed["decision"]["tier"] == "high" and followed["decision"]["policies_applied"] == ["follow_up_floor:high"]
    assert bad["error"] == "history must be a list of turns (strings or messages), not int"


def test_a_batch_line_that_is_not_utf8_is_classified_and_its_record_says_so(tmp_path):
    (tmp_path / "in.jsonl").write_bytes(b'{"id": 1, "task": "What is 2+2? caf\xe9"}\n'
                                        b'{"id": 2, "task": "hi \xef\xbf\xbd"}\n'  # U+FFFD written as such
                                        b'{oops \xff\n')
    result = run("--batch", "in.jsonl", "--out", "out.jsonl")
    assert "classified 2 task(s), 1 failed" in result.stderr
    latin1, written, broken = read_jsonl(tmp_path / "out.jsonl")
    assert latin1["task"] == "What is 2+2? caf\ufffd" and latin1["decision"]["tier"] == "low"
    assert latin1["warning"] == "the line is not valid UTF-8; its undecodable bytes were replaced with U+FFFD"
    assert latin1["line"] == 1
    assert "warning" not in written and written["decision"]["tier"] == "low"
    assert broken == {"line": 3, "raw": "{oops \ufffd", "error": broken["error"], "warning": latin1["warning"]}
