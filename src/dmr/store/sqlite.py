"""The default decision log: an embedded SQLite database in WAL mode.

Writes happen on the logger's background thread, one transaction per batch, so the decision path
never waits on the disk. ``dmr stats`` reads the same file (:func:`read_records`). The key fields
are columns (for queries); the whole record is kept as JSON in ``record``. Feedback from
``Router.record_outcome`` goes to the table ``<table>_outcomes`` in the same database, in the same
transaction as the decisions of its batch (:func:`read_outcomes`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from dmr.store.logger import BufferedLogger, split_outcomes

__all__ = ["COLUMNS", "OUTCOME_COLUMNS", "SQLiteLogger", "outcome_row", "read_gaps", "read_outcomes", "read_records",
           "record_row"]

# Feedback on decisions (Router.record_outcome), in the table `<decisions table>_outcomes`;
# several rows may share a decision id (the reader keeps the latest per answering tier or model).
OUTCOME_COLUMNS: tuple[tuple[str, str], ...] = (
    ("outcome_id", "TEXT PRIMARY KEY"), ("decision_id", "TEXT NOT NULL"), ("ts", "REAL NOT NULL"),
    ("score", "REAL NOT NULL"), ("model", "TEXT"), ("tier", "TEXT"), ("notes", "TEXT"),
)

# The queryable columns every table-shaped log (SQLite, PostgreSQL) has, in order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("decision_id", "TEXT PRIMARY KEY"), ("ts", "REAL NOT NULL"), ("tier", "TEXT"), ("model_name", "TEXT"),
    ("provider", "TEXT"), ("task_type", "TEXT"), ("complexity", "TEXT"), ("layer", "TEXT"),
    ("confidence", "REAL"), ("difficulty", "REAL"), ("latency_ms", "REAL"), ("estimated_cost_usd", "REAL"),
    ("high_tier_cost_usd", "REAL"), ("tenant", "TEXT"), ("cached", "INTEGER"),
    ("config_fingerprint", "TEXT"), ("registry_fingerprint", "TEXT"),
)


def record_row(record: dict[str, Any]) -> tuple[Any, ...]:
    values = [record.get(name) for name, _ in COLUMNS]
    values[COLUMNS.index(("cached", "INTEGER"))] = int(bool(record.get("cached")))
    return (*values, json.dumps(record, ensure_ascii=False, default=str))


def outcome_row(record: dict[str, Any]) -> tuple[Any, ...]:
    return (*(record.get(name) for name, _ in OUTCOME_COLUMNS), json.dumps(record, ensure_ascii=False, default=str))


class SQLiteLogger(BufferedLogger):
    """``SQLiteLogger("decisions.sqlite3")``: the embedded decision log (see BufferedLogger for
    the buffering options)."""

    backend = "sqlite"

    def __init__(self, path: str | Path, *, table: str = "decisions", **options: Any) -> None:
        super().__init__(**options)
        if not table.isidentifier():
            raise ValueError(f"table must be a plain identifier, not {table!r}")
        self.path = Path(path).expanduser()
        self.table = table
        self._conn: sqlite3.Connection | None = None
        self._conn_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({columns}, record TEXT NOT NULL)")
            conn.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_ts ON {self.table}(ts)")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table}_gaps "
                         "(ts REAL NOT NULL, backend TEXT NOT NULL, dropped INTEGER NOT NULL)")
            outcome_columns = ", ".join(f"{name} {kind}" for name, kind in OUTCOME_COLUMNS)
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table}_outcomes ({outcome_columns}, record TEXT NOT NULL)")
            conn.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_outcomes_decision "
                         f"ON {self.table}_outcomes(decision_id)")
            self._conn = conn
        return self._conn

    def write_batch(self, records: list[dict[str, Any]]) -> None:
        decisions, outcomes = split_outcomes(records)
        names = ", ".join(name for name, _ in COLUMNS) + ", record"
        marks = ", ".join("?" for _ in range(len(COLUMNS) + 1))
        outcome_names = ", ".join(name for name, _ in OUTCOME_COLUMNS) + ", record"
        outcome_marks = ", ".join("?" for _ in range(len(OUTCOME_COLUMNS) + 1))
        with self._conn_lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN")
                # A retried batch may have been written before the failure was seen: ignore repeats.
                if decisions:
                    conn.executemany(f"INSERT OR IGNORE INTO {self.table} ({names}) VALUES ({marks})",
                                     [record_row(r) for r in decisions])
                if outcomes:
                    conn.executemany(f"INSERT OR IGNORE INTO {self.table}_outcomes ({outcome_names}) "
                                     f"VALUES ({outcome_marks})", [outcome_row(r) for r in outcomes])
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def write_gap(self, count: int) -> None:
        with self._conn_lock:
            self._connect().execute(f"INSERT INTO {self.table}_gaps VALUES (?, ?, ?)", (time.time(), self.backend, count))

    def close_backend(self) -> None:
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"SQLiteLogger({str(self.path)!r})"


def _open_readonly(path: str | Path) -> sqlite3.Connection:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no decision log at {path}")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)


def query_records(path: str | Path, query: str, params: tuple[Any, ...] = ()) -> Iterator[dict[str, Any]]:
    """The JSON ``record`` column of the rows ``query`` selects from a SQLite log, read-only;
    a table that does not exist yet (a log written before it) yields nothing, and a row that is
    not valid JSON is skipped."""
    conn = _open_readonly(path)
    try:
        try:
            rows = conn.execute(query, params)
        except sqlite3.OperationalError:
            return
        for (text,) in rows:
            try:
                yield json.loads(text)
            except ValueError:
                continue
    finally:
        conn.close()


def read_records(path: str | Path, *, since: float | None = None, table: str = "decisions") -> Iterator[dict[str, Any]]:
    """The records of a SQLite decision log, oldest first (``since``: a Unix time)."""
    query = f"SELECT record FROM {table}" + (" WHERE ts >= ?" if since is not None else "") + " ORDER BY ts"
    _open_readonly(path).close()  # a missing file fails here, not on first iteration
    return query_records(path, query, (since,) if since is not None else ())


def read_outcomes(path: str | Path, *, table: str = "decisions") -> Iterator[dict[str, Any]]:
    """The outcome records of a SQLite decision log, in the order they were recorded (none when
    the log predates outcomes)."""
    return query_records(path, f"SELECT record FROM {table}_outcomes ORDER BY ts, rowid")


def read_gaps(path: str | Path, *, since: float | None = None, table: str = "decisions") -> int:
    """How many records the logger dropped (and said so in the log) since ``since``."""
    conn = _open_readonly(path)
    try:
        query = f"SELECT COALESCE(SUM(dropped), 0) FROM {table}_gaps" + (" WHERE ts >= ?" if since is not None else "")
        return int(conn.execute(query, (since,) if since is not None else ()).fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()
