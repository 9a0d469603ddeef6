"""`--engine ray`: `dmr classify --batch` writes the same lines, and `dmr eval` (labelled tasks or
outcomes) the same report, as in this process, from Ray workers that each build their Router from
the run's configuration; a local Ray is started for the run and stopped."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import dmr.cli.classify  # noqa: F401  # attaches `classify` to `cli`
import dmr.cli.ml  # noqa: F401  # attaches `eval`
from dmr.cli.main import cli

ray = pytest.importorskip("ray")  # in the test extras: installed wherever the suite runs

HARD = "Implement a lock-free MPMC queue in Rust, prove its memory orderings and test it with loom."
LINES = [
    {"id": 1, "task": "What is 2+2?"},
    "{not json",
    '"Design a distributed CQRS system with event sourcing and exactly-once projections"',  # a bare task
    "",
    {"id": 4, "task": ""},
    {"id": 5, "task": "continue", "history": [{"role": "user", "content": HARD}, "Part one."]},
    {"id": 6, "task": "Patient MRN 12345 has chest pain and a fever since Tuesday; what should we rule out?"},
    {"id": 7, "task": "Translate 'good morning' into German."},
    {"id": 8, "task": "Écris un poème de quatre vers sur la pluie d'automne."},
    [1, 2],
] + [{"id": 100 + i, "task": f"Summarise ticket #{i}: the printer on floor {i % 7} jams on duplex jobs."}
     for i in range(40)]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    (tmp_path / "in.jsonl").write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                                               for line in LINES), encoding="utf-8")
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, ["classify", "--batch", "in.jsonl", *args])


def outcome(path) -> list[dict]:
    """Each output line without what differs from run to run (ids, timestamps, latencies)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        decision = record.pop("decision", None)
        if decision is not None:
            record["decision"] = {k: decision[k] for k in ("tier", "task_type", "complexity", "model_name", "layer",
                                                          "difficulty", "policies_applied", "provider")}
        out.append(record)
    return out


def test_ray_workers_write_the_lines_this_process_writes_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr("dmr.batch.BLOCK", 4)  # many blocks, dealt to the workers in turn
    local = run("--out", "local.jsonl")
    assert local.exit_code == 0, local.output
    spread = run("--out", "ray.jsonl", "--engine", "ray", "--workers", "2")
    assert spread.exit_code == 0, spread.output
    assert "classified 46 task(s), 3 failed; wrote ray.jsonl" in spread.stderr
    expected, got = outcome(tmp_path / "local.jsonl"), outcome(tmp_path / "ray.jsonl")
    assert got == expected and len(got) == len(LINES) - 1  # the blank line is skipped
    assert [r.get("id") for r in got[:3]] == [1, None, None] and got[1]["line"] == 2
    assert got[4]["id"] == 5 and got[4]["decision"]["policies_applied"] == ["follow_up_floor:high"]
    assert not ray.is_initialized()  # the Ray the run started is stopped
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"


def test_ray_workers_build_their_router_from_the_config_and_preset(tmp_path):
    (tmp_path / "dmr.yaml").write_text("version: 1\ntier_matrix:\n  math: {simple: high, standard: high, complex: high}\n", encoding="utf-8")
    # More workers than the CPUs Ray sees: they share them instead of waiting for one.
    spread = run("--out", "ray.jsonl", "--engine", "ray", "--workers", "5", "--preset", "healthcare",
                 "--config", "dmr.yaml")
    assert spread.exit_code == 0, spread.output
    got = {r.get("id"): r["decision"] for r in outcome(tmp_path / "ray.jsonl") if "decision" in r}
    assert got[1]["tier"] == "high"  # the config's matrix, not the default's low
    assert any(p.startswith("pii_detected:") for p in got[6]["policies_applied"])  # the preset's patterns
    local = run("--out", "local.jsonl", "--preset", "healthcare", "--config", "dmr.yaml")
    assert local.exit_code == 0 and outcome(tmp_path / "ray.jsonl") == outcome(tmp_path / "local.jsonl")


