"""dmr.batch.classify_stream in this process: lines in, one line out per non-blank line, in order."""

from __future__ import annotations

import json

import pytest

from dmr.batch import classify_stream
from dmr.errors import ConfigError

HARD = "Implement a lock-free MPMC queue in Rust, prove its memory orderings and test it with loom."


def test_lines_come_out_in_order_across_blocks_with_conversations_among_them(tmp_path):
    config = tmp_path / "dmr.yaml"
    config.write_text("version: 1\ntier_matrix:\n  math: {simple: high, standard: high, complex: high}\n",
                      encoding="utf-8")
    lines = [json.dumps({"id": 0, "task": "What is 2+2?"}),
             json.dumps({"id": 1, "task": "continue", "history": [HARD, "Part one."]}),
             "", "not json",
             json.dumps({"id": 4, "task": "hi there"}),
             json.dumps({"id": 5, "task": "continue"}),
             json.dumps({"id": 6, "task": "   "})]
    out: list[str] = []
    seen: list[int] = []
    done, failed = classify_stream(lines, out.append, config=config, block=3, progress=seen.append)
    records = [json.loads(line) for line in out]
    assert (done, failed) == (4, 2) and sum(seen) == len(lines)
    assert [r.get("id", r.get("line")) for r in records] == [0, 1, 4, 4, 5, 6]  # the bad line reports line 4
    tiers = {r["id"]: r["decision"]["tier"] for r in records if "decision" in r}
    assert tiers == {0: "high", 1: "high", 4: "low", 5: "low"}  # 0: the config's matrix; 1: its conversation
    assert records[1]["decision"]["policies_applied"] == ["follow_up_floor:high"]
    assert "empty" in records[-1]["error"]


def test_an_unknown_engine_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown engine 'spark'"):
        classify_stream(['{"task": "hi"}'], print, engine="spark")


def test_a_line_read_with_surrogateescape_is_classified_with_its_bad_bytes_replaced_and_says_so():
    lines = b'{"id": 0, "task": "What is 2+2? \xff"}\n{"id": 1, "task": "hi"}\n'.decode("utf-8", "surrogateescape")
    out: list[str] = []
    assert classify_stream(lines.splitlines(), out.append) == (2, 0)
    bad, good = (json.loads(line) for line in out)
    assert bad["task"] == "What is 2+2? \ufffd" and "not valid UTF-8" in bad["warning"] and bad["line"] == 1
    assert "not valid" not in bad["decision"]["reasoning"]  # the router was given valid text
    assert "warning" not in good and "line" not in good
