"""What the proxy (``dmr serve``) adds to a chat completion, beyond the provider's own time.

    python benchmarks/proxy_overhead.py [--requests 400] [--clients 8]

An upstream that answers at once (a fixed OpenAI-shaped completion from a small local HTTP server)
stands in for the provider, so the provider's time is ~0 and what remains is HTTP on loopback plus
the proxy's own work: reading the body, classifying the conversation (Layers 1 and 3), forwarding
through its one httpx client, and pricing the answer's usage into the budget. Each request is timed
by a client sending it straight to the upstream, then through the proxy (model "dmr"); the table
shows p50 / p95 / p99 of both and of the difference, then requests per second through the proxy
with several concurrent clients. The clients, the proxy and the upstream share one Python process
(and its GIL), so that rate is a floor, not what a dedicated `dmr serve` reaches. Target: ≤ 5 ms
added at p50.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import httpx  # noqa: E402

TASKS = [
    "hi, how are you?",
    "Write a Python function that merges two sorted lists.",
    "Design a CQRS architecture with event sourcing for an order system.",
    "Translate 'good night' into Japanese.",
    "Summarise this paragraph in one sentence: " + "The quarterly numbers were mixed. " * 40,
]
ANSWER = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "m",
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": "Sure."}}],
                     "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22}}).encode()


class _Instant(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, *args: object) -> None:
        pass


def _serve_upstream() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Instant)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


def _serve_proxy(upstream: str) -> str:
    import uvicorn

    from dmr import Router
    from dmr.server import create_app

    prices = {"small": (0.1, 0.2), "medium": (1.0, 2.0), "large": (10.0, 20.0)}
    registry = {"version": "bench",
                "providers": {"up": {"base_url": upstream, "tiers": {"low": "small", "medium": "medium",
                                                                     "high": "large"}}},
                "models": {m: {"provider": "up", "cost": {"input_per_1m": i, "output_per_1m": o}}
                           for m, (i, o) in prices.items()}}
    router = Router(model_registry=registry, provider="up", layer2_enabled=False)
    config = uvicorn.Config(create_app(router), host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/v1"


def _time(client: httpx.Client, url: str, model: str, task: str) -> float:
    body = {"model": model, "messages": [{"role": "user", "content": task}], "max_tokens": 8}
    start = time.perf_counter()
    reply = client.post(url + "/chat/completions", json=body)
    elapsed = (time.perf_counter() - start) * 1e3
    reply.raise_for_status()
    return elapsed


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    upstream = _serve_upstream()
    proxy = _serve_proxy(upstream)
    direct, routed = [], []
    with httpx.Client(timeout=30) as client:
        for i in range(20):  # warm both paths (the classifier's first call loads Layer 3)
            _time(client, upstream, "small", TASKS[i % len(TASKS)])
            _time(client, proxy, "dmr", TASKS[i % len(TASKS)])
        for i in range(args.requests):
            task = TASKS[i % len(TASKS)]
            direct.append(_time(client, upstream, "small", task))
            routed.append(_time(client, proxy, "dmr", task))
    added = [r - d for r, d in zip(routed, direct)]

    def burst() -> float:
        with httpx.Client(timeout=30) as client:
            return sum(_time(client, proxy, "dmr", TASKS[i % len(TASKS)]) for i in range(args.requests // args.clients))

    start = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(lambda _: burst(), range(args.clients)))
    rate = (args.requests // args.clients) * args.clients / (time.perf_counter() - start)

    print(f"proxy overhead, {args.requests} sequential requests (ms)   machine: {os.cpu_count()} cores")
    print(f"{'path':<34}{'p50':>8}{'p95':>8}{'p99':>8}{'mean':>8}")
    for name, values in (("client -> upstream (direct)", direct), ("client -> dmr proxy -> upstream", routed),
                         ("added by the proxy", added)):
        print(f"{name:<34}{_pct(values, .5):>8.2f}{_pct(values, .95):>8.2f}{_pct(values, .99):>8.2f}"
              f"{statistics.fmean(values):>8.2f}")
    print(f"through the proxy with {args.clients} concurrent clients: {rate:,.0f} requests/s"
          f"   (target: <= 5 ms added at p50: {'met' if _pct(added, .5) <= 5 else 'NOT met'})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