def test_eval_on_ray_workers_reports_what_eval_in_this_process_reports(tmp_path, monkeypatch):
    from dmr.batch import RayPool

    asked, ordered = [], RayPool.ordered  # the same method, noting what the workers were asked
    monkeypatch.setattr(RayPool, "ordered", lambda pool, method, blocks: (asked.append(method),
                                                                          ordered(pool, method, blocks))[1])
    tasks = [line for line in LINES if isinstance(line, dict) and line.get("task") and "history" not in line]
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(json.dumps({"task": t["task"], "task_type": "analyzing" if t["id"] >= 100 else "math",
                                            "complexity": "simple"}) + "\n" for t in tasks), encoding="utf-8")
    scored = tmp_path / "scored.jsonl"
    scored.write_text("".join(json.dumps({"id": str(i), "prompt": t["task"],
                                          "outcomes": {"big": 1.0, "small": float(i % 3 != 0)}}) + "\n"
                              for i, t in enumerate(tasks)), encoding="utf-8")
    (tmp_path / "prices.json").write_text(json.dumps({"big": [10, 30, "test"], "small": [0.1, 0.3, "test"]}),
                                          encoding="utf-8")
    for args in (("--data", str(labelled)), ("--outcomes", str(scored), "--prices", "prices.json")):
        here = CliRunner().invoke(cli, ["eval", *args, "--json"])
        there = CliRunner().invoke(cli, ["eval", *args, "--json", "--engine", "ray", "--workers", "2"])
        assert here.exit_code == 0 and there.exit_code == 0, (here.output, there.output)
        assert json.loads(there.stdout) == json.loads(here.stdout)
    assert asked == ["decide", "difficulty"]
    assert json.loads(here.stdout)["n"] == len(tasks) and not ray.is_initialized()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ray_cluster():
    """A Ray head node started with `ray start`, as a cluster is, with token authentication on: the
    environment a driver of it needs (RAY_AUTH_MODE=token, as for any Ray driver of such a cluster)
    and its address."""
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    env.pop("RAY_ADDRESS", None)
    ray_cli = str(Path(sys.executable).with_name("ray"))
    subprocess.run([ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                    "--disable-usage-stats"], env=env, check=True, capture_output=True, timeout=120)
    try:
        yield env, f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_a_batch_runs_on_a_cluster_at_the_address_given(tmp_path, ray_cluster):
    env, address = ray_cluster
    dmr_cli = str(Path(sys.executable).with_name("dmr"))
    assert run("--out", "local.jsonl").exit_code == 0
    for workers, out in (("2", "ray.jsonl"), ("1", "again.jsonl")):  # the cluster stays for the next job
        done = subprocess.run([dmr_cli, "classify", "--batch", "in.jsonl", "--out", out, "--engine", "ray",
                               "--ray-address", address, "--workers", workers],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert outcome(tmp_path / out) == outcome(tmp_path / "local.jsonl")


def test_an_address_where_no_cluster_listens_fails_at_once():
    address = f"127.0.0.1:{_free_port()}"
    started = time.monotonic()
    result = run("--engine", "ray", "--ray-address", address)
    assert result.exit_code == 1 and f"no Ray cluster answers at {address}" in result.stderr
    assert time.monotonic() - started < 30  # Ray alone retries for minutes


@pytest.mark.parametrize("args, wrong", [
    (("--engine", "ray"), "--engine goes with --batch"),
    (("--batch", "in.jsonl", "--workers", "2"), "--workers goes with --engine ray"),
    (("--batch", "in.jsonl", "--engine", "local", "--ray-address", "auto"), "--ray-address goes with --engine ray"),
    (("--batch", "in.jsonl", "--engine", "spark"), "Invalid value for '--engine'"),
    (("eval", "--outcomes", "in.jsonl", "--workers", "3"), "--workers goes with --engine ray"),
    (("eval", "--outcomes", "in.jsonl", "--engine", "ray", "--difficulty-from", "length"),
     "--difficulty-from length does not"),
])
def test_engine_options_out_of_place_are_usage_errors(args, wrong):
    command = list(args) if args[0] == "eval" else ["classify", *args] if args[0] == "--batch" else \
        ["classify", "hi", *args]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 2 and wrong in result.stderr
