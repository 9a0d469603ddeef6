"""A decision log streamed to a Kafka topic (confluent-kafka), one JSON message per decision keyed
by its ``decision_id``.

Each batch is produced and then flushed until every message has its delivery report: delivered
messages leave the batch, failed ones (the broker down, the topic refused) stay and are retried by
the base class, and a message no retry can deliver (larger than the producer's or the broker's
limit) is refused: dropped and counted, so it does not hold up the ones behind it.
``message.timeout.ms`` bounds how long one attempt waits on a broker that is down.

:meth:`KafkaLogger.read_records` reads the topic back from its start to its current end, with a
consumer of its own that joins no group and commits nothing (``dmr train --from-log`` does).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Iterator

from dmr.errors import InputError, NotAvailableError
from dmr.store.logger import BufferedLogger, RecordsRefused

__all__ = ["KafkaLogger", "KafkaLoggerBackend"]


class _Throttle(logging.Filter):
    """librdkafka reports every failed connection attempt (about ten a second while a broker is
    down): pass the first message of each kind from each client (its first two words, e.g.
    ``FAIL [rdkafka#producer-3]``), then one every ``every_s`` seconds saying how many like it
    were held back."""

    def __init__(self, every_s: float = 30.0) -> None:
        super().__init__()
        self.every_s = every_s
        self._seen: dict[str, tuple[float, int]] = {}  # kind -> (when last passed, held back since)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        kind = " ".join(message.split(" ", 2)[:2])  # "FAIL [rdkafka#producer-3]": one client's kind
        now = time.monotonic()
        last, held = self._seen.get(kind, (float("-inf"), 0))
        if now - last < self.every_s:
            self._seen[kind] = (last, held + 1)
            return False
        self._seen[kind] = (now, 0)
        if held:
            record.msg, record.args = f"{message} ({held} more like it in the last {now - last:.0f} s)", ()
        return True


_LOG = logging.getLogger("dmr.store.kafka")
_LOG.addFilter(_Throttle())

# Errors that retrying the same message cannot cure: it is too large for the producer or the broker,
# or the broker finds it invalid. Such a message is dropped (and counted), not retried forever.
_REFUSED_CODES = frozenset(("MSG_SIZE_TOO_LARGE", "INVALID_MSG", "INVALID_MSG_SIZE", "INVALID_RECORD",
                            "RECORD_LIST_TOO_LARGE"))


def _refused(error: Any) -> bool:
    from confluent_kafka import KafkaError

    return any(error.code() == getattr(KafkaError, name, None) for name in _REFUSED_CODES)


class KafkaLogger(BufferedLogger):
    """``KafkaLogger(brokers=["127.0.0.1:9092"], topic="dmr-decisions")``; ``producer_config``
    adds or overrides librdkafka settings (security, compression…); the reader takes its
    ``security.*``, ``sasl.*`` and ``ssl.*`` settings too, unless ``consumer_config`` is given."""

    backend = "kafka"

    def __init__(self, brokers: list[str] | str, topic: str, *, producer_config: dict[str, Any] | None = None,
                 consumer_config: dict[str, Any] | None = None, delivery_timeout_s: float = 5.0,
                 read_timeout_s: float = 30.0, **options: Any) -> None:
        super().__init__(**options)
        self.brokers = brokers if isinstance(brokers, str) else ",".join(brokers)
        if not self.brokers or not topic:
            raise ValueError("KafkaLogger needs brokers and a topic")
        self.topic = topic
        self.delivery_timeout_s = delivery_timeout_s
        self.read_timeout_s = read_timeout_s
        self.producer_config = dict(producer_config or {})
        self.consumer_config = (dict(consumer_config) if consumer_config is not None else
                                {k: v for k, v in self.producer_config.items()
                                 if k.startswith(("security.", "sasl.", "ssl."))})
        self._producer: Any = None

    def _connect(self) -> Any:
        if self._producer is None:
            try:
                from confluent_kafka import Producer
            except ImportError:
                raise NotAvailableError(
                    "KafkaLogger needs confluent-kafka: pip install 'dynamic-model-router[kafka]'") from None
            config = {"bootstrap.servers": self.brokers, "message.timeout.ms": int(self.delivery_timeout_s * 1000),
                      "linger.ms": 5, "logger": _LOG, **self.producer_config}
            self._producer = Producer(config)
        return self._producer

    def write_batch(self, records: list[dict[str, Any]]) -> None:
        from confluent_kafka import KafkaException

        producer = self._connect()
        failed: dict[int, Any] = {}  # index -> KafkaError of a message that was not delivered

        def report(index: int) -> Any:
            def on_delivery(error: Any, message: Any) -> None:
                if error is not None:
                    failed[index] = error
            return on_delivery

        unsent = len(records)  # the records from here on were never handed to the producer
        for i, record in enumerate(records):
            value = json.dumps(record, ensure_ascii=False, default=str).encode("utf-8")
            try:
                while True:
                    try:
                        producer.produce(self.topic, value=value, key=str(record.get("decision_id", "")).encode(),
                                         on_delivery=report(i))
                        break
                    except BufferError:  # the producer's own queue is full: let it drain
                        producer.poll(0.1)
            except KafkaException as exc:  # refused before sending (over message.max.bytes, …)
                failed[i] = exc.args[0]
                if not _refused(exc.args[0]):
                    unsent = i + 1  # stop here; what was produced is flushed, the rest retried
                    break
        # Wait past the message timeout, so that every message has its report.
        left = producer.flush(self.delivery_timeout_s + 5.0)
        if left:
            raise RuntimeError(f"Kafka delivery unconfirmed for {left} message(s)")
        refused = [r for i, r in enumerate(records) if i in failed and _refused(failed[i])]
        # Keep only the records that did not arrive (or were never sent); the base class retries those.
        keep = [r for i, r in enumerate(records) if (i in failed and not _refused(failed[i])) or i >= unsent]
        reason = next((str(e) for e in failed.values()), "")
        records[:] = keep
        if refused:
            raise RecordsRefused(refused, f"Kafka: {next(str(e) for e in failed.values() if _refused(e))}")
        if keep:
            raise RuntimeError(f"Kafka delivery failed for {len(keep)} message(s): {reason or 'not sent'}")

    def read_records(self, timeout_s: float | None = None) -> Iterator[dict[str, Any]]:
        """Every record of the topic from its start to its end (gap notices left out), each
        partition in offset order. Raises when the topic does not exist, or when the end is not
        reached within ``timeout_s`` (default ``read_timeout_s``), rather than returning part of
        the log."""
        timeout_s = self.read_timeout_s if timeout_s is None else timeout_s
        try:
            from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
        except ImportError:
            raise NotAvailableError(
                "reading a Kafka log needs confluent-kafka: pip install 'dynamic-model-router[kafka]'") from None
        from dmr.store.jsonl import parse_records

        consumer = Consumer({"bootstrap.servers": self.brokers, "group.id": f"dmr-reader-{uuid.uuid4().hex}",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest",
                             "logger": _LOG, **self.consumer_config})
        deadline = time.monotonic() + timeout_s
        try:
            try:
                topic = consumer.list_topics(self.topic, timeout=timeout_s).topics.get(self.topic)
                if topic is None or topic.error is not None:
                    raise InputError(f"Kafka topic {self.topic!r} on {self.brokers} cannot be read: "
                                     f"{getattr(topic, 'error', None) or 'it does not exist'}")
                partitions = [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in topic.partitions]
                consumer.assign(partitions)
                next_offset = {p: 0 for p in topic.partitions}
                values: list[bytes] = []
                while True:
                    message = consumer.poll(0.3)
                    if message is None:
                        # Idle: done once every partition is read up to its end, asked afresh (a
                        # broker may report an end that lags the messages it has acknowledged).
                        ends = {p: consumer.get_watermark_offsets(
                            TopicPartition(self.topic, p), timeout=max(deadline - time.monotonic(), 0.1))
                            for p in next_offset}
                        behind = sorted(p for p, (low, high) in ends.items() if max(next_offset[p], low) < high)
                        if not behind:
                            break
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"Kafka topic {self.topic!r}: the end of partition(s) {behind} "
                                               f"was not reached in {timeout_s:g} s")
                        continue
                    if message.error() is not None:
                        if message.error().fatal():
                            raise RuntimeError(f"Kafka topic {self.topic!r}: {message.error()}")
                        continue  # librdkafka retries transient errors itself; the deadline bounds them
                    values.append(message.value())
                    next_offset[message.partition()] = message.offset() + 1
            except KafkaException as exc:
                raise RuntimeError(f"Kafka topic {self.topic!r} on {self.brokers}: {exc}") from None
        finally:
            consumer.close()
        yield from (r for r in parse_records(values) if r.get("event") != "records_dropped")

    def write_gap(self, count: int) -> None:
        gap = {"event": "records_dropped", "count": count, "ts": time.time()}
        self.write_batch([gap])

    def close_backend(self) -> None:
        if self._producer is not None:
            self._producer.flush(self.delivery_timeout_s)
            self._producer = None

    def __repr__(self) -> str:
        return f"KafkaLogger(brokers={self.brokers!r}, topic={self.topic!r})"


# The name the original README uses: KafkaLoggerBackend(brokers=[...], topic="...").
KafkaLoggerBackend = KafkaLogger
