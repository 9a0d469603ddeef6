"""Summaries of a decision log, behind ``dmr stats`` and ``dmr stats cost``.

``load_records`` reads a SQLite log (the default) or a JSONL log; ``distribution`` counts decisions
by tier, layer, task type and tenant; ``cost_summary`` adds up the estimated spend and compares it
with sending every task to the highest tier (the money the routing saved).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

__all__ = ["cost_summary", "distribution", "load_records", "parse_since"]

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
        raise ValueError(f"--since: {text!r} is neither a duration like 7d/24h/30m nor an ISO date") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def load_records(path: str | Path, *, since: float | None = None) -> tuple[list[dict[str, Any]], int]:
    """The decision records of a log (SQLite, or JSONL by suffix) since a Unix time, and how many
    records the logger reported dropped in that time. A file that is not a SQLite database (and not
    named ``.jsonl``) is an :class:`~dmr.errors.InputError`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no decision log at {path}")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        from dmr.store.jsonl import read_jsonl

        records, dropped = [], 0
        for record in read_jsonl(path):
            if since is not None and (record.get("ts") or 0) < since:
                continue
            if record.get("event") == "records_dropped":
                dropped += int(record.get("count") or 0)
            elif record.get("kind") != "outcome":  # feedback is not a decision
                records.append(record)
        return records, dropped
    import sqlite3

    from dmr.errors import InputError
    from dmr.store.sqlite import read_gaps, read_records

    try:
        return list(read_records(path, since=since)), read_gaps(path, since=since)
    except sqlite3.DatabaseError as exc:
        raise InputError(f"cannot read the decision log {path}: {exc} (a log is read as SQLite unless its name "
                         "ends in .jsonl or .ndjson)") from None


def _share(counter: Counter[str], total: int) -> list[dict[str, Any]]:
    return [{"name": name, "count": count, "share": count / total if total else 0.0}
            for name, count in counter.most_common()]


def distribution(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts and shares by tier, layer, task type and tenant, plus cache hits and latency."""
    rows = list(records)
    total = len(rows)
    by: dict[str, Counter[str]] = {key: Counter() for key in ("tier", "layer", "task_type", "tenant")}
    latencies = sorted(float(r.get("latency_ms") or 0.0) for r in rows)
    for row in rows:
        for key, counter in by.items():
            counter[str(row.get(key) if row.get(key) is not None else "(none)")] += 1
    out: dict[str, Any] = {"decisions": total, "cache_hits": sum(1 for r in rows if r.get("cached"))}
    if rows:
        out["first"] = min(float(r.get("ts") or 0) for r in rows)
        out["last"] = max(float(r.get("ts") or 0) for r in rows)
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
        cost, high = row.get("estimated_cost_usd"), row.get("high_tier_cost_usd")
        if cost is None or high is None:
            unpriced += 1
            continue
        priced += 1
        spent += float(cost)
        baseline += float(high)
        for key, name in (("by_tier", str(row.get("tier"))), ("by_tenant", str(row.get("tenant") or ""))):
            group = groups[key].setdefault(name, {"decisions": 0, "spent_usd": 0.0, "high_tier_usd": 0.0})
            group["decisions"] += 1
            group["spent_usd"] += float(cost)
            group["high_tier_usd"] += float(high)
    saved = baseline - spent
    return {"decisions": priced + unpriced, "priced": priced, "unpriced": unpriced, "spent_usd": spent,
            "high_tier_usd": baseline, "saved_usd": saved, "saved_share": saved / baseline if baseline else 0.0,
            **groups}
