#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh machine and runs the whole suite.
# Used as-is by CI (.ci/run). Re-running reuses the virtual environment in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

# Services used by the tests are started by the test fixtures themselves; scripts/services.sh
# installs what they need (Redis, PostgreSQL, a Kafka-protocol broker, moto_server).
if [ -x scripts/services.sh ]; then
  scripts/services.sh
fi

exec .venv/bin/python -m pytest "$@"
