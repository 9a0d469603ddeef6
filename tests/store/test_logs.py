"""Decision logs: what a record holds, the buffered base (bounded, retried, drops counted), SQLite,
JSONL, and PostgreSQL killed and restarted mid-run."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time

import pytest

from dmr import Router
from dmr.store import JSONLLogger, PostgresLogger, SQLiteLogger, default_log_path
from dmr.store.sqlite import read_gaps, read_records

TASKS = ["What is 2+2?", "Design a CQRS architecture for a bank", "Translate 'hello' into German",
         "Write a Python function to merge two sorted lists", "Hi!"]


def rows(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM decisions").fetchone()[0]


def test_sqlite_log_records_trace_latency_fingerprints_cost_and_tenant(tmp_path):
    path = tmp_path / "log.sqlite3"
    with Router(decision_logger=SQLiteLogger(path)) as router:
        decisions = [router.classify(task) for task in TASKS]
        tenant = router.classify("Summarise this memo", tenant_config={"tenant_id": "acme", "max_tier": "low"})
    records = {r["decision_id"]: r for r in read_records(path)}
    assert set(records) == {d.decision_id for d in [*decisions, tenant]}
    first = records[decisions[1].decision_id]
    assert first["tier"] == str(decisions[1].tier) and first["layer"] == decisions[1].layer
    assert first["trace"] and set(first["layer_latency_ms"]) == {s.layer for s in decisions[1].trace}
    assert first["config_fingerprint"] and first["registry_fingerprint"] == router.registry.fingerprint
    assert first["estimated_cost_usd"] == decisions[1].estimated_cost_usd
    assert first["high_tier_cost_usd"] >= first["estimated_cost_usd"]
    assert first["task"] == TASKS[1] and first["pii_scrubbed"] is False
    assert records[tenant.decision_id]["tenant"] == "acme"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert router.decision_logger.stats() == {"backend": "sqlite", "written": 6, "buffered": 0, "dropped": 0,
                                              "errors": 0, "last_error": None}


def test_cache_hits_are_logged_as_hits(tmp_path):
    with Router(cache_enabled=True, decision_logger=SQLiteLogger(tmp_path / "l.sqlite3")) as router:
        router.classify("Hello")
        router.classify("Hello")
    cached = [r["cached"] for r in read_records(tmp_path / "l.sqlite3")]
    assert cached == [False, True]


def test_named_loggers_sqlite_default_path_and_jsonl_by_suffix(tmp_path):
    with Router(decision_logger="sqlite") as router:
        router.classify("Hello")
    assert isinstance(router.decision_logger, SQLiteLogger) and router.decision_logger.path == default_log_path()
    assert rows(default_log_path()) == 1
    with Router(decision_logger=str(tmp_path / "d.jsonl")) as router:
        router.classify("Hello")
    assert isinstance(router.decision_logger, JSONLLogger)
    [line] = (tmp_path / "d.jsonl").read_text().splitlines()
    assert json.loads(line)["task"] == "Hello"
    (tmp_path / "dmr.yaml").write_text(f"decision_logger:\n  type: jsonl\n  path: {tmp_path / 'y.jsonl'}\n")
    with Router.from_yaml(tmp_path / "dmr.yaml") as router:
        router.classify("Hello")
    assert len((tmp_path / "y.jsonl").read_text().splitlines()) == 1


def test_pii_is_scrubbed_before_logging_and_strict_adds_custom_patterns(tmp_path):
    task = "Email jane.doe@example.com about ticket ACME-12345"
    plain = tmp_path / "plain.jsonl"
    with Router(decision_logger=JSONLLogger(plain), extra_pii_patterns={"ticket": r"ACME-\d+"}) as router:
        router.classify(task)
    assert json.loads(plain.read_text())["task"] == task
    scrubbed = tmp_path / "scrubbed.jsonl"
    with Router(decision_logger=JSONLLogger(scrubbed), pii_scrub=True,
                extra_pii_patterns={"ticket": r"ACME-\d+"}) as router:
        router.classify(task)
    record = json.loads(scrubbed.read_text())
    assert record["task"] == "Email [EMAIL] about ticket ACME-12345" and record["pii_scrubbed"] is True
    strict = tmp_path / "strict.jsonl"
    with Router(decision_logger=JSONLLogger(strict), pii_scrub_strict=True,
                extra_pii_patterns={"ticket": r"ACME-\d+"}) as router:
        router.classify(task)
    assert json.loads(strict.read_text())["task"] == "Email [EMAIL] about ticket [TICKET]"
    assert "jane" not in strict.read_text()


def test_a_failing_backend_never_fails_a_decision_drops_are_counted_and_recorded(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the log's directory should be")
    path = blocker / "log.sqlite3"
    logger = SQLiteLogger(path, buffer_size=5, retry_initial_s=0.01, retry_max_s=0.05)
    router = Router(decision_logger=logger)
    with caplog.at_level(logging.WARNING, logger="dmr.store"):
        decisions = [router.classify(f"task number {i}") for i in range(12)]
        assert logger.flush(timeout=0.5) is False
    assert len(decisions) == 12
    stats = logger.stats()
    assert stats["dropped"] == 7 and stats["buffered"] == 5 and stats["errors"] >= 1 and stats["written"] == 0
    assert "NotADirectoryError" in stats["last_error"] or "FileExistsError" in stats["last_error"]
    assert any("dropped" in r.message for r in caplog.records)
    assert any("cannot write" in r.message for r in caplog.records)
    blocker.unlink()  # the fault goes away: the buffered records arrive, the gap is recorded
    assert logger.flush(timeout=10)
    router.close()
    kept = [r["task"] for r in read_records(path)]
    assert kept == [f"task number {i}" for i in range(7, 12)]
    assert read_gaps(path) == 7
    assert logger.stats()["written"] == 5


def test_logging_after_close_is_counted_not_silent(tmp_path):
    logger = SQLiteLogger(tmp_path / "x.sqlite3")
    router = Router(decision_logger=logger)
    router.classify("Hello")
    router.close()
    router.classify("Hello again")
    assert logger.stats()["written"] == 1 and logger.stats()["dropped"] == 1


def test_a_plain_logger_object_gets_finished_records():
    got = []

    class ListLogger:
        def log(self, record):
            got.append(record)

    Router(decision_logger=ListLogger()).classify("Hello", tenant_config={"tenant_id": "t1"})
    assert got[0]["task"] == "Hello" and got[0]["tenant"] == "t1" and "trace" in got[0]


def test_a_logger_that_raises_does_not_fail_the_decision(caplog):
    class Broken:
        def log(self, record):
            raise OSError("disk on fire")

    with caplog.at_level(logging.WARNING, logger="dmr.store"):
        assert Router(decision_logger=Broken()).classify("Hello").tier
    assert "disk on fire" in caplog.text


def test_bad_logger_options_are_config_errors():
    from dmr.errors import ConfigError

    with pytest.raises(ConfigError):
        Router(decision_logger=object())
    with pytest.raises(ConfigError):
        Router(decision_logger={"type": "carrier-pigeon"})
    with pytest.raises(ConfigError):
        Router(decision_logger={"type": "jsonl", "nonsense": 1})


@pytest.mark.parametrize("spec, message", [
    ("kafka", "'kafka' needs its settings: a URL (postgresql://…"),
    ("postgres", "or a mapping {type: postgres, …} with the arguments of PostgresLogger"),
    ("webhook", "'webhook' needs its settings"),
    ("mysql://db/x", "a decision log URL starts with postgresql://, postgres://, kafka://, s3://, https://"),
    ("http://example.com/hook", "a decision log URL starts with"),
    ("kafka://127.0.0.1:9092", "names its topic"),
])
def test_a_backend_named_without_its_settings_or_an_unknown_url_is_a_config_error(tmp_path, monkeypatch, spec,
                                                                                  message):
    # These once gave a raw TypeError, or a SQLite file under ./mysql:/db/x that logged "fine".
    from dmr.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        Router(decision_logger=spec)
    assert message in str(caught.value) and caught.value.problems[0][0] == "decision_logger"
    assert list(tmp_path.iterdir()) == []


def test_a_url_names_its_backend():
    from dmr.store import KafkaLogger, S3Logger, WebhookLogger

    cases = {"postgresql://u@127.0.0.1:1/db": (PostgresLogger, {"dsn": "postgresql://u@127.0.0.1:1/db"}),
             "kafka://127.0.0.1:1,127.0.0.1:2/topic": (KafkaLogger, {"brokers": "127.0.0.1:1,127.0.0.1:2",
                                                                     "topic": "topic"}),
             "s3://bucket/team/log/": (S3Logger, {"bucket": "bucket", "prefix": "team/log/"}),
             "https://hooks.example.com/dmr": (WebhookLogger, {"url": "https://hooks.example.com/dmr"})}
    for url, (kind, attrs) in cases.items():
        router = Router(decision_logger=url)
        logger = router.decision_logger
        assert isinstance(logger, kind), url
        assert {name: getattr(logger, name) for name in attrs} == attrs
        logger.close(timeout=0.1)  # nothing was logged: nothing reaches the network


def test_many_threads_log_without_loss(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "t.sqlite3"
    with Router(decision_logger=SQLiteLogger(path, batch_size=7)) as router:
        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(lambda i: router.classify(f"thread task {i}").decision_id, range(200)))
    assert {r["decision_id"] for r in read_records(path)} == set(ids)


# -- PostgreSQL ----------------------------------------------------------------------------------

@pytest.mark.service("postgres")
def test_postgres_log_survives_the_server_being_killed_and_restarted(postgres_server):
    import psycopg

    logger = PostgresLogger(postgres_server.dsn, table="decisions_kill_test", retry_initial_s=0.05, retry_max_s=0.5)
    router = Router(decision_logger=logger)
    before = [router.classify(f"before outage {i}").decision_id for i in range(20)]
    assert logger.flush(timeout=30)
    postgres_server.stop()
    try:
        during = [router.classify(f"during outage {i}").decision_id for i in range(30)]
        assert logger.flush(timeout=1) is False
        stats = logger.stats()
        assert stats["buffered"] == 30 and stats["errors"] >= 1 and stats["dropped"] == 0
    finally:
        postgres_server.start()
    assert logger.flush(timeout=60)
    router.close()
    with psycopg.connect(postgres_server.dsn) as conn:
        stored = {row[0] for row in conn.execute("SELECT decision_id FROM decisions_kill_test")}
        record = conn.execute("SELECT record FROM decisions_kill_test WHERE decision_id = %s", (during[0],)).fetchone()[0]
    assert stored == set(before) | set(during)
    assert record["task"] == "during outage 0" and record["trace"]
    assert logger.stats()["written"] == 50 and logger.stats()["dropped"] == 0


@pytest.mark.service("postgres")
def test_postgres_retry_of_a_written_batch_does_not_duplicate(postgres_server):
    import psycopg

    logger = PostgresLogger(postgres_server.dsn, table="decisions_dup_test")
    record = {"decision_id": "dup-1", "ts": 1.0, "tier": "low", "trace": []}
    logger.write_batch([record])
    logger.write_batch([record])
    logger.write_gap(3)
    logger.close()
    with psycopg.connect(postgres_server.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM decisions_dup_test").fetchone()[0] == 1
        assert conn.execute("SELECT sum(dropped) FROM decisions_dup_test_gaps").fetchone()[0] == 3


def test_one_logger_shared_by_two_routers_records_each_routers_own_fingerprint(tmp_path):
    logger = JSONLLogger(tmp_path / "shared.jsonl")
    plain = Router(decision_logger=logger)
    scrubbing = Router(decision_logger=logger, pii_scrub=True, escalation_threshold=0.6)
    plain.classify("write to bob@example.com")
    scrubbing.classify("write to bob@example.com")
    logger.close()
    first, second = [json.loads(line) for line in (tmp_path / "shared.jsonl").read_text().splitlines()]
    assert first["task"] == "write to bob@example.com" and second["task"] == "write to [EMAIL]"
    assert first["config_fingerprint"] != second["config_fingerprint"]


def test_a_lone_record_is_written_without_a_flush_call(tmp_path):
    logger = SQLiteLogger(tmp_path / "lone.sqlite3", flush_interval_s=0.05)
    router = Router(decision_logger=logger)
    router.classify("first")
    assert logger.flush(timeout=10)
    router.classify("second, long after the first batch")  # the flusher is idle now
    deadline = time.monotonic() + 30
    while logger.stats()["written"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert logger.stats()["written"] == 2
    router.close()


def test_a_record_with_a_lone_surrogate_is_written_with_it_replaced_and_holds_up_nothing(tmp_path):
    # A str can hold a lone surrogate that no backend can encode; such a record once failed its
    # batch for ever, and every record queued behind it was lost at close.
    from dmr.store.outcomes import outcome_record
    from dmr.store.sqlite import read_outcomes

    path = tmp_path / "log.sqlite3"
    logger = SQLiteLogger(path, retry_initial_s=0.01, retry_max_s=0.05)
    with Router(decision_logger=logger) as router:
        decision = router.classify("What is 2+2?")
        poisoned = {**outcome_record(decision.decision_id, 0.5), "notes": "bad \ud800 note"}
        logger.log(poisoned)
        router.classify("Hi!")
        router.record_outcome(decision.decision_id, 0.75, notes="also \udfff bad")
    assert rows(path) == 2
    notes = sorted(o["notes"] for o in read_outcomes(path))
    assert notes == ["also \ufffd bad", "bad \ufffd note"]
    assert logger.stats()["dropped"] == 0


def test_a_jsonl_log_keeps_a_record_with_a_lone_surrogate(tmp_path):
    path = tmp_path / "log.jsonl"
    logger = JSONLLogger(path)
    logger.log({"kind": "note", "text": "x\ud800"})
    logger.log({"kind": "note", "text": "fine"})
    logger.close()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["text"] for line in lines if line.get("kind") == "note"] == ["x\ufffd", "fine"]


def test_flush_waits_for_records_that_are_still_being_built(tmp_path):
    # The flusher takes records off the queue, then builds them outside the lock: a flush() that
    # came in between found nothing queued and nothing in flight, and returned before the write.
    started, release = threading.Event(), threading.Event()

    def slow_record() -> dict:
        started.set()
        release.wait(10)
        return {"decision_id": "d-1", "task": "hi"}

    log = JSONLLogger(str(tmp_path / "log.jsonl"), flush_interval_s=0.0)
    try:
        log.log(slow_record)
        assert started.wait(10)  # the flusher holds the record now
        done: list[bool] = []
        waiter = threading.Thread(target=lambda: done.append(log.flush(timeout=10)))
        waiter.start()
        waiter.join(0.3)
        assert done == []  # still waiting: the record is built, not written
        release.set()
        waiter.join(10)
        assert done == [True]
        lines = (tmp_path / "log.jsonl").read_text().splitlines()
        assert [json.loads(line)["decision_id"] for line in lines] == ["d-1"]
    finally:
        release.set()
        log.close()


@pytest.mark.service("postgres")
def test_postgres_cleans_a_nul_and_drops_a_refused_value_without_holding_up_the_log(postgres_server):
    # PostgreSQL cannot store a NUL in text or jsonb; such a record once failed its batch for ever,
    # and every decision and outcome behind it waited until close() dropped them all.
    import psycopg

    from dmr.store.sqlite import COLUMNS

    logger = PostgresLogger(postgres_server.dsn, table="decisions_refused_test", retry_initial_s=0.01,
                            retry_max_s=0.05)
    with Router(decision_logger=logger) as router:
        first = router.classify("hello\x00world")
        router.record_outcome(first.decision_id, 1.0, notes="a\x00b")
        later = [router.classify(f"after the NUL {i}").decision_id for i in range(5)]
        assert logger.flush(timeout=30)
        # A value no cleaning makes storable (a latency too large for double precision is fine in
        # JSON, not in the column): that record alone is dropped, and counted.
        assert dict(COLUMNS)["latency_ms"]
        logger.log({"decision_id": "too-big", "ts": 1.0, "tier": "low", "latency_ms": 10 ** 400, "trace": []})
        logger.log({"decision_id": "fine", "ts": 2.0, "tier": "low", "trace": []})
        assert logger.flush(timeout=30)
    with psycopg.connect(postgres_server.dsn) as conn:
        stored = {row[0] for row in conn.execute("SELECT decision_id FROM decisions_refused_test")}
        task = conn.execute("SELECT record->>'task' FROM decisions_refused_test WHERE decision_id = %s",
                            (first.decision_id,)).fetchone()[0]
        notes = [row[0] for row in conn.execute("SELECT record->>'notes' FROM decisions_refused_test_outcomes")]
    assert stored == {first.decision_id, *later, "fine"}
    assert task == "hello\ufffdworld" and notes == ["a\ufffdb"]
    stats = logger.stats()
    assert stats["dropped"] == 1 and "refused 1 record(s)" in stats["last_error"]


def test_a_layer3_head_replaced_at_the_same_path_changes_the_fingerprint(tmp_path):
    # The cache is keyed by the fingerprint: a head retrained in place must not get the old head's
    # cached decisions.
    import os
    import shutil

    from dmr.layers.embedding import DEFAULT_HEAD

    head = tmp_path / "head.npz"
    shutil.copy(DEFAULT_HEAD, head)
    shutil.copy(str(DEFAULT_HEAD).replace(".npz", ".json"), tmp_path / "head.json")
    before = Router(layer3_head=str(head), cache_backend="memory")._stores.config_fingerprint
    assert Router(layer3_head=str(head), cache_backend="memory")._stores.config_fingerprint == before
    stat = head.stat()
    os.utime(head, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert Router(layer3_head=str(head), cache_backend="memory")._stores.config_fingerprint != before
