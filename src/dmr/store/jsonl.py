"""A decision log as a JSON Lines file: one record per line, appended a batch at a time.

A gap (records the buffer had to drop) is written as its own line,
``{"event": "records_dropped", "count": N, "ts": ...}``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from dmr.store.logger import BufferedLogger

__all__ = ["JSONLLogger"]


class JSONLLogger(BufferedLogger):
    """``JSONLLogger("decisions.jsonl")``; ``fsync=True`` syncs each batch to disk."""

    backend = "jsonl"

    def __init__(self, path: str | Path, *, fsync: bool = False, **options: Any) -> None:
        super().__init__(**options)
        self.path = Path(path).expanduser()
        self.fsync = fsync

    def _append(self, lines: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        # One write per batch in append mode: concurrent writers never interleave inside a line.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def write_batch(self, records: list[dict[str, Any]]) -> None:
        self._append([json.dumps(r, ensure_ascii=False, default=str) for r in records])

    def write_gap(self, count: int) -> None:
        self._append([json.dumps({"event": "records_dropped", "count": count, "ts": time.time()})])

    def __repr__(self) -> str:
        return f"JSONLLogger({str(self.path)!r})"
