"""Reading hand-written data files (training rows, capability rows, outcome files) line by line,
with the file and line number every error message needs, and the hash that splits their rows into
folds."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Iterator

from dmr.errors import InputError

__all__ = ["fold_of", "not_utf8", "numbered_lines", "text_hash"]


def text_hash(key: str) -> int:
    """The SHA-256 of ``key`` (UTF-8; a lone surrogate is hashed, not refused) as an integer: a
    value fixed by the text alone, whatever the order or the run."""
    return int(hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest(), 16)


def fold_of(key: str, k: int = 5) -> int:
    """The fold (0..k-1) of a row, fixed by the SHA-256 of ``key``: a training row's task text, an
    outcome row's ``id``. Fold 0 of 5 is the training data's fixed test split."""
    return text_hash(key) % k


def not_utf8(file: str | Path, exc: UnicodeDecodeError) -> str:
    """The message for a file that is not UTF-8 text: which file, and where its first bad byte is
    (a binary file, or text saved in another encoding such as Latin-1 or UTF-16)."""
    return (f"{file} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8")


def numbered_lines(paths: str | Path | Iterable[str | Path], *, folders: bool = False
                   ) -> Iterator[tuple[Path, int, str]]:
    """``(file, line number, line)`` for every non-blank line of ``paths`` (one or several files;
    with ``folders``, a folder stands for its ``*.jsonl`` files in name order). Lines are split on
    ``\\n`` only: U+2028 and other Unicode line breaks may sit inside a JSON string. An unreadable
    file, or one that is not UTF-8 text, raises
    :class:`~dmr.errors.InputError`."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    for p in map(Path, paths):
        for file in sorted(p.glob("*.jsonl")) if folders and p.is_dir() else [p]:
            try:
                lines = file.read_text(encoding="utf-8-sig").split("\n")  # a BOM is not text
            except OSError as exc:
                raise InputError(f"cannot read {file}: {exc.strerror or exc}") from None
            except UnicodeDecodeError as exc:
                raise InputError(not_utf8(file, exc)) from None
            for n, line in enumerate(lines, 1):
                if line.strip():
                    yield file, n, line
