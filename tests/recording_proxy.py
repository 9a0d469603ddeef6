"""A recording HTTP pass-through in front of the real local LLM, and the routing fixtures' data.

llama.cpp answers any model name with its own alias, so its answer cannot show which model a
client asked for. :class:`Recorder` forwards every request unchanged to the local server, relays
the answer chunk by chunk as it arrives (streams stay streams), and keeps each request's decoded
JSON body and headers. :func:`registry_for` is a registry with one OpenAI-compatible provider whose
three tiers are three model names, so that a test can see which tier a request was routed to.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

__all__ = ["EASY", "HARD", "MODELS", "PRICES", "Recorder", "recorder", "registry_for"]

MODELS = {"low": "local-small", "medium": "local-medium", "high": "local-large"}
PRICES = {"local-small": (0.1, 0.2), "local-medium": (1.0, 2.0), "local-large": (10.0, 20.0)}
EASY = "hi, how are you?"
HARD = ("Design a globally distributed database with strong consistency across five regions and "
        "argue the trade-offs of each replication choice")


def registry_for(base_url: str | None, *, provider: str = "local", api_key_env: str | None = None) -> dict[str, Any]:
    """A registry with one provider at ``base_url`` offering local-small/-medium/-large, priced."""
    entry: dict[str, Any] = {"tiers": dict(MODELS)}
    if base_url is not None:
        entry["base_url"] = base_url
    if api_key_env is not None:
        entry["api_key_env"] = api_key_env
    return {"version": "test", "providers": {provider: entry},
            "models": {name: {"provider": provider, "cost": {"input_per_1m": i, "output_per_1m": o}}
                       for name, (i, o) in PRICES.items()}}


class Recorder:
    """An HTTP pass-through to ``upstream`` (a base URL ending in /v1)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: list[tuple[dict[str, Any], dict[str, str]]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self._forward(None)

            def do_POST(self) -> None:  # noqa: N802
                self._forward(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _forward(self, raw: bytes | None) -> None:
                if raw is not None:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = {"_raw": raw.decode("utf-8", "replace")}
                    recorder.requests.append((body, {k.lower(): v for k, v in self.headers.items()}))
                url = recorder.upstream + self.path.removeprefix("/v1")
                with httpx.Client(timeout=120) as client, client.stream(
                        self.command, url, content=raw, headers={"Content-Type": "application/json"}) as answer:
                    self.send_response(answer.status_code)
                    self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for chunk in answer.iter_raw():
                        self.wfile.write(chunk)
                        self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The decoded body of every request, in order."""
        return [body for body, _ in self.requests]

    @property
    def models(self) -> list[str]:
        """The ``model`` field of every request, in order."""
        return [body.get("model") for body in self.bodies]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def recorder(local_llm):
    """A :class:`Recorder` in front of the local LLM (import ``local_llm`` beside this fixture)."""
    rec = Recorder(local_llm.base_url)
    yield rec
    rec.close()
