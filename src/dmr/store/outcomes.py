"""Feedback on decisions, and the training rows it makes.

``router.record_outcome(decision_id, score, model=..., tier=..., notes=...)`` says how good the
answer to a routed task turned out. It becomes an outcome record,
``{"kind": "outcome", "outcome_id", "decision_id", "ts", "score", "model", "tier", "notes", "tenant"}``, that
travels the Router's decision-log pipeline like a decision: the SQLite and PostgreSQL logs keep it
in the table ``<table>_outcomes`` of the same database, the JSONL log in the sidecar
``<stem>.outcomes.jsonl``, and Kafka, S3 and webhook logs carry it in their stream as is. All but
the webhook can be read back: a path, a logger, or ``s3://bucket/prefix/`` and
``kafka://host:port/topic`` (:func:`log_from_url`). An outcome
whose decision is not (yet) in the log is stored all the same — the decision may still be buffered,
or have been logged by another replica — and :func:`training_rows` skips it, saying how many it
skipped in a warning on the ``dmr.store`` logger.

:func:`training_rows` joins outcomes to their decisions and yields one row per decision with
feedback, in the outcome-file format ``dmr train --outcomes`` reads::

    {"id": decision_id, "prompt": task, "outcomes": {"medium": 0.8}, "task_type": ..., "complexity": ...}

The answer is keyed by the tier that answered (``key="model"``: by model): the decision's own,
unless the outcome names another ``tier`` (or ``model``). An outcome that names only a model when
rows are keyed by tier (or only a tier when keyed by model), and not the decision's, is left out.
An outcome sent for a tenant (``tenant_config=``, or by the proxy for the tenant whose key sent
it) carries the tenant's name, and rates only that tenant's decisions: one naming another tenant than
the decision's is left out (counted in a warning), so a tenant that learns another's decision id
cannot steer the model trained on that tenant's traffic. An outcome sent for no tenant (the library,
or the proxy's own key) may rate any decision.
When a decision has several outcomes for the same answer, the latest recorded wins; outcomes for
different answers (a task re-run at another tier and scored) all appear. The prompt is the task
text the log holds: scrubbed of personal data when the Router was built with ``pii_scrub=True``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import numbers
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from dmr.errors import DmrError, InputError
from dmr.store.wiring import log_from_url
from dmr.types import Decision, ModelTier

__all__ = ["finite_score", "log_from_url", "outcome_record", "read_outcomes", "training_rows"]

log = logging.getLogger("dmr.store")

_Reader = tuple[Callable[[], Iterable[dict[str, Any]]], Callable[[], Iterable[dict[str, Any]]]]


def finite_score(value: Any) -> bool:
    """Whether ``value`` is a usable score: a real number, not a bool, finite as a float (an int
    too large for a float is not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def outcome_record(decision_id: str | Decision, score: float, *, model: str | None = None,
                   tier: ModelTier | str | None = None, notes: str | None = None,
                   ts: float | None = None, tenant: str | None = None) -> dict[str, Any]:
    """A validated outcome record. ``decision_id`` may be the :class:`~dmr.types.Decision` itself,
    whose tier and model then fill in ``tier`` and ``model`` when they are not given. ``score`` is
    any finite number (0..1 is usual; keep one scale per log). ``tenant``: the name of the tenant
    it is sent for (:func:`dmr.store.wiring.tenant_label`), None for none."""
    if isinstance(decision_id, Decision):
        decision = decision_id
        decision_id = decision.decision_id
        if tier is None and model is None:
            tier, model = decision.tier, decision.model_name
    if not isinstance(decision_id, str) or not decision_id.strip():
        raise InputError(f"decision_id must be a non-empty string (Decision.decision_id), not {decision_id!r}")
    if not finite_score(score):
        shown = repr(score) if len(repr(score)) <= 40 else f"{repr(score)[:20]}…({len(repr(score))} characters)"
        raise InputError(f"score must be a finite number (0..1 is usual), not {shown}")
    if tier is not None:
        try:
            tier = ModelTier(tier)
            tier.rank
        except ValueError as exc:
            raise InputError(f"tier: {exc}") from None
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise InputError(f"model must be a model name, not {model!r}")
    if notes is not None and not isinstance(notes, str):
        raise InputError(f"notes must be a string, not {type(notes).__name__}")
    if tenant is not None and (not isinstance(tenant, str) or not tenant):
        raise InputError(f"tenant must be a tenant's name, not {tenant!r}")
    return {"kind": "outcome", "outcome_id": os.urandom(12).hex(), "decision_id": decision_id.strip(),
            "ts": time.time() if ts is None else float(ts), "score": float(score),
            "model": model, "tier": None if tier is None else str(tier), "notes": notes, "tenant": tenant}


# -- reading logs back ---------------------------------------------------------------------------------
def _jsonl(path: Path) -> _Reader:
    from dmr.store.jsonl import outcomes_path, read_jsonl

    if not path.is_file():
        raise FileNotFoundError(f"no decision log at {path}")
    return (lambda: read_jsonl(outcomes_path(path)),
            lambda: (r for r in read_jsonl(path) if "decision_id" in r and r.get("kind") != "outcome"))


def _sqlite(path: Path, table: str) -> _Reader:
    from dmr.store.sqlite import _open_readonly, query_records, read_outcomes

    def rated() -> Iterator[dict[str, Any]]:
        # A log written before outcomes existed has no outcomes table: nothing is rated.
        return query_records(path, f"SELECT record FROM {table} WHERE decision_id IN "
                                   f"(SELECT decision_id FROM {table}_outcomes) ORDER BY ts")

    _open_readonly(path).close()  # a missing file fails here, not on first iteration
    return lambda: read_outcomes(path, table=table), rated


def _postgres(dsn: str, table: str) -> _Reader:
    import psycopg

    def query(sql: str) -> Iterator[dict[str, Any]]:
        with psycopg.connect(dsn) as conn:
            exists = conn.execute("SELECT to_regclass(%s)", (f"{table}_outcomes",)).fetchone()[0]
            if exists is None:
                return
            for (record,) in conn.execute(sql):
                yield record if isinstance(record, dict) else json.loads(record)

    return (lambda: query(f"SELECT record FROM {table}_outcomes ORDER BY ts, outcome_id"),
            lambda: query(f"SELECT record FROM {table} WHERE decision_id IN "
                          f"(SELECT decision_id FROM {table}_outcomes) ORDER BY ts"))


def _by_time(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: float(r.get("ts") or 0.0))


def _stream(logger: Any) -> _Reader:
    """Kafka and S3 logs carry decisions and outcomes in one stream: read it once, split it."""
    read = functools.cache(lambda: list(logger.read_records()))

    def decisions() -> list[dict[str, Any]]:  # in time order: Kafka orders by partition only
        return _by_time(r for r in read() if "decision_id" in r and r.get("kind") != "outcome")

    return lambda: [r for r in read() if r.get("kind") == "outcome"], decisions


def _reader(source: Any) -> _Reader:
    """The log's two record streams; a log that cannot be opened or read (a missing file, a broker
    or bucket that does not answer) is an :class:`~dmr.errors.InputError` saying which and why."""
    where = str(source) if isinstance(source, (str, Path)) else repr(source)

    @contextlib.contextmanager
    def unreadable() -> Iterator[None]:
        try:
            yield
        except DmrError:
            raise
        except Exception as exc:
            raise InputError(f"cannot read the decision log {where}: {exc or type(exc).__name__}") from exc

    def guard(read: Callable[[], Iterable[dict[str, Any]]]) -> Callable[[], Iterator[dict[str, Any]]]:
        def guarded() -> Iterator[dict[str, Any]]:
            with unreadable():
                yield from read()
        return guarded

    with unreadable():
        outcomes, decisions = _open(source)
    return guard(outcomes), guard(decisions)


def _open(source: Any) -> _Reader:
    from dmr.store.logger import BufferedLogger

    if isinstance(source, str) and (logger := log_from_url(source)) is not None:
        source = logger
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        return _jsonl(path) if path.suffix.lower() in (".jsonl", ".ndjson") else _sqlite(path, "decisions")
    if isinstance(source, BufferedLogger):
        source.flush()  # what it still buffers belongs in the rows too
        kind = source.backend
        if kind == "sqlite":
            return _sqlite(source.path, source.table)  # type: ignore[attr-defined]
        if kind == "jsonl":
            return _jsonl(source.path)  # type: ignore[attr-defined]
        if kind == "postgres":
            return _postgres(source.dsn, source.table)  # type: ignore[attr-defined]
        if callable(getattr(source, "read_records", None)):
            return _stream(source)
        raise InputError(f"cannot read outcomes back from a {kind} log: consume its records of kind "
                         "'outcome' from the stream, or log to SQLite, JSONL, PostgreSQL, Kafka or S3")
    raise InputError("expected a SQLite or JSONL log path, a postgresql://, s3:// or kafka:// URL or a decision "
                     f"logger, not {type(source).__name__}")


def read_outcomes(source: Any) -> list[dict[str, Any]]:
    """Every outcome record of a log (a SQLite or JSONL path, an ``s3://`` or ``kafka://`` URL, or
    a SQLite, JSONL, PostgreSQL, Kafka or S3 logger, which is flushed first), in the order they
    were recorded."""
    outcomes, _ = _reader(source)
    return _by_time(outcomes())


def _answer(record: dict[str, Any], decision: dict[str, Any], key: str) -> str | None:
    """The tier (or model) whose answer an outcome scores: the decision's own unless the outcome
    names another; None when it names only the other kind and that one is not the decision's."""
    tier, model = record.get("tier"), record.get("model")
    if tier is None and model is None:
        return decision.get("tier") if key == "tier" else decision.get("model_name")
    if key == "tier":
        return tier if tier is not None else (decision.get("tier") if model == decision.get("model_name") else None)
    return model if model is not None else (decision.get("model_name") if tier == decision.get("tier") else None)


def training_rows(source: Any, *, key: str = "tier") -> Iterator[dict[str, Any]]:
    """One outcome-file row per decision that has feedback, oldest decision first (see the module
    docstring for the format, and for which outcome wins)."""
    if key not in ("tier", "model"):
        raise InputError(f"key must be 'tier' or 'model', not {key!r}")
    outcomes, decisions = _reader(source)
    by_decision: dict[str, list[dict[str, Any]]] = {}
    for record in _by_time(outcomes()):
        by_decision.setdefault(str(record.get("decision_id")), []).append(record)
    seen: set[str] = set()
    foreign = unusable = 0
    for decision in decisions():
        decision_id = str(decision.get("decision_id"))
        feedback = by_decision.get(decision_id)
        if feedback is None or decision_id in seen:  # a retried batch may repeat a line
            continue
        seen.add(decision_id)
        scores: dict[str, float] = {}
        for record in feedback:
            if record.get("tenant") is not None and record["tenant"] != decision.get("tenant"):
                foreign += 1
                continue
            answer = _answer(record, decision, key)
            if answer is None:
                continue
            # A record this version did not write (an edited sidecar, another producer on the stream)
            # may hold anything: one bad record is left out, not the whole log.
            if not (isinstance(answer, str) and answer.strip() and finite_score(record.get("score"))):
                unusable += 1
                continue
            scores[answer] = float(record["score"])  # later records overwrite earlier ones
        task = decision.get("task")
        if scores and isinstance(task, str) and task.strip():
            yield {"id": decision_id, "prompt": task, "outcomes": scores,
                   "task_type": decision.get("task_type"), "complexity": decision.get("complexity")}
    if unusable:
        log.warning("dmr: %d outcome record(s) hold no finite score or no tier/model name (not written by "
                    "record_outcome, or edited); they were left out of the training rows", unusable)
    if foreign:
        log.warning("dmr: %d outcome record(s) were sent for another tenant than the decision they rate; they "
                    "were left out of the training rows", foreign)
    orphans = sum(len(v) for k, v in by_decision.items() if k not in seen)
    if orphans:
        log.warning("dmr: %d outcome record(s) name decisions that are not in the log (not written yet, logged "
                    "elsewhere, or a wrong id); they were left out of the training rows", orphans)
