"""What the proxy tests share: a Router over one OpenAI-compatible provider, ``local``, whose
three tiers are three model names served by the real local LLM behind a recording pass-through
(tests/recording_proxy.py), and the proxy app run for real by uvicorn on a free 127.0.0.1 port.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

from recording_proxy import EASY, HARD, MODELS, PRICES, Recorder, registry_for

from dmr import Router

with warnings.catch_warnings():
    # starlette 0.52's testclient names anyio.abc.BlockingPortal at import, an alias anyio now
    # deprecates: their matter, not the proxy's; every other warning stays an error.
    warnings.filterwarnings("ignore", "The anyio.abc.BlockingPortal alias is deprecated", DeprecationWarning)
    from starlette.testclient import TestClient

__all__ = ["EASY", "HARD", "MODELS", "PRICES", "LiveServer", "Recorder", "TestClient", "make_router",
           "registry_for"]

def make_router(base_url: str | None, tmp_path: Path | None = None, *, provider: str = "local",
                api_key_env: str | None = None, **options: Any) -> Router:
    """A Router over :func:`registry_for`; with ``tmp_path``, also a decision log and a budget."""
    if tmp_path is not None:
        options = {"decision_logger": str(tmp_path / "decisions.sqlite3"), "budget_usd": 100.0,
                   "budget_store": str(tmp_path / "budget.sqlite3"), **options}
    return Router(model_registry=registry_for(base_url, provider=provider, api_key_env=api_key_env),
                  provider=provider, layer2_enabled=False, **options)


class LiveServer:
    """An app served for real by uvicorn in a background thread, on a free 127.0.0.1 port."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="none", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> LiveServer:
        self._thread.start()
        for _ in range(3000):  # a bound on the wait for readiness, not a timing assertion
            if self._server.started or not self._thread.is_alive():
                break
            self._thread.join(0.01)
        if not self._server.started:
            raise RuntimeError("uvicorn did not start serving")
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.should_exit = True
        self._thread.join(30)
        assert not self._thread.is_alive(), "uvicorn did not shut down"
