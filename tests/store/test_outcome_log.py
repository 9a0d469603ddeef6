"""Feedback on decisions: Router.record_outcome writes beside the decision log (SQLite table, JSONL
sidecar, PostgreSQL table, or the stream), and training_rows turns a log into outcome-file rows:
from files, a real PostgreSQL, a real Kafka-protocol broker and an S3 server (moto)."""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid

import pytest

from dmr import Router
from dmr.errors import ConfigError, DmrError, InputError
from dmr.store import JSONLLogger, PostgresLogger, SQLiteLogger
from dmr.store.outcomes import outcome_record, read_outcomes, training_rows
from dmr.store.stats import load_records

TASKS = ["What is 2+2?", "Design a CQRS architecture for a bank", "Translate 'hello' into German"]


def routed(logger, tasks=TASKS, **options):
    """A Router with ``logger`` and the decisions it made on ``tasks``."""
    router = Router(decision_logger=logger, **options)
    return router, [router.classify(task) for task in tasks]


def by_id(rows):
    return {row["id"]: row for row in rows}


# -- SQLite ------------------------------------------------------------------------------------

def test_sqlite_outcomes_become_training_rows_and_the_latest_wins(tmp_path):
    path = tmp_path / "log.sqlite3"
    router, (easy, hard, translate) = routed(SQLiteLogger(path))
    with router:
        router.record_outcome(easy.decision_id, 0.2)
        router.record_outcome(easy.decision_id, 0.9, notes="re-scored by a reviewer")  # the latest wins
        router.record_outcome(hard.decision_id, 1.0)
        router.record_outcome(hard.decision_id, 0.4, tier="low")  # the same task also tried at low
    rows = by_id(training_rows(path))
    assert set(rows) == {easy.decision_id, hard.decision_id}  # no feedback on the translation: no row
    assert rows[easy.decision_id] == {"id": easy.decision_id, "prompt": "What is 2+2?",
                                      "outcomes": {str(easy.tier): 0.9}, "task_type": str(easy.task_type),
                                      "complexity": str(easy.complexity)}
    assert rows[hard.decision_id]["outcomes"] == {str(hard.tier): 1.0, "low": 0.4}
    assert list(rows) == [easy.decision_id, hard.decision_id]  # oldest decision first
    assert translate.decision_id not in rows


def test_sqlite_outcomes_live_in_a_table_beside_the_decisions(tmp_path):
    path = tmp_path / "log.sqlite3"
    router, (easy, *_) = routed(SQLiteLogger(path))
    with router:
        router.record_outcome(easy.decision_id, 1, model="gpt-4o-mini", notes="fine")
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT decision_id, score, model, tier, notes FROM decisions_outcomes").fetchone()
    assert row == (easy.decision_id, 1.0, "gpt-4o-mini", None, "fine")
    [stored] = read_outcomes(path)
    assert stored["kind"] == "outcome" and stored["score"] == 1.0 and len(stored["outcome_id"]) == 24
    assert load_records(path)[0] and all("score" not in r for r in load_records(path)[0])


def test_a_logger_object_is_flushed_and_read_with_its_own_table(tmp_path):
    logger = SQLiteLogger(tmp_path / "log.sqlite3", table="routing", flush_interval_s=30)
    router, (easy, *_) = routed(logger)
    router.record_outcome(easy, 0.75)  # a Decision may stand for its id
    [row] = training_rows(router.decision_logger)  # flushed first, though the interval is long
    assert row["id"] == easy.decision_id and row["outcomes"] == {str(easy.tier): 0.75}
    router.close()


def test_rows_can_be_keyed_by_the_model_that_answered(tmp_path):
    path = tmp_path / "log.sqlite3"
    router, (easy, hard, _) = routed(SQLiteLogger(path), provider="openai")
    with router:
        router.record_outcome(easy.decision_id, 1.0)
        router.record_outcome(hard.decision_id, 0.5, model="my-finetune")
        router.record_outcome(hard.decision_id, 0.3, tier="low")  # names a tier only, not the decision's
    rows = by_id(training_rows(path, key="model"))
    assert rows[easy.decision_id]["outcomes"] == {easy.model_name: 1.0}
    assert rows[hard.decision_id]["outcomes"] == {"my-finetune": 0.5}
    by_tier = by_id(training_rows(path))
    assert by_tier[hard.decision_id]["outcomes"] == {"low": 0.3}  # a model not the decision's has no tier
    with pytest.raises(InputError, match="key"):
        list(training_rows(path, key="provider"))


