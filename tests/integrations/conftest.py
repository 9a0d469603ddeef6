"""Fixtures for the framework integrations: a Router whose three tiers are three model names served
by the real local LLM, behind a recording pass-through (tests/recording_proxy.py), so that a test
can check which model name each framework actually sent over the wire."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The frameworks' own telemetry, tracing and price-list downloads, off before any of them is
# imported: the tests must not reach the network (dmr itself sends nothing).
for _name, _value in {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "HAYSTACK_TELEMETRY_ENABLED": "False",
                      "CREWAI_DISABLE_TELEMETRY": "true", "CREWAI_DISABLE_TRACKING": "true",
                      "OTEL_SDK_DISABLED": "true", "OPENAI_AGENTS_DISABLE_TRACING": "1",
                      "ANONYMIZED_TELEMETRY": "False", "DO_NOT_TRACK": "1",
                      "LANGCHAIN_TRACING_V2": "false"}.items():
    os.environ.setdefault(_name, _value)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from llm_server import local_llm  # noqa: E402,F401  (the fixture)
from fault_server import FaultServer, Reply  # noqa: E402
from integration_support import limited_registry  # noqa: E402
from recording_proxy import EASY, HARD, MODELS, recorder, registry_for  # noqa: E402,F401  (recorder: the fixture)


# Event loops the frameworks create on their own threads and drop unclosed (with the loop's
# self-pipe, an AF_UNIX socket pair) surface as unraisable ResourceWarnings whenever the garbage
# collector happens to run, in whichever test that is: an error under filterwarnings=error that
# says nothing about dmr, which creates no event loop in dmr.integrations
# (test_target.py::test_the_integrations_create_no_event_loop keeps that true). Any other unraisable
# warning, an unclosed TCP socket or file included, still fails the test it surfaces in.
FRAMEWORK_LOOP_LEAKS = (
    r"ignore:Exception ignored in. <function BaseEventLoop.__del__:pytest.PytestUnraisableExceptionWarning",
    r"ignore:Exception ignored in. <socket.socket fd=\d+, family=(1|AddressFamily.AF_UNIX), type=(1|SocketKind.SOCK_STREAM),"
    r":pytest.PytestUnraisableExceptionWarning",
)


def pytest_configure(config):
    for line in FRAMEWORK_LOOP_LEAKS:
        config.addinivalue_line("filterwarnings", line)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (CI=true) every framework is installed: any skip here is a failure."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI", "").lower() == "true":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"an integration test was skipped in CI: {reason}"


@pytest.fixture
def router(recorder):
    """A Router over the ``local`` provider; EASY routes to local-small, HARD to local-large."""
    from dmr import Router

    routed = Router(model_registry=registry_for(recorder.base_url), provider="local", layer2_enabled=False)
    assert routed.classify(EASY).model_name == MODELS["low"]
    assert routed.classify(HARD).model_name == MODELS["high"]
    return routed


@pytest.fixture
def limited_router(recorder):
    """A Router like ``router`` whose low model lacks what a call may need: EASY goes to
    local-small, or to local-medium when the call needs tools, images or a JSON schema."""
    from dmr import Router

    routed = Router(model_registry=limited_registry(recorder.base_url), provider="local", layer2_enabled=False)
    assert routed.classify(EASY).model_name == MODELS["low"]
    assert routed.classify(EASY, needs=["function_calling"]).model_name == MODELS["medium"]
    return routed


@pytest.fixture
def seeing_server():
    """An OpenAI-compatible endpoint that answers every chat call: for calls with images, which the
    local LLM cannot read (it refuses them with a 500). Its ``requests`` hold each body sent."""
    answer = Reply.openai("A red pixel.")
    answer.headers["Connection"] = "close"  # as the recorder does: no client keeps a socket past the test
    with FaultServer() as server:
        server.script(answer)
        yield server


@pytest.fixture
def seeing_router(seeing_server):
    """:func:`limited_router`'s registry at ``seeing_server``."""
    from dmr import Router

    return Router(model_registry=limited_registry(seeing_server.url + "/v1"), provider="local", layer2_enabled=False)
