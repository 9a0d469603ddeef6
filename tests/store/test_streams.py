"""Decision logs that leave the process: Kafka (a real Kafka-protocol broker), S3 (moto_server)
and an HTTPS webhook (a local TLS server). Each is stopped mid-run and started again: decisions
go on, and the records buffered meanwhile arrive once the service is back."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import logging
import ssl
import threading
import time
import uuid

import pytest

from dmr import Router
from dmr.errors import ConfigError
from dmr.store import KafkaLogger, KafkaLoggerBackend, S3Logger, WebhookLogger


def consume(bootstrap, topic, want, timeout=60.0):
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                         "logger": __import__("logging").getLogger("test.kafka")})
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < want and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                got.append(json.loads(message.value()))
    finally:
        consumer.close()
    return got


@pytest.mark.service("kafka")
def test_kafka_log_streams_records_and_survives_a_broker_restart(kafka_server):
    topic = f"dmr-decisions-{uuid.uuid4().hex[:8]}"
    logger = KafkaLoggerBackend(brokers=[kafka_server.bootstrap], topic=topic, delivery_timeout_s=1.0,
                                retry_initial_s=0.05, retry_max_s=0.5, buffer_size=6,
                                flush_interval_s=2.0)
    assert isinstance(logger, KafkaLogger)
    router = Router(decision_logger=logger)
    first = [router.classify(f"first wave {i}").decision_id for i in range(5)]
    assert logger.flush(timeout=30)
    records = consume(kafka_server.bootstrap, topic, 5)
    # The auto-created topic may have several partitions: order holds per key, not across the topic.
    assert sorted(r["decision_id"] for r in records) == first and records[0]["trace"]

    kafka_server.stop()
    try:
        during = [router.classify(f"during outage {i}").decision_id for i in range(8)]
        assert logger.flush(timeout=1.5) is False
        stats = logger.stats()
        assert stats["errors"] >= 1 and stats["buffered"] == 6 and stats["dropped"] == 2
    finally:
        kafka_server.start()  # Tansu keeps data in memory: the restarted broker starts empty
    assert logger.flush(timeout=60)
    router.close()
    arrived = consume(kafka_server.bootstrap, topic, 7)
    # The oldest two did not fit in the buffer: they are counted, and the log itself says so.
    assert sorted(r["decision_id"] for r in arrived if "decision_id" in r) == during[2:]
    assert [r["count"] for r in arrived if r.get("event") == "records_dropped"] == [2]
    assert logger.stats()["written"] == 11 and logger.stats()["dropped"] == 2


@pytest.mark.service("kafka")
def test_a_kafka_message_over_the_size_limit_is_dropped_and_holds_up_nothing(kafka_server):
    # One record over the producer's message.max.bytes once failed its batch for ever: the records
    # behind it never arrived and the ones before it were sent again on every retry.
    topic = f"dmr-refused-{uuid.uuid4().hex[:8]}"
    logger = KafkaLogger(brokers=[kafka_server.bootstrap], topic=topic, delivery_timeout_s=5.0,
                         retry_initial_s=0.05, retry_max_s=0.2, producer_config={"message.max.bytes": 100_000})
    with Router(decision_logger=logger) as router:
        before = [router.classify(f"before the big one {i}").decision_id for i in range(3)]
        big = router.classify("and a note that is far too long")
        router.record_outcome(big.decision_id, 1.0, notes="x" * 200_000)
        after = [router.classify(f"after the big one {i}").decision_id for i in range(3)]
        assert logger.flush(timeout=60)
    arrived = consume(kafka_server.bootstrap, topic, 8, timeout=30)
    decisions = [r["decision_id"] for r in arrived if r.get("kind") != "outcome" and "decision_id" in r]
    assert sorted(decisions) == sorted([*before, big.decision_id, *after])  # each once
    assert not [r for r in arrived if r.get("kind") == "outcome"]
    assert [r["count"] for r in arrived if r.get("event") == "records_dropped"] == [1]
    stats = logger.stats()
    assert stats["dropped"] == 1 and stats["written"] == 7 and "MSG_SIZE_TOO_LARGE" in stats["last_error"]


def s3_client(s3_server):
    import boto3

    return boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def s3_records(client, bucket, prefix):
    out = []
    for item in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
        out.append([json.loads(line) for line in body.splitlines()])
    return out


@pytest.mark.service("s3")
def test_s3_log_writes_batched_objects_and_survives_a_restart(s3_server):
    client = s3_client(s3_server)
    bucket = f"audit-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    logger = S3Logger(bucket, prefix="dmr/", endpoint_url=s3_server.endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test", batch_size=100,
                      retry_initial_s=0.05, retry_max_s=0.5)
    router = Router(decision_logger=logger)
    first = [router.classify(f"archived {i}").decision_id for i in range(6)]
    assert logger.flush(timeout=30)
    [batch] = s3_records(client, bucket, "dmr/")
    assert [r["decision_id"] for r in batch] == first  # one object holds the whole batch

    s3_server.stop()
    try:
        during = [router.classify(f"while S3 is down {i}").decision_id for i in range(4)]
        assert logger.flush(timeout=1) is False
        assert logger.stats()["buffered"] == 4 and logger.stats()["errors"] >= 1
    finally:
        s3_server.start()
    client = s3_client(s3_server)
    client.create_bucket(Bucket=bucket)  # moto keeps buckets in memory; a real bucket would still be there
    assert logger.flush(timeout=60)
    router.close()
    arrived = [r["decision_id"] for batch in s3_records(client, bucket, "dmr/") for r in batch]
    assert arrived == during
    assert logger.stats()["written"] == 10 and logger.stats()["dropped"] == 0


# -- webhook ---------------------------------------------------------------------------------------

def self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Hook:
    """A small HTTPS server that stores what is posted to it and can be told to fail."""

    def __init__(self, cert, key):
        self.posts = []
        self.fail_next = 0
        self.cert, self.key = cert, key
        self.port = 0
        self.server = None

    def start(self):
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if hook.fail_next:
                    hook.fail_next -= 1
                    self.send_response(503)
                else:
                    hook.posts.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    @property
    def records(self):
        return [r for _, body in self.posts for r in body["records"]]


@pytest.fixture
def hook(tmp_path):
    cert, key = self_signed(tmp_path)
    server = Hook(cert, key)
    server.start()
    yield server
    server.stop()


def test_webhook_posts_batches_over_https_and_retries_with_backoff(hook):
    logger = WebhookLogger(f"https://127.0.0.1:{hook.port}/dmr", headers={"Authorization": "Bearer t0k"},
                           verify=str(hook.cert), retry_initial_s=0.01, retry_max_s=0.05)
    hook.fail_next = 3
    with Router(decision_logger=logger) as router:
        ids = [router.classify(f"hooked {i}").decision_id for i in range(5)]
        assert logger.flush(timeout=30)
    assert [r["decision_id"] for r in hook.records] == ids
    assert hook.posts[0][0]["Authorization"] == "Bearer t0k"
    assert logger.stats()["errors"] == 3 and logger.stats()["written"] == 5


def test_webhook_down_then_back_delivers_the_buffered_records(hook):
    logger = WebhookLogger(f"https://127.0.0.1:{hook.port}/dmr", verify=str(hook.cert), timeout_s=2,
                           retry_initial_s=0.05, retry_max_s=0.2)
    router = Router(decision_logger=logger)
    hook.stop()
    ids = [router.classify(f"queued {i}").decision_id for i in range(4)]
    assert logger.flush(timeout=0.5) is False and logger.stats()["errors"] >= 1
    hook.start()  # same port
    assert logger.flush(timeout=30)
    router.close()
    assert [r["decision_id"] for r in hook.records] == ids


def test_webhook_refuses_plain_http_and_unverified_tls(hook):
    with pytest.raises(ConfigError):
        WebhookLogger("http://127.0.0.1:9/hook")
    WebhookLogger("http://127.0.0.1:9/hook", allow_http=True).close()
    logger = WebhookLogger(f"https://127.0.0.1:{hook.port}/dmr", retry_initial_s=0.01, retry_max_s=0.05)
    logger.log({"decision_id": "x", "ts": 1.0})
    assert logger.flush(timeout=0.5) is False
    assert "CERTIFICATE_VERIFY_FAILED" in logger.stats()["last_error"] or "certificate" in logger.stats()["last_error"]
    logger.close(timeout=0.1)
    assert hook.posts == [] and logger.stats()["dropped"] == 1


def test_a_broker_that_is_down_is_reported_once_not_at_every_reconnect(caplog):
    # librdkafka logs each failed connection attempt, about ten a second: a router whose broker was
    # down once flooded stderr with them. Nothing listens on port 1.
    logger = KafkaLogger(brokers=["127.0.0.1:1"], topic="nowhere", delivery_timeout_s=1.0, retry_initial_s=0.1)
    with caplog.at_level(logging.DEBUG, logger="dmr.store.kafka"):
        logger.log({"decision_id": "d1", "ts": 1.0})
        assert logger.flush(timeout=3.0) is False
        logger.close(timeout=0.5)
    fails = [r for r in caplog.records if r.name == "dmr.store.kafka" and r.getMessage().startswith("FAIL")]
    assert len(fails) == 1, [r.getMessage() for r in fails]
    assert logger.stats()["dropped"] == 1