def test_an_outcome_for_an_unknown_decision_is_stored_and_left_out_with_a_warning(tmp_path, caplog):
    path = tmp_path / "log.sqlite3"
    router, (easy, *_) = routed(SQLiteLogger(path))
    with router:
        router.record_outcome("not-a-decision", 1.0)
        router.record_outcome(easy.decision_id, 1.0)
    assert {o["decision_id"] for o in read_outcomes(path)} == {"not-a-decision", easy.decision_id}
    with caplog.at_level(logging.WARNING, logger="dmr.store"):
        assert [row["id"] for row in training_rows(path)] == [easy.decision_id]
    assert "1 outcome record(s) name decisions that are not in the log" in caplog.text


def test_an_outcome_sent_for_another_tenant_rates_nothing(tmp_path, caplog):
    path = tmp_path / "log.sqlite3"
    router = Router(decision_logger=SQLiteLogger(path))
    acme, lab = {"tenant_id": "acme", "max_tier": "medium"}, {"tenant_id": "lab"}
    with router:
        ours = router.classify(TASKS[0], tenant_config=acme)
        theirs = router.classify(TASKS[1], tenant_config=lab)
        router.record_outcome(ours.decision_id, 0.7, tenant_config=acme)
        router.record_outcome(ours.decision_id, 0.0, tenant_config=lab)  # later, but lab's: left out
        router.record_outcome(theirs.decision_id, 0.5)  # sent for no tenant: rates any decision
    assert [o["tenant"] for o in read_outcomes(path)] == ["acme", "lab", None]
    with caplog.at_level(logging.WARNING, logger="dmr.store"):
        rows = by_id(training_rows(path))
    assert rows[ours.decision_id]["outcomes"] == {str(ours.tier): 0.7}
    assert rows[theirs.decision_id]["outcomes"] == {str(theirs.tier): 0.5}
    assert "1 outcome record(s) were sent for another tenant" in caplog.text


def test_a_log_written_before_outcomes_existed_has_no_rows(tmp_path):
    path = tmp_path / "old.sqlite3"
    with Router(decision_logger=SQLiteLogger(path)) as router:
        router.classify("What is 2+2?")
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE decisions_outcomes")
    assert list(training_rows(path)) == [] and read_outcomes(path) == []
    with pytest.raises(InputError, match="cannot read the decision log .*absent.sqlite3: no decision log at"):
        list(training_rows(tmp_path / "absent.sqlite3"))
    with pytest.raises(InputError, match="absent.jsonl"):
        read_outcomes(tmp_path / "absent.jsonl")


def test_a_retried_batch_does_not_duplicate_outcomes(tmp_path):
    logger = SQLiteLogger(tmp_path / "log.sqlite3")
    record = outcome_record("d-1", 0.5)
    logger.write_batch([{"decision_id": "d-1", "ts": 1.0, "tier": "low", "task": "hi", "trace": []}, record])
    logger.write_batch([record])
    logger.close()
    assert len(read_outcomes(tmp_path / "log.sqlite3")) == 1
    assert [row["outcomes"] for row in training_rows(tmp_path / "log.sqlite3")] == [{"low": 0.5}]


def test_pii_scrubbing_applies_to_the_prompt_and_the_notes(tmp_path):
    path = tmp_path / "log.sqlite3"
    router, (decision,) = routed(SQLiteLogger(path), ["Email jane@example.com the Q3 summary"], pii_scrub=True)
    with router:
        router.record_outcome(decision.decision_id, 1.0, notes="jane@example.com liked it")
    [row] = training_rows(path)
    assert row["prompt"] == "Email [EMAIL] the Q3 summary"
    assert read_outcomes(path)[0]["notes"] == "[EMAIL] liked it"


# -- JSONL ----------------------------------------------------------------------------------------

