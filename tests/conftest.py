"""Shared fixtures. Every test runs with its own user-config directory and a fresh default
registry, so nothing a test persists leaks into another test or into the developer's machine."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_user_state(tmp_path_factory, monkeypatch):
    config_dir = tmp_path_factory.mktemp("dmr-config")
    monkeypatch.setenv("DMR_CONFIG_DIR", str(config_dir))
    for name in ("DMR_REGISTRY", "DMR_NO_DEFAULT_REGISTRY", "DMR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    from dmr.registry import reset_default_registry

    reset_default_registry()
    yield config_dir
    reset_default_registry()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (CI=true) a test that needs a service must run: its skip becomes a failure."""
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and os.environ.get("CI", "").lower() == "true"
            and item.get_closest_marker("service") is not None):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"a test that needs a service was skipped in CI: {reason}"
