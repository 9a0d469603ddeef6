"""A decision log in PostgreSQL (psycopg 3), for teams that query their routing with SQL.

The table has the same columns as the SQLite log plus the whole record as ``jsonb``. A lost
connection is dropped and opened again on the next try; repeated records are ignored
(``ON CONFLICT DO NOTHING``), so a retried batch never duplicates rows. A record the server refuses
(a value it cannot store) is cleaned once, then dropped and counted, never left to block the log. Feedback from
``Router.record_outcome`` goes to ``<table>_outcomes``, written in the same transaction as its batch.
"""

from __future__ import annotations

import re
import time
from typing import Any

from dmr.errors import NotAvailableError
from dmr.store.logger import BufferedLogger, RecordsRefused, split_outcomes, writable
from dmr.store.sqlite import COLUMNS, OUTCOME_COLUMNS, outcome_row, record_row

__all__ = ["PostgresLogger"]

_PG_TYPES = {"TEXT PRIMARY KEY": "text PRIMARY KEY", "REAL NOT NULL": "double precision NOT NULL",
             "REAL": "double precision", "TEXT": "text", "TEXT NOT NULL": "text NOT NULL", "INTEGER": "integer"}


def _refused(exc: Exception) -> bool:
    """Whether PostgreSQL refused a value (the data), not the connection or the statement."""
    import psycopg

    return isinstance(exc, psycopg.DataError)


class PostgresLogger(BufferedLogger):
    """``PostgresLogger("postgresql://user@host/db", table="dmr_decisions")``."""

    backend = "postgres"

    def __init__(self, dsn: str, *, table: str = "dmr_decisions", connect_timeout_s: float = 3.0,
                 **options: Any) -> None:
        super().__init__(**options)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?", table):
            raise ValueError(f"table must be a plain (optionally schema-qualified) identifier, not {table!r}")
        self.dsn = dsn
        self.table = table
        self.connect_timeout_s = connect_timeout_s
        self._conn: Any = None

    def _connect(self) -> Any:
        if self._conn is None or self._conn.closed:
            try:
                import psycopg
            except ImportError:
                raise NotAvailableError(
                    "PostgresLogger needs psycopg: pip install 'dynamic-model-router[postgres]'") from None
            conn = psycopg.connect(self.dsn, connect_timeout=max(1, int(self.connect_timeout_s)), autocommit=False)
            columns = ", ".join(f"{name} {_PG_TYPES[kind]}" for name, kind in COLUMNS)
            short = self.table.split(".")[-1]
            with conn.transaction():
                conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({columns}, record jsonb NOT NULL)")
                conn.execute(f"CREATE INDEX IF NOT EXISTS {short}_ts ON {self.table} (ts)")
                conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table}_gaps "
                             "(ts double precision NOT NULL, backend text NOT NULL, dropped integer NOT NULL)")
                outcome_columns = ", ".join(f"{name} {_PG_TYPES[kind]}" for name, kind in OUTCOME_COLUMNS)
                conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table}_outcomes ({outcome_columns}, record jsonb NOT NULL)")
                conn.execute(f"CREATE INDEX IF NOT EXISTS {short}_outcomes_decision ON {self.table}_outcomes (decision_id)")
            self._conn = conn
        return self._conn

    def _execute(self, *statements: tuple[str, list[tuple[Any, ...]]]) -> None:
        """Run each ``(sql, rows)`` in one transaction (statements without rows are skipped)."""
        conn = self._connect()
        try:
            with conn.transaction(), conn.cursor() as cur:
                for sql, rows in statements:
                    if rows:
                        cur.executemany(sql, rows)
        except Exception:
            # The connection may be broken (server restarted): open a new one on the next try.
            try:
                conn.close()
            finally:
                self._conn = None
            raise

    def write_batch(self, records: list[dict[str, Any]]) -> None:
        try:
            self._insert(records)
        except Exception as exc:
            if not _refused(exc):
                raise
            # The server is up and refuses a value (a NUL in a text, a number out of range): write
            # the records one by one, each cleaned once if refused, and give up only on those still
            # refused, so that one bad record does not hold up the log.
            refused, reason = [], str(exc)
            for i, record in enumerate(records):
                try:
                    try:
                        self._insert([record])
                    except Exception as one:
                        if not _refused(one):
                            raise
                        self._insert([writable(record)])
                except Exception as one:
                    if not _refused(one):
                        records[:] = records[i:]  # the ones before are written
                        raise
                    refused.append(record)
                    reason = str(one)
            records[:] = []
            if refused:
                raise RecordsRefused(refused, f"PostgreSQL: {reason}") from None

    def _insert(self, records: list[dict[str, Any]]) -> None:
        decisions, outcomes = split_outcomes(records)
        names = ", ".join(name for name, _ in COLUMNS) + ", record"
        marks = ", ".join("%s" for _ in range(len(COLUMNS) + 1))
        outcome_names = ", ".join(name for name, _ in OUTCOME_COLUMNS) + ", record"
        outcome_marks = ", ".join("%s" for _ in range(len(OUTCOME_COLUMNS) + 1))
        self._execute(
            (f"INSERT INTO {self.table} ({names}) VALUES ({marks}) ON CONFLICT (decision_id) DO NOTHING",
             [record_row(r) for r in decisions]),
            (f"INSERT INTO {self.table}_outcomes ({outcome_names}) VALUES ({outcome_marks}) "
             "ON CONFLICT (outcome_id) DO NOTHING", [outcome_row(r) for r in outcomes]))

    def write_gap(self, count: int) -> None:
        self._execute((f"INSERT INTO {self.table}_gaps VALUES (%s, %s, %s)", [(time.time(), self.backend, count)]))

    def close_backend(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __repr__(self) -> str:
        return f"PostgresLogger(table={self.table!r})"
