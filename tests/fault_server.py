"""A small local HTTP server whose answers a test scripts: provider wire formats (OpenAI, Anthropic,
Google) and the faults a real provider cannot be made to produce on demand — timeouts, 500s, 429
with Retry-After, malformed or truncated bodies, stalled responses, answers too large to keep in
memory. It counts every request, so a test can assert how many calls reached "the
provider".

    with FaultServer() as server:
        server.script(Reply.status(500), Reply.openai({"task_type": ...}))
        ... Router(layer2_base_url=server.url + "/v1", ...) ...
        assert server.count == 2
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FaultServer", "Reply"]


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0          # wait before sending anything
    stall_after_headers: float = 0.0  # send status and headers, then wait before the body
    declared_length: int | None = None  # a Content-Length that lies (truncated body)
    repeat: int = 1  # send the body this many times (a huge answer, never held in memory)
    close_delimited: bool = False  # no Content-Length: the body ends when the connection closes

    @classmethod
    def json(cls, data: Any, status: int = 200, **kw: Any) -> Reply:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json"}, **kw)

    @classmethod
    def error(cls, status: int, headers: dict[str, str] | None = None, **kw: Any) -> Reply:
        body = json.dumps({"error": {"message": f"injected {status}", "type": "server_error"}}).encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})}, **kw)

    @classmethod
    def openai(cls, answer: Any, *, usage: tuple[int, int] = (50, 20), model: str = "fake", **kw: Any) -> Reply:
        content = answer if isinstance(answer, str) else json.dumps(answer)
        return cls.json({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
        }, **kw)

    @classmethod
    def anthropic(cls, answer: dict[str, Any], *, usage: tuple[int, int] = (60, 25),
                  model: str = "claude-haiku-4-5-20251001", **kw: Any) -> Reply:
        return cls.json({
            "id": "msg_01", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "tool_use", "id": "toolu_01", "name": "classify", "input": answer}],
            "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
        }, **kw)

    @classmethod
    def google(cls, answer: Any, *, usage: tuple[int, int] = (40, 15), model: str = "gemini-2.5-flash",
               **kw: Any) -> Reply:
        text = answer if isinstance(answer, str) else json.dumps(answer)
        return cls.json({
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": usage[0], "candidatesTokenCount": usage[1],
                              "totalTokenCount": sum(usage)},
            "modelVersion": model,
        }, **kw)


class FaultServer:
    def __init__(self) -> None:
        self._replies: list[Reply] = [Reply.error(500)]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes; without this, Nagle's algorithm and
                # delayed ACKs add ~40 ms to every answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                reply = server._next(self.path, dict(self.headers), body)
                if reply.delay and server._stop.wait(reply.delay):
                    return
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    declared = reply.declared_length if reply.declared_length is not None else len(reply.body)
                    if not reply.close_delimited:
                        self.send_header("Content-Length", str(declared * reply.repeat))
                    if reply.declared_length is not None or reply.close_delimited:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.flush()
                    if reply.stall_after_headers and server._stop.wait(reply.stall_after_headers):
                        return
                    for _ in range(reply.repeat):
                        if server._stop.is_set():
                            return
                        self.wfile.write(reply.body)
                    self.wfile.flush()
                    if reply.declared_length is not None or reply.close_delimited:
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _next(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body})
            return self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]

    def script(self, *replies: Reply) -> FaultServer:
        """Answer the next requests with ``replies`` in order; the last one repeats."""
        with self._lock:
            self._replies = list(replies)
        return self

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
