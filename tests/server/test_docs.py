"""docs/server.md runs as written: its dmr.yaml (pointed at the real local LLM, through the
recording pass-through) served by the proxy, and its Python examples run against that server."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from proxy_support import LiveServer, TestClient
from services import redis_server  # noqa: F401  (the fixture)

from dmr.server import create_app
from dmr.store.outcomes import read_outcomes

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "server.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", DOC, flags=re.S)
UPSTREAM = "http://127.0.0.1:8080/v1"
PROXY = "http://127.0.0.1:8000"


@pytest.mark.service("llm")
def test_the_yaml_and_the_client_example_work_against_a_running_proxy(recorder, tmp_path, monkeypatch, capsys):
    (config,) = [code for lang, code in BLOCKS if lang == "yaml" and code.startswith("# dmr.yaml")]
    client_example, factory_example = [code for lang, code in BLOCKS if lang == "python"]
    assert UPSTREAM in config and PROXY in client_example
    monkeypatch.chdir(tmp_path)
    Path("dmr.yaml").write_text(config.replace(UPSTREAM, recorder.base_url), encoding="utf-8")
    with LiveServer(create_app(config="dmr.yaml")) as live:
        exec(compile(client_example.replace(PROXY, live.url), "server.md", "exec"), {"__name__": "docs"})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "high large-model"
    # The design question, "hi", the translation through the Responses API, the colours through
    # Anthropic's Messages API.
    assert recorder.models == ["large-model", "small-model", "small-model", "small-model", "small-model"]
    assert recorder.bodies[1]["stream"] is True
    assert recorder.bodies[2]["messages"] == [{"role": "user", "content": "Translate 'good night' into French."}]
    assert recorder.bodies[3]["messages"] == [{"role": "user", "content": "Name a prime number."}]
    assert recorder.bodies[4]["messages"] == [{"role": "user", "content": "Name three primary colours."}]
    [stored] = read_outcomes(tmp_path / "decisions.sqlite3")  # the feedback, beside the decision
    assert stored["score"] == 0.9
    namespace: dict = {"__name__": "docs"}
    exec(compile(factory_example, "server.md", "exec"), namespace)
    assert namespace["app"].state.settings.api_key == "change-me"


@pytest.mark.service("llm")
@pytest.mark.service("redis")
def test_the_tenants_file_works_as_written(recorder, redis_server, tmp_path, monkeypatch):
    (config,) = [code for lang, code in BLOCKS if lang == "yaml" and code.startswith("# dmr.yaml")]
    (tenants,) = [code for lang, code in BLOCKS if lang == "yaml" and code.startswith("# tenants.yaml")]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEARCH_TEAM_DMR_KEY", "search-key")
    Path("dmr.yaml").write_text(config.replace(UPSTREAM, recorder.base_url), encoding="utf-8")
    assert "rate_store: redis://127.0.0.1:6379/0" in tenants
    Path("tenants.yaml").write_text(tenants.replace("redis://127.0.0.1:6379/0", redis_server.url), encoding="utf-8")
    hard = "Design a multi-region active-active database replication scheme with conflict resolution, and prove " \
           "its consistency guarantees under network partitions."
    with TestClient(create_app(config="dmr.yaml", tenants="tenants.yaml")) as client:
        tiers = [client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                             json={"model": "dmr", "messages": [{"role": "user", "content": task}], "max_tokens": 2}
                             ).headers["x-dmr-tier"] for key, task in (("search-key", hard), ("research-key-1", "hi"))]
        spent = client.app.state.router.tenant_budget("search-team").spent_usd
    assert tiers == ["medium", "medium"]  # search-team capped at medium, research raised to it
    assert recorder.models == ["medium-model", "medium-model"] and spent > 0
    import redis

    counted = redis.Redis.from_url(redis_server.url).zcard("dmr:rpm:search-team")  # rpm counted in the rate_store
    assert counted == 1


def test_every_option_and_every_error_code_is_documented():
    import dmr.cli.serve

    for name in list(inspect.signature(create_app).parameters)[1:]:
        assert f"{name}=" in DOC, f"create_app's {name} is not in docs/server.md"
    for param in dmr.cli.serve.serve.params:
        for option in [*param.opts, *param.secondary_opts]:
            if option != "--help":
                assert f"`{option}`" in DOC, f"`dmr serve {option}` is not in docs/server.md"
    source = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "src" / "dmr" / "server").glob("*.py"))
    codes = set(re.findall(r'code="(\w+)"', source))
    assert {"proxy_busy", "upstream_auth_failed", "bad_upstream_answer"} <= codes
    assert [code for code in sorted(codes) if f"`{code}`" not in DOC] == []
