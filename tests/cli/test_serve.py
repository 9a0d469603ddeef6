"""`dmr serve`: its options, a clean error without the server extra, and a real run of the command
that answers as the proxy."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from click.testing import CliRunner

import dmr.cli.serve  # noqa: F401  # attaches `serve` to `cli`
from dmr.cli.main import cli


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty folder, so that no ./dmr.yaml is picked up."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DMR_SERVER_API_KEY", raising=False)
    return tmp_path


def test_help_lists_the_options_and_binds_loopback_by_default():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--config", "--preset", "--api-key", "--alias", "--upstream-timeout",
                   "--max-upstream-connections", "--max-answer-bytes", "--no-named-models", "--embeddings-provider", "--fallbacks", "--tenants"):
        assert option in result.output
    assert "127.0.0.1" in result.output
    assert "visible to other users" in result.output  # the key belongs in $DMR_SERVER_API_KEY
    assert "serve" in CliRunner().invoke(cli, ["--help"]).output


@pytest.mark.parametrize("missing", ["starlette", "uvicorn"])
def test_without_the_server_extra_it_says_what_to_install(monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)
    result = CliRunner().invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "pip install 'dynamic-model-router[server]'" in result.output and missing in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_bad_configuration_fails_before_serving(tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--preset", "no-such-preset"])
    assert result.exit_code == 1 and result.output.startswith("error: ")
    result = CliRunner().invoke(cli, ["serve", "--embeddings-provider", "nope"])
    assert result.exit_code == 1 and "embeddings_provider 'nope' is not a provider" in result.output
    assert CliRunner().invoke(cli, ["serve", "--tenants", "absent.yaml"]).exit_code == 2
    (tmp_path / "tenants.yaml").write_text("tenants:\n  a: {key_env: UNSET_DMR_TENANT_KEY}\n")
    result = CliRunner().invoke(cli, ["serve", "--tenants", "tenants.yaml"])
    assert result.exit_code == 1 and "UNSET_DMR_TENANT_KEY is not set" in result.output
    (tmp_path / "dmr.yaml").write_text("escalation_threshold: 7\n")
    result = CliRunner().invoke(cli, ["serve", "--config", "dmr.yaml"])
    assert result.exit_code == 1 and "escalation_threshold" in result.output
    assert CliRunner().invoke(cli, ["serve", "--port", "70000"]).exit_code == 2


def test_the_command_serves_the_proxy(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # A log that flushes only when the Router is closed: it shows the shutdown closed it.
    (tmp_path / "dmr.yaml").write_text("layer3_enabled: false\nprovider: openai\ndecision_logger:\n"
                                       "  {type: jsonl, path: decisions.jsonl, flush_interval_s: 3600}\n")
    command = [sys.executable, "-c", "from dmr.cli import main; main()", "serve", "--port", str(port),
               "--api-key", "k3y", "--alias", "route-me", "--no-named-models", "--max-upstream-connections", "7",
               "--max-answer-bytes", "5000", "--embeddings-provider", "openai", "--tenants", "tenants.yaml",
               "--log-level", "warning"]
    (tmp_path / "tenants.yaml").write_text("tenants:\n  team-1: {key_env: TEAM_1_DMR_KEY, max_tier: low}\n")
    env = {**os.environ, "OPENAI_API_KEY": "", "TEAM_1_DMR_KEY": "t1-key"}
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):  # a bound on the wait for readiness, not a timing assertion
            if server.poll() is not None:
                pytest.fail(f"`dmr serve` exited: {log.read_text()}")
            try:
                health = httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            pytest.fail(f"`dmr serve` did not start: {log.read_text()}")
        assert health.json() == {"status": "ok"}
        assert httpx.get(f"{base}/v1/models").status_code == 401
        models = httpx.get(f"{base}/v1/models", headers={"Authorization": "Bearer k3y"}).json()
        assert [m["id"] for m in models["data"]] == ["route-me"]  # --no-named-models: the alias only
        named = httpx.post(f"{base}/v1/chat/completions", headers={"Authorization": "Bearer k3y"},
                           json={"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]})
        assert named.status_code == 404 and named.json()["error"]["code"] == "model_not_found"
        # ./dmr.yaml was read: the router routes to openai, whose key variable is empty here.
        answer = httpx.post(f"{base}/v1/chat/completions", headers={"Authorization": "Bearer k3y"},
                            json={"model": "route-me", "messages": [{"role": "user", "content": "hi"}]})
        assert answer.status_code == 500 and "OPENAI_API_KEY" in answer.json()["error"]["message"]
        assert answer.headers["x-dmr-provider"] == "openai"
        embedded = httpx.post(f"{base}/v1/embeddings", headers={"Authorization": "Bearer k3y"},
                              json={"model": "text-embedding-3-small", "input": "hi"})
        assert embedded.status_code == 500 and embedded.json()["error"]["code"] == "provider_key_missing"
        assert embedded.headers["x-dmr-provider"] == "openai"
        # --tenants was read: the tenant's key is let in, and its request routed as that tenant.
        tenant = httpx.post(f"{base}/v1/chat/completions", headers={"Authorization": "Bearer t1-key"},
                            json={"model": "route-me", "messages": [{"role": "user", "content": "hi"}]})
        assert tenant.status_code == 500 and tenant.headers["x-dmr-tenant"] == "team-1"
    finally:
        server.terminate()
        server.wait(30)
    # uvicorn shuts down gracefully, then ends with the signal it got.
    assert server.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Traceback" not in log.read_text()
    logged = [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    assert [(r["task"], r["provider"], r["tenant"]) for r in logged] == [("hi", "openai", None),
                                                                       ("hi", "openai", "team-1")]
