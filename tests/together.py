"""Running a few Python processes so that they act at the same moment (a race a test must
provoke, not hope for): each runs its setup, says it is ready, waits for the word to go, then runs
the code under test.

    setup = "from dmr.registry import update_user_registry"  # slow imports: before "ready"
    assert run_together(tmp_path / "go", {"a": [...], "b": [...]}, "update_user_registry(...)", setup) == [0, 0]

The code sees ``name`` (the job's key) and ``args`` (the job's arguments).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

_START = """\
import sys, time
from pathlib import Path
go, name, args = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
"""
_READY_THEN_WAIT = """
Path(f"{go}.{name}").touch()  # ready
while not go.exists():
    time.sleep(0.001)
"""


def run_together(go: Path, jobs: Mapping[str, Sequence[str]], body: str, setup: str = "",
                 timeout: float = 120) -> list[int]:
    """Start one process per job running ``setup`` (slow work such as imports, which would spread
    the starts out), wait until every one is ready, let them all run ``body`` at once, and return
    their exit codes."""
    code = _START + setup + _READY_THEN_WAIT + body
    processes = [subprocess.Popen([sys.executable, "-c", code, str(go), name, *args],
                                  stdout=subprocess.DEVNULL) for name, args in jobs.items()]
    try:
        while not all(Path(f"{go}.{name}").exists() for name in jobs):
            assert all(p.poll() is None for p in processes), "a process died before the start"
            time.sleep(0.01)
        go.touch()
        return [p.wait(timeout=timeout) for p in processes]
    finally:
        go.unlink(missing_ok=True)
