"""Every file the CLI reads, given one that is not UTF-8 text (saved as Latin-1 or UTF-16, or not
text at all), or a decision log that is not a database: one clear line naming the file, exit 1,
never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import dmr.cli.ml  # noqa: F401  # attaches `train` and `eval` to `cli`
from dmr.cli.main import cli

# The same outcome row three ways: a user's editor saved it in Latin-1 or UTF-16, or the path names
# a binary file by mistake.
_ROW = json.dumps({"id": "1", "prompt": "Résumé du café", "outcomes": {"big": 1, "small": 0}}, ensure_ascii=False)
ENCODINGS = {
    "latin-1": (_ROW + "\n").encode("latin-1"),
    "utf-16": (_ROW + "\n").encode("utf-16"),
    "binary": bytes(range(256)) * 4,
}


@pytest.fixture
def prices(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"big": [10, 30, "test"], "small": [0.5, 0.5, "test"]}), encoding="utf-8")
    return path


@pytest.fixture
def good_outcomes(tmp_path):
    path = tmp_path / "good.jsonl"
    path.write_text(_ROW + "\n", encoding="utf-8")
    return path


def _commands(bad, prices, good):
    """(command line, the file the message must name) for each place a user passes a file."""
    eval_args = ["--strong", "big", "--weak", "small"]
    return {
        "eval --outcomes": (["eval", "--outcomes", bad, *eval_args, "--prices", prices], bad),
        "eval --prices": (["eval", "--outcomes", good, *eval_args, "--prices", bad], bad),
        "eval --data": (["eval", "--data", bad], bad),
        "train --outcomes": (["train", "--outcomes", bad, "--models", "small,big", "-o", bad.parent / "m.npz"], bad),
        "train --data": (["train", "--data", bad, "-o", bad.parent / "h.npz"], bad),
        "classify --config": (["classify", "--config", bad, "hello"], bad),
        "benchmark --data": (["benchmark", "--data", bad, "-n", "1"], bad),
    }


COMMANDS = list(_commands(*(Path("x"),) * 3))


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_file_that_is_not_utf8_gets_one_clear_error(tmp_path, prices, good_outcomes, command, encoding):
    bad = tmp_path / "input.jsonl"
    bad.write_bytes(ENCODINGS[encoding])
    args, named = _commands(bad, prices, good_outcomes)[command]
    result = CliRunner().invoke(cli, list(map(str, args)))
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not a traceback
    assert f"{named} is not UTF-8 text (byte 0x" in result.output
    assert "Traceback" not in result.output


def test_the_message_points_at_the_first_bad_byte(tmp_path, prices):
    bad = tmp_path / "outcomes.jsonl"
    bad.write_bytes(ENCODINGS["latin-1"])
    result = CliRunner().invoke(cli, ["eval", "--outcomes", str(bad), "--strong", "big", "--weak", "small",
                                      "--prices", str(prices)])
    offset = ENCODINGS["latin-1"].index("é".encode("latin-1"))
    assert f"(byte 0xe9 at offset {offset}); save it as UTF-8" in result.output


def test_a_keyword_pack_named_in_the_config_that_is_not_utf8(tmp_path):
    pack = tmp_path / "pack.yaml"
    pack.write_bytes("escalate: [café]\n".encode("latin-1"))
    config = tmp_path / "dmr.yaml"
    config.write_text(f"extra_keyword_packs: [{pack}]\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["classify", "--config", str(config), "hello"])
    assert result.exit_code == 1
    assert f"cannot read keyword pack: {pack} is not UTF-8 text" in result.output


def test_a_tenants_file_that_is_not_utf8(tmp_path):
    tenants = tmp_path / "tenants.yaml"
    tenants.write_bytes("acme:\n  key_env: CLÉ\n".encode("latin-1"))
    result = CliRunner().invoke(cli, ["serve", "--tenants", str(tenants), "--port", "0"])
    assert result.exit_code == 1
    assert f"the tenants file: {tenants} is not UTF-8 text" in result.output


@pytest.mark.parametrize("command", [["stats"], ["stats", "cost"]])
def test_a_decision_log_that_is_not_a_database(tmp_path, command):
    log = tmp_path / "decisions.sqlite3"
    log.write_bytes(ENCODINGS["binary"])
    result = CliRunner().invoke(cli, [*command, "--log", str(log)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception
    assert f"cannot read the decision log {log}: file is not a database" in result.output
    assert "ends in .jsonl" in result.output
