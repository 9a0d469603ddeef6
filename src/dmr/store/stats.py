"""Summaries of a decision log, behind ``dmr stats`` and ``dmr stats cost``.

``load_records`` reads a SQLite log (the default) or a JSONL log; ``distribution`` counts decisions
by tier, layer, task type and tenant; ``cost_summary`` adds up the estimated spend and compares it
with sending every task to the highest tier (the money the routing saved).
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

__all__ = ["cost_summary", "distribution", "load_records", "parse_since", "summarize_log"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str | None, *, now: float | None = None) -> float | None:
    """``"7d"``, ``"24h"``, ``"30m"``, ``"2w"`` or an ISO date/time (UTC unless it says) → Unix time."""
    if not text:
        return None
    now = time.time() if now is None else now
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration like 7d, 24h or 30m nor an ISO date like 2026-01-31 "
                         "or 2026-01-31T09:00+02:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None: a log from another dmr version, or edited by hand,
    may hold a string, null or nonsense where a number belongs, and that must not stop a summary."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _scan(path: str | Path, since: float | None) -> tuple[Iterator[dict[str, Any]], Callable[[], int]]:
    """The decision records of a log (SQLite, or JSONL by suffix) since a Unix time, one at a time,
    and a function giving how many records the logger reported dropped in that time (complete
    once the records have been read)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no decision log at {path}")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        from dmr.store.jsonl import read_jsonl

        dropped = [0]

        def jsonl_records() -> Iterator[dict[str, Any]]:
            for record in read_jsonl(path):
                ts = _number(record.get("ts"))
                if since is not None and (ts is None or ts < since):
                    continue
                if record.get("event") == "records_dropped":
                    dropped[0] += int(_number(record.get("count")) or 0)
                elif record.get("kind") != "outcome":  # feedback is not a decision
                    yield record

        return jsonl_records(), lambda: dropped[0]
    import sqlite3

    from dmr.errors import InputError
    from dmr.store.sqlite import read_gaps, read_records

    def sqlite_records() -> Iterator[dict[str, Any]]:
        try:
            yield from (r for r in read_records(path, since=since) if isinstance(r, dict))
        except sqlite3.DatabaseError as exc:
            raise InputError(f"cannot read the decision log {path}: {exc} (a log is read as SQLite unless its name "
                             "ends in .jsonl or .ndjson)") from None

    def gaps() -> int:
        try:
            return read_gaps(path, since=since)
        except sqlite3.DatabaseError:
            return 0  # the records' reading says what is wrong with the file

    return sqlite_records(), gaps


def load_records(path: str | Path, *, since: float | None = None) -> tuple[list[dict[str, Any]], int]:
    """The decision records of a log (SQLite, or JSONL by suffix) since a Unix time, and how many
    records the logger reported dropped in that time. A file that is not a SQLite database (and not
    named ``.jsonl``) is an :class:`~dmr.errors.InputError`."""
    records, dropped = _scan(path, since)
    return list(records), dropped()


def summarize_log(path: str | Path, summary: Callable[[Iterable[dict[str, Any]]], dict[str, Any]], *,
                  since: float | None = None) -> tuple[dict[str, Any], int]:
    """``summary`` (:func:`distribution` or :func:`cost_summary`) of a log's records since a Unix
    time, read one at a time so that a log of millions of decisions is never held in memory, and
    how many records the logger reported dropped in that time."""
    records, dropped = _scan(path, since)
    return summary(records), dropped()


def _share(counter: Counter[str], total: int) -> list[dict[str, Any]]:
    return [{"name": name, "count": count, "share": count / total if total else 0.0}
            for name, count in counter.most_common()]


def distribution(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts and shares by tier, layer, task type and tenant, plus cache hits and latency (one pass)."""
    total = cache_hits = 0
    by: dict[str, Counter[str]] = {key: Counter() for key in ("tier", "layer", "task_type", "tenant")}
    latencies: list[float] = []
    first: float | None = None
    last: float | None = None
    for row in records:
        total += 1
        cache_hits += bool(row.get("cached"))
        latencies.append(_number(row.get("latency_ms")) or 0.0)
        if (ts := _number(row.get("ts"))) is not None:
            first = ts if first is None else min(first, ts)
            last = ts if last is None else max(last, ts)
        for key, counter in by.items():
            counter[str(row.get(key) if row.get(key) is not None else "(none)")] += 1
    out: dict[str, Any] = {"decisions": total, "cache_hits": cache_hits}
    if first is not None:
        out["first"], out["last"] = first, last
    if latencies:
        latencies.sort()
        out["latency_ms_p50"] = latencies[(len(latencies) - 1) // 2]
    out.update({key: _share(counter, total) for key, counter in by.items()})
    return out


def cost_summary(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Estimated spend against the same tasks all sent to the highest tier, in all, by tier and by
    tenant (decisions of no tenant under ``""``). Decisions without a cost estimate (no model or
    no price) are counted apart and left out of the sums."""
    spent = baseline = 0.0
    priced = unpriced = 0
    groups: dict[str, dict[str, dict[str, float]]] = {"by_tier": {}, "by_tenant": {}}
    for row in records:
        cost, high = _number(row.get("estimated_cost_usd")), _number(row.get("high_tier_cost_usd"))
        if cost is None or high is None:
            unpriced += 1
            continue
        priced += 1
        spent += cost
        baseline += high
        for key, name in (("by_tier", str(row.get("tier"))), ("by_tenant", str(row.get("tenant") or ""))):
            group = groups[key].setdefault(name, {"decisions": 0, "spent_usd": 0.0, "high_tier_usd": 0.0})
            group["decisions"] += 1
            group["spent_usd"] += cost
            group["high_tier_usd"] += high
    saved = baseline - spent
    return {"decisions": priced + unpriced, "priced": priced, "unpriced": unpriced, "spent_usd": spent,
            "high_tier_usd": baseline, "saved_usd": saved, "saved_share": saved / baseline if baseline else 0.0,
            **groups}
