"""Fixtures for the proxy tests (the helpers they use live in proxy_support.py)."""

from __future__ import annotations

import pytest
from llm_server import local_llm  # noqa: F401  (the fixture)
from proxy_support import make_router
from recording_proxy import recorder  # noqa: F401  (the fixture)


@pytest.fixture
def router(recorder, tmp_path):
    """A Router over the recorder (decision log and budget in ``tmp_path``); EASY routes to
    local-small and HARD to local-large."""
    routed = make_router(recorder.base_url, tmp_path)
    yield routed
    routed.close()


@pytest.fixture
def fault_server():
    from fault_server import FaultServer

    with FaultServer() as server:
        yield server
