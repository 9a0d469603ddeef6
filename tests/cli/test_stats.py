"""``dmr stats``, ``dmr stats cost`` and ``dmr benchmark``."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from dmr import Router, TaskComplexity, TaskType, Verdict
from dmr.cli.main import cli
from dmr.store import JSONLLogger, SQLiteLogger, build_record, default_log_path
from dmr.store.stats import parse_since


def by_word(task, ctx):
    if "hard" in task:
        return Verdict(TaskType.REASONING, TaskComplexity.RESEARCH, 0.99, 0.95, "custom", "hard")
    return Verdict(TaskType.CONVERSATION, TaskComplexity.SIMPLE, 0.99, 0.05, "custom", "easy")


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "log.sqlite3"
    with Router(decision_logger=SQLiteLogger(path), custom_classifier=by_word) as router:
        for i in range(6):
            router.classify(f"easy thing {i}", tenant_config={"tenant_id": "acme"})
        for i in range(2):
            router.classify(f"hard thing {i}", tenant_config={"tenant_id": "globex"})
    return path


def test_stats_distribution_json(log):
    result = run("stats", "--log", str(log), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["decisions"] == 8 and data["dropped"] == 0
    assert {r["name"]: r["count"] for r in data["tier"]} == {"low": 6, "high": 2}
    assert {r["name"]: r["count"] for r in data["tenant"]} == {"acme": 6, "globex": 2}
    assert {r["name"]: r["count"] for r in data["task_type"]} == {"conversation": 6, "reasoning": 2}
    assert data["layer"] == [{"name": "custom", "count": 8, "share": 1.0}]


def test_stats_text_output(log):
    result = run("stats", "--log", str(log))
    assert result.exit_code == 0
    assert "8 decisions" in result.output and "by tenant:" in result.output and "globex" in result.output


def test_stats_cost_compares_with_the_high_tier(log):
    result = run("stats", "cost", "--log", str(log), "--since", "7d", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["priced"] == 8
    assert data["high_tier_usd"] > data["spent_usd"] > 0
    assert data["saved_usd"] == pytest.approx(data["high_tier_usd"] - data["spent_usd"])
    assert set(data["by_tier"]) == {"low", "high"}
    high = data["by_tier"]["high"]
    assert high["spent_usd"] == pytest.approx(high["high_tier_usd"])  # nothing saved on high-tier decisions
    tenants = data["by_tenant"]
    assert {name: row["decisions"] for name, row in tenants.items()} == {"acme": 6, "globex": 2}
    assert tenants["globex"]["spent_usd"] == pytest.approx(high["spent_usd"])  # its two tasks were the hard ones
    assert tenants["acme"]["spent_usd"] + tenants["globex"]["spent_usd"] == pytest.approx(data["spent_usd"])
    text = run("stats", "cost", "--log", str(log)).output
    assert "saved" in text and "all at the high tier" in text
    assert "by tenant:" in text and "globex" in text


def test_since_leaves_out_older_decisions(tmp_path):
    path = tmp_path / "old.sqlite3"
    decision = Router().classify("Hello")
    logger = SQLiteLogger(path)
    logger.log(build_record(decision, "Hello", ts=time.time() - 10 * 86400))
    logger.log(build_record(Router().classify("Hello"), "Hello"))
    logger.close()
    assert json.loads(run("stats", "--log", str(path), "--json").output)["decisions"] == 2
    assert json.loads(run("stats", "--log", str(path), "--since", "7d", "--json").output)["decisions"] == 1
    assert json.loads(run("stats", "cost", "--log", str(path), "--since", "30d", "--json").output)["decisions"] == 2


def test_default_log_and_jsonl_logs_and_missing_log(tmp_path):
    empty = CliRunner().invoke(cli, ["stats", "--json"])
    assert empty.exit_code == 0 and json.loads(empty.stdout)["decisions"] == 0
    assert "no decision log yet" in empty.stderr
    with Router(decision_logger="sqlite") as router:
        router.classify("Hello")
    assert default_log_path().is_file()
    assert json.loads(run("stats", "--json").output)["decisions"] == 1
    jsonl = tmp_path / "d.jsonl"
    with Router(decision_logger=JSONLLogger(jsonl)) as router:
        router.classify("Hello")
    with jsonl.open("a") as out:
        out.write('{"event": "records_dropped", "count": 3, "ts": %f}\n{"torn' % time.time())
    data = json.loads(run("stats", "--log", str(jsonl), "--json").output)
    assert data["decisions"] == 1 and data["dropped"] == 3
    assert "dropped 3" in run("stats", "--log", str(jsonl)).output
    missing = CliRunner().invoke(cli, ["stats", "--log", str(tmp_path / "nope.sqlite3")])
    assert missing.exit_code == 1 and "no decision log" in missing.output


def test_bad_since_is_a_usage_error(log):
    result = CliRunner().invoke(cli, ["stats", "--log", str(log), "--since", "last tuesday"])
    assert result.exit_code == 2
    assert parse_since("2026-01-01") == pytest.approx(1767225600.0)
    assert parse_since("1h", now=7200.0) == 3600.0


def test_plots_are_written(log, tmp_path):
    pytest.importorskip("matplotlib")
    for args, name in ((["stats"], "dist.png"), (["stats", "cost"], "cost.png")):
        out = tmp_path / name
        result = run(*args, "--log", str(log), "--plot", str(out))
        assert result.exit_code == 0, result.output
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_benchmark_reports_percentiles_per_layer_without_the_cache(tmp_path):
    (tmp_path / "dmr.yaml").write_text("cache_enabled: true\n")
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"task": "Hello"}\n{"task": "Design a distributed lock service"}\nnot json\n')
    result = run("benchmark", "--config", str(tmp_path / "dmr.yaml"), "--data", str(tasks), "-n", "40", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    layers = {row["layer"]: row for row in data["layers"]}
    assert data["tasks"] == 2
    assert layers["layer1"]["calls"] == 40 and "cache" not in layers
    for row in layers.values():
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert "p99 ms" in run("benchmark", "-n", "20").output


def test_doctor_reports_the_decision_log_and_its_drops():
    checks = {c["name"]: c for c in json.loads(CliRunner().invoke(cli, ["doctor", "--json"]).stdout)}
    assert checks["decision log"]["status"] == "OK" and "none at" in checks["decision log"]["detail"]
    logger = SQLiteLogger(default_log_path())
    logger.log(build_record(Router().classify("Hello"), "Hello"))
    logger.flush()
    logger.write_gap(4)
    logger.close()
    checks = {c["name"]: c for c in json.loads(CliRunner().invoke(cli, ["doctor", "--json"]).stdout)}
    assert checks["decision log"]["status"] == "WARN"
    assert "1 records; the logger dropped 4" in checks["decision log"]["detail"]


def test_stats_reads_the_log_that_dmr_yaml_names(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "dmr.yaml").write_text("decision_logger: logs/decisions.sqlite3\n")
    monkeypatch.chdir(tmp_path)  # relative log paths are taken from the yaml's folder, not the cwd
    with Router.from_yaml(tmp_path / "conf" / "dmr.yaml") as router:
        router.classify("Hello")
        router.classify("Hi")
    assert (tmp_path / "conf" / "logs" / "decisions.sqlite3").is_file()
    result = run("stats", "--config", str(tmp_path / "conf" / "dmr.yaml"), "--json")
    assert json.loads(result.output)["decisions"] == 2
    cost = run("stats", "cost", "--config", str(tmp_path / "conf" / "dmr.yaml"), "--json")
    assert json.loads(cost.output)["decisions"] == 2


# -- QA: errors under --json, logs with odd values, huge logs --------------------------------------

@pytest.mark.parametrize("command", [["stats"], ["stats", "cost"]])
def test_with_json_a_missing_log_is_a_json_error(tmp_path, command):
    result = CliRunner().invoke(cli, [*command, "--log", str(tmp_path / "nope.sqlite3"), "--json"])
    assert result.exit_code == 1
    assert "no decision log at" in json.loads(result.stdout)["error"] and result.stderr == ""


def test_benchmark_with_json_says_a_file_without_tasks_as_json(tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("not json\n[1, 2]\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["benchmark", "--data", str(tasks), "-n", "5", "--json"])
    assert result.exit_code == 1 and "holds no tasks" in json.loads(result.stdout)["error"]


def test_a_log_with_odd_values_is_summarised_not_a_traceback(tmp_path):
    # What another dmr version, another tool or a hand edit may leave in a JSONL log.
    path = tmp_path / "odd.jsonl"
    now = time.time()
    path.write_text("\n".join(json.dumps(r) for r in [
        {"ts": now, "tier": "low", "latency_ms": 1.0, "estimated_cost_usd": 0.1, "high_tier_cost_usd": 0.3},
        {"ts": "2026-01-01T00:00:00Z", "tier": "low"},
        {"ts": now * 1000, "tier": "high", "latency_ms": "fast", "estimated_cost_usd": "n/a",
         "high_tier_cost_usd": 1},
        {"ts": None, "tier": "low", "estimated_cost_usd": True, "high_tier_cost_usd": 0.5},
        {"event": "records_dropped", "count": "many", "ts": now},
        {"event": "records_dropped", "count": "2", "ts": now},
    ]) + "\n", encoding="utf-8")
    for args in (["stats"], ["stats", "--json"], ["stats", "cost", "--json"], ["stats", "--since", "1d"],
                 ["stats", "cost", "--since", "1d", "--json"]):
        result = run(*args, "--log", str(path))
        assert result.exit_code == 0, (args, result.output)
    data = json.loads(run("stats", "--log", str(path), "--json").output)
    assert data["decisions"] == 4 and data["dropped"] == 2
    cost = json.loads(run("stats", "cost", "--log", str(path), "--json").output)
    assert cost["priced"] == 1 and cost["unpriced"] == 3 and cost["spent_usd"] == pytest.approx(0.1)


def test_a_huge_log_is_summarised_without_holding_every_record(tmp_path):
    import sqlite3
    import tracemalloc

    path = tmp_path / "big.sqlite3"
    logger = SQLiteLogger(path)
    logger.log(build_record(Router().classify("Hello"), "Hello"))
    logger.close()
    conn = sqlite3.connect(path)
    row = conn.execute("SELECT * FROM decisions").fetchone()
    record = json.loads(row[-1])
    rows = []
    for i in range(20_000):
        record.update(decision_id=f"d{i}", ts=row[1] - i, reasoning=f"padding {i} " * 40)
        rows.append((f"d{i}", row[1] - i, *row[2:-1], json.dumps(record)))
    conn.executemany(f"INSERT INTO decisions VALUES ({', '.join('?' * len(row))})", rows)
    conn.commit()
    conn.close()
    del rows
    tracemalloc.start()
    try:
        result = run("stats", "--log", str(path), "--json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert json.loads(result.output)["decisions"] == 20_001
    assert peak < 30_000_000, f"{peak:,} bytes at the peak: the records were all held at once"


def test_a_bad_since_names_the_formats_once(log):
    result = CliRunner().invoke(cli, ["stats", "--log", str(log), "--since", "yesterday"])
    assert result.exit_code == 2
    assert result.stderr.count("--since") == 1 and "2026-01-31T09:00+02:00" in result.stderr


@pytest.mark.parametrize("command", [["stats"], ["stats", "cost"]])
def test_a_plot_path_that_cannot_be_written_is_a_usage_error_not_a_traceback(log, tmp_path, command):
    pytest.importorskip("matplotlib")
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    for plot, message in ((tmp_path / "a-file" / "out.png", "is a file, not a folder"),
                          (tmp_path / "out.txt", "matplotlib cannot write .txt files")):
        result = CliRunner().invoke(cli, [*command, "--log", str(log), "--plot", str(plot)])
        assert result.exit_code == 2 and message in result.stderr, result.output
    result = run(*command, "--log", str(log), "--plot", str(tmp_path / "new folder" / "out.png"))
    assert result.exit_code == 0 and (tmp_path / "new folder" / "out.png").is_file()