def test_jsonl_outcomes_go_to_a_sidecar_and_become_training_rows(tmp_path):
    path = tmp_path / "decisions.jsonl"
    router, (easy, hard, _) = routed(JSONLLogger(path))
    with router:
        router.record_outcome(easy.decision_id, 0.0)
        router.record_outcome(easy.decision_id, 1.0)
        router.record_outcome(hard.decision_id, 0.5, tier="medium", notes="checked")
    sidecar = tmp_path / "decisions.outcomes.jsonl"
    assert [json.loads(line)["score"] for line in sidecar.read_text().splitlines()] == [0.0, 1.0, 0.5]
    assert all("kind" not in json.loads(line) for line in path.read_text().splitlines())
    assert len(load_records(path)[0]) == 3
    rows = by_id(training_rows(path))
    assert rows[easy.decision_id]["outcomes"] == {str(easy.tier): 1.0}
    assert rows[hard.decision_id] == {"id": hard.decision_id, "prompt": TASKS[1], "outcomes": {"medium": 0.5},
                                      "task_type": str(hard.task_type), "complexity": str(hard.complexity)}
    assert list(training_rows(JSONLLogger(path))) == list(training_rows(path))


def test_a_malformed_outcome_record_is_left_out_not_fatal(tmp_path, caplog):
    # A sidecar edited by hand (or a stream another producer writes to) may hold a record no
    # record_outcome wrote: that record is left out with a warning, the rest still train.
    path = tmp_path / "decisions.jsonl"
    router, (easy, hard, translate) = routed(JSONLLogger(path))
    with router:
        router.record_outcome(easy.decision_id, 1.0)
        router.record_outcome(hard.decision_id, 0.5)
    good = json.loads((tmp_path / "decisions.outcomes.jsonl").read_text().splitlines()[0])
    bad = [{**good, "score": "bad"}, {**good, "decision_id": hard.decision_id, "score": float("nan")},
           {**good, "decision_id": translate.decision_id, "score": [1]},
           {**good, "decision_id": translate.decision_id, "tier": 5}]
    with (tmp_path / "decisions.outcomes.jsonl").open("a") as sidecar:
        sidecar.writelines(json.dumps(record) + "\n" for record in bad)
    with caplog.at_level(logging.WARNING, logger="dmr.store"):
        rows = by_id(training_rows(path))
    assert {k: row["outcomes"] for k, row in rows.items()} == {easy.decision_id: {str(easy.tier): 1.0},
                                                               hard.decision_id: {str(hard.tier): 0.5}}
    assert "4 outcome record(s) hold no finite score or no tier/model name" in caplog.text


def test_jsonl_sidecar_failure_retries_only_the_outcomes(tmp_path):
    path = tmp_path / "decisions.jsonl"
    (tmp_path / "decisions.outcomes.jsonl").mkdir()  # the sidecar cannot be opened for now
    logger = JSONLLogger(path, retry_initial_s=0.02, retry_max_s=0.05)
    router, (easy, *_) = routed(logger, TASKS[:1])
    router.record_outcome(easy.decision_id, 1.0)
    assert logger.flush(timeout=0.5) is False and logger.stats()["errors"] >= 1
    (tmp_path / "decisions.outcomes.jsonl").rmdir()
    assert logger.flush(timeout=10)
    router.close()
    assert len(path.read_text().splitlines()) == 1  # the decision was written once
    assert [row["outcomes"] for row in training_rows(path)] == [{str(easy.tier): 1.0}]
    assert logger.stats()["written"] == 2 and logger.stats()["dropped"] == 0


# -- other loggers and errors ------------------------------------------------------------------------

