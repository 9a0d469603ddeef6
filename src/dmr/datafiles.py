"""Reading hand-written data files (training rows, capability rows, outcome files) line by line,
with the file and line number every error message needs."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from dmr.errors import InputError

__all__ = ["numbered_lines"]


def numbered_lines(paths: str | Path | Iterable[str | Path], *, folders: bool = False
                   ) -> Iterator[tuple[Path, int, str]]:
    """``(file, line number, line)`` for every non-blank line of ``paths`` (one or several files;
    with ``folders``, a folder stands for its ``*.jsonl`` files in name order). Lines are split on
    ``\\n`` only: U+2028 and other Unicode line breaks may sit inside a JSON string. An unreadable
    file raises :class:`~dmr.errors.InputError`."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    for p in map(Path, paths):
        for file in sorted(p.glob("*.jsonl")) if folders and p.is_dir() else [p]:
            try:
                lines = file.read_text(encoding="utf-8").split("\n")
            except OSError as exc:
                raise InputError(f"cannot read {file}: {exc.strerror or exc}") from None
            for n, line in enumerate(lines, 1):
                if line.strip():
                    yield file, n, line
