"""A decision log as a JSON Lines file: one record per line, appended a batch at a time.

A gap (records the buffer had to drop) is written as its own line,
``{"event": "records_dropped", "count": N, "ts": ...}``. Feedback from ``Router.record_outcome``
goes to a sidecar file beside the log, ``decisions.jsonl`` → ``decisions.outcomes.jsonl``
(:func:`outcomes_path`), so readers of the log see decisions only.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from dmr.store.logger import BufferedLogger, split_outcomes

__all__ = ["JSONLLogger", "outcomes_path", "parse_records", "read_jsonl"]


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a JSONL log, in file order (none when the file does not exist). A line that
    is not a JSON object — a torn last line after a crash — is skipped, not fatal."""
    path = Path(path)
    if not path.is_file():
        return
    with path.open(encoding="utf-8", errors="replace") as lines:
        yield from parse_records(lines)


def parse_records(lines: Iterable[str | bytes]) -> Iterator[dict[str, Any]]:
    """The JSON objects among ``lines`` (text or UTF-8 bytes); anything else is skipped."""
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:  # also UnicodeDecodeError
            continue
        if isinstance(record, dict):
            yield record


def outcomes_path(path: str | Path) -> Path:
    """The outcome sidecar of a JSONL decision log: ``<stem>.outcomes.jsonl`` in the same folder."""
    path = Path(path).expanduser()
    return path.with_name(f"{path.stem}.outcomes.jsonl")


class JSONLLogger(BufferedLogger):
    """``JSONLLogger("decisions.jsonl")``; ``fsync=True`` syncs each batch to disk."""

    backend = "jsonl"

    def __init__(self, path: str | Path, *, fsync: bool = False, **options: Any) -> None:
        super().__init__(**options)
        self.path = Path(path).expanduser()
        self.fsync = fsync

    @property
    def outcomes_path(self) -> Path:
        return outcomes_path(self.path)

    def _append(self, lines: list[str], path: Path | None = None) -> None:
        path = self.path if path is None else path
        path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        # One write per batch in append mode: concurrent writers never interleave inside a line.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def write_batch(self, records: list[dict[str, Any]]) -> None:
        decisions, outcomes = split_outcomes(records)
        if decisions:
            self._append([json.dumps(r, ensure_ascii=False, default=str) for r in decisions])
        if outcomes:
            try:
                self._append([json.dumps(r, ensure_ascii=False, default=str) for r in outcomes], self.outcomes_path)
            except BaseException:
                records[:] = outcomes  # the decisions are written: only the outcomes are tried again
                raise

    def write_gap(self, count: int) -> None:
        self._append([json.dumps({"event": "records_dropped", "count": count, "ts": time.time()})])

    def __repr__(self) -> str:
        return f"JSONLLogger({str(self.path)!r})"
