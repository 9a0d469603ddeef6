"""docs/integrations.md runs as written: its Python blocks, in order, in one namespace, against the
real local LLM (its Ollama URL pointed at the recording pass-through in front of it)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from integration_support import close_thread_loop

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
OLLAMA = "http://localhost:11434/v1"

pytestmark = [
    # This page loads every framework in one process: their own warnings on import are theirs.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::ImportWarning"),
]


@pytest.mark.service("llm")
def test_every_example_runs_and_routes(recorder, tmp_path, monkeypatch):
    assert len(BLOCKS) == 13 and OLLAMA in BLOCKS[0]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CREWAI_STORAGE_DIR", str(tmp_path / "crewai"))
    monkeypatch.setenv("DSPY_CACHEDIR", str(tmp_path / "dspy"))
    namespace: dict = {"__name__": "docs_integrations"}
    seen = []
    for index, code in enumerate(BLOCKS):
        before = len(recorder.bodies)
        # Run-sync helpers of some frameworks leave an event loop behind: each block gets a thread.
        errors: list[BaseException] = []

        def run(code=code):
            try:
                exec(compile(code.replace(OLLAMA, recorder.base_url), f"{DOC.name}[{index}]", "exec"), namespace)
            except BaseException as exc:  # noqa: BLE001 - re-raised below, in the test's thread
                errors.append(exc)
            finally:
                close_thread_loop()

        worker = threading.Thread(target=run)
        worker.start()
        worker.join()
        if errors:
            raise errors[0]
        seen.append(set(recorder.models[before:]))
    assert seen[0] == set()  # the set-up block only classifies
    called = [models for models in seen[1:] if models]
    assert len(called) == 12, seen  # every framework block reached the server
    assert set().union(*called) == {"llama3.2:3b", "qwen2.5:32b"}