class ListLogger:
    """A user's own decision logger: anything with log(record)."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def log(self, record: dict) -> None:
        self.records.append(record)


def test_a_plain_logger_receives_outcome_records_through_the_same_pipeline():
    logger = ListLogger()
    router, (easy, *_) = routed(logger, TASKS[:1])
    router.record_outcome(easy.decision_id, 0.5, tier="high")
    decision_record, outcome = logger.records
    assert decision_record["decision_id"] == easy.decision_id and "kind" not in decision_record
    assert {k: outcome[k] for k in ("kind", "decision_id", "score", "tier", "model")} == {
        "kind": "outcome", "decision_id": easy.decision_id, "score": 0.5, "tier": "high", "model": None}
    with pytest.raises(InputError, match="cannot read outcomes back from a webhook log"):
        from dmr.store import WebhookLogger

        list(training_rows(WebhookLogger("https://hooks.example.com/dmr")))


def test_without_a_decision_logger_record_outcome_says_how_to_enable_it():
    with pytest.raises(ConfigError, match=r"decision_logger=.*decisions\.sqlite3") as caught:
        Router().record_outcome("some-id", 1.0)
    assert caught.value.problems[0][0] == "decision_logger"


def test_record_outcome_after_close_is_an_error(tmp_path):
    router, (easy, *_) = routed(SQLiteLogger(tmp_path / "log.sqlite3"), TASKS[:1])
    router.close()
    with pytest.raises(DmrError, match="closed"):
        router.record_outcome(easy.decision_id, 1.0)


@pytest.mark.parametrize("args, kwargs, message", [
    (("d", float("nan")), {}, "finite number"),
    (("d", float("inf")), {}, "finite number"),
    (("d", "1.0"), {}, "finite number"),
    (("d", True), {}, "finite number"),
    (("d", 10 ** 400), {}, "finite number"),  # an int too large for a float: not an OverflowError
    (("", 1.0), {}, "non-empty string"),
    ((None, 1.0), {}, "non-empty string"),
    (("d", 1.0), {"tier": "gigantic"}, "tier"),
    (("d", 1.0), {"model": ""}, "model name"),
    (("d", 1.0), {"notes": 3}, "notes must be a string"),
])
def test_bad_outcomes_are_input_errors(tmp_path, args, kwargs, message):
    with Router(decision_logger=SQLiteLogger(tmp_path / "log.sqlite3")) as router:
        with pytest.raises(InputError, match=message):
            router.record_outcome(*args, **kwargs)


def test_numpy_scores_and_graded_scales_are_accepted():
    np = pytest.importorskip("numpy")
    assert outcome_record("d", np.float32(0.5))["score"] == 0.5
    assert outcome_record("d", 7)["score"] == 7.0  # e.g. a judge's 0-10 score; keep one scale per log


def test_training_rows_rejects_what_it_cannot_read():
    with pytest.raises(InputError, match="SQLite or JSONL log path, a postgresql://, s3:// or kafka:// URL"):
        list(training_rows(42))
    with pytest.raises(InputError, match="names its topic"):
        list(training_rows("kafka://127.0.0.1:9092"))
    with pytest.raises(InputError, match="expected s3://bucket/prefix/"):
        list(training_rows("s3://"))


# -- PostgreSQL ------------------------------------------------------------------------------------

@pytest.mark.service("postgres")
def test_postgres_outcomes_become_training_rows(postgres_server):
    import psycopg

    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS outcome_test_outcomes, outcome_test_gaps, outcome_test")
    logger = PostgresLogger(postgres_server.dsn, table="outcome_test")
    router, (easy, hard, _) = routed(logger)
    router.record_outcome(easy.decision_id, 0.1)
    router.record_outcome(easy.decision_id, 0.8)
    router.record_outcome(hard.decision_id, 1.0, tier="medium")
    rows = by_id(training_rows(logger))
    router.close()
    assert rows[easy.decision_id]["outcomes"] == {str(easy.tier): 0.8}
    assert rows[hard.decision_id]["outcomes"] == {"medium": 1.0}
    assert rows[hard.decision_id]["prompt"] == TASKS[1]
    assert [o["score"] for o in read_outcomes(logger)] == [0.1, 0.8, 1.0]


@pytest.mark.service("postgres")
def test_a_postgres_url_is_a_postgres_log_written_and_read_back(postgres_server, tmp_path, monkeypatch):
    # A URL once became a SQLite file under ./postgresql:/..., and reading the URL back said there
    # was no such file (or read a stray one).
    import psycopg

    url = postgres_server.dsn
    assert url.startswith("postgresql://")
    monkeypatch.chdir(tmp_path)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS dmr_decisions_outcomes, dmr_decisions_gaps, dmr_decisions")
    router, (easy, hard, _) = routed(url)
    assert isinstance(router.decision_logger, PostgresLogger)
    router.record_outcome(easy.decision_id, 0.4)
    router.record_outcome(hard.decision_id, 1.0, tier="high")
    router.close()
    rows = by_id(training_rows(url))
    assert rows[easy.decision_id]["outcomes"] == {str(easy.tier): 0.4}
    assert rows[hard.decision_id]["outcomes"] == {"high": 1.0}
    assert list(tmp_path.iterdir()) == []  # nothing written beside the working directory


# -- Kafka and S3: one stream of decisions and outcomes, read back --------------------------------

def record_feedback(router, easy, hard):
    router.record_outcome(easy.decision_id, 0.3)
    router.record_outcome(easy.decision_id, 0.7)  # the latest wins
    router.record_outcome(hard.decision_id, 1.0, tier="high")
    router.record_outcome(hard.decision_id, 0.2, tier="low")
    router.record_outcome("not-a-logged-decision", 0.5)


def check_rows(rows, easy, hard):
    assert list(rows) == [easy.decision_id, hard.decision_id]  # oldest first, translation unrated
    assert rows[easy.decision_id] == {"id": easy.decision_id, "prompt": TASKS[0], "outcomes": {str(easy.tier): 0.7},
                                      "task_type": str(easy.task_type), "complexity": str(easy.complexity)}
    assert rows[hard.decision_id]["outcomes"] == {"high": 1.0, "low": 0.2}


@pytest.mark.service("kafka")
def test_kafka_outcomes_become_training_rows(kafka_server, monkeypatch, caplog):
    from dmr.store import KafkaLogger

    topic = f"dmr-outcomes-{uuid.uuid4().hex[:8]}"
    logger = KafkaLogger([kafka_server.bootstrap], topic, delivery_timeout_s=5.0)
    router, (easy, hard, _) = routed(logger)
    record_feedback(router, easy, hard)
    with caplog.at_level(logging.WARNING, logger="dmr.store"):
        rows = by_id(training_rows(logger))  # flushes the logger first
    router.close()
    check_rows(rows, easy, hard)
    assert "1 outcome record(s) name decisions that are not in the log" in caplog.text
    # The same topic by URL, as `dmr train --from-log kafka://host:port/topic` names it.
    check_rows(by_id(training_rows(f"kafka://{kafka_server.bootstrap}/{topic}")), easy, hard)
    assert [o["score"] for o in read_outcomes(f"kafka://{kafka_server.bootstrap}/{topic}")] == [0.3, 0.7, 1.0, 0.2, 0.5]
    with pytest.raises(InputError, match="does not exist|cannot be read"):
        list(training_rows(f"kafka://{kafka_server.bootstrap}/no-such-topic-{uuid.uuid4().hex[:8]}"))
    with pytest.raises(InputError, match="cannot read the decision log .*Broker transport failure"):
        list(training_rows(KafkaLogger(["127.0.0.1:1"], topic, read_timeout_s=1.0)))  # nothing listens on port 1


@pytest.mark.service("s3")
def test_s3_outcomes_become_training_rows(s3_server, monkeypatch):
    import boto3

    from dmr.store import S3Logger

    credentials = {"region_name": "us-east-1", "aws_access_key_id": "test", "aws_secret_access_key": "test"}
    bucket = f"feedback-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server.endpoint, **credentials).create_bucket(Bucket=bucket)
    logger = S3Logger(bucket, prefix="team/log/", endpoint_url=s3_server.endpoint, batch_size=2, **credentials)
    router, (easy, hard, _) = routed(logger)  # batches of two: decisions and outcomes across objects
    record_feedback(router, easy, hard)
    rows = by_id(training_rows(logger))
    router.close()
    check_rows(rows, easy, hard)
    # Batch keys: an outcome rating a decision must not overwrite the object that holds it.
    assert sorted(r.get("kind", "decision") for r in logger.read_records()) == ["decision"] * 3 + ["outcome"] * 5
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "test"),
                        ("AWS_SECRET_ACCESS_KEY", "test")):
        monkeypatch.setenv(name, value)
    check_rows(by_id(training_rows(f"s3://{bucket}/team/log/")), easy, hard)
    assert list(training_rows(f"s3://{bucket}/other/prefix/")) == []  # nothing logged there
    # Two batches of two from the same second: decisions, then outcomes rating them. An outcome
    # carries its decision's id, so keys made of the first id, the count and the second collide.
    direct = S3Logger(bucket, prefix="direct/", endpoint_url=s3_server.endpoint, **credentials)
    decided = [{"decision_id": f"d{i}", "ts": 1700000000.0, "task": f"task {i}", "tier": "low"} for i in (1, 2)]
    direct.write_batch(decided)
    direct.write_batch([outcome_record(f"d{i}", 1.0, ts=1700000000.5) for i in (1, 2)])
    assert sorted(r.get("kind", "decision") for r in direct.read_records()) == ["decision"] * 2 + ["outcome"] * 2
    with pytest.raises(InputError, match="cannot read the decision log S3Logger.*Could not connect"):
        list(training_rows(S3Logger(bucket, endpoint_url="http://127.0.0.1:1", **credentials)))
