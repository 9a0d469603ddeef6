"""What the proxy tests share: a Router over one OpenAI-compatible provider, ``local``, whose
three tiers are three model names served by the real local LLM behind a recording pass-through
(tests/recording_proxy.py), and the proxy app run for real by uvicorn on a free 127.0.0.1 port.
"""

from __future__ import annotations

import json
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

__all__ = ["EASY", "HARD", "MODELS", "PRICES", "LiveServer", "Recorder", "TestClient", "chat_chunk", "make_router",
           "refused_untranslated", "registry_for", "sse", "sse_data", "tool_call_answer", "tool_call_stream"]

def sse(*events: dict) -> bytes:
    """A chat completion stream of ``events``, as a provider sends it."""
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def chat_chunk(delta: dict, finish: str | None = None, usage: tuple[int, int] | None = None) -> dict:
    event = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        event["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return event


def sse_data(raw: str) -> list[dict]:
    """The JSON of every ``data:`` line of a server-sent event stream."""
    return [json.loads(line[5:]) for line in raw.splitlines() if line.startswith("data:")]


def tool_call_stream(*more: dict) -> bytes:
    """A provider's stream with some text, then a get_weather call for Oslo (its arguments in two
    pieces), the chunks ``more``, the finish and the usage (12 in, 7 out)."""
    return sse(chat_chunk({"role": "assistant", "content": "Checking."}),
               chat_chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                           "function": {"name": "get_weather", "arguments": ""}}]}),
               chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
               chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
               *more, chat_chunk({}, "tool_calls"),
               {"id": "c1", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}})


def tool_call_answer(content: str | None) -> tuple[dict, dict]:
    """A provider's plain answer that calls get_weather for Paris after ``content`` (30 tokens in, 9
    out), and the assistant message in it."""
    message = {"role": "assistant", "content": content, "tool_calls": [
        {"id": "call_7", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}
    return {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
            "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39},
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}]}, message


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


def refused_untranslated(fault_server: Any, path: str, body: dict) -> dict:
    """The OpenAI-shaped error object of ``body`` posted to ``path``, checked to be a 400 that
    sent nothing to the provider (the fault injector)."""
    from fault_server import Reply

    from dmr.server import create_app

    fault_server.script(Reply.openai("never sent"))
    with TestClient(create_app(make_router(fault_server.url + "/v1", layer3_enabled=False))) as client:
        answer = client.post(path, json=body)
    assert answer.status_code == 400, answer.text
    assert fault_server.count == 0
    return answer.json()["error"]
