"""A decision log streamed to a Kafka topic (confluent-kafka), one JSON message per decision keyed
by its ``decision_id``.

Each batch is produced and then flushed until every message has its delivery report: delivered
messages leave the batch, failed ones (the broker down, the topic refused) stay and are retried by
the base class. ``message.timeout.ms`` bounds how long one attempt waits on a broker that is down.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from dmr.errors import NotAvailableError
from dmr.store.logger import BufferedLogger

__all__ = ["KafkaLogger", "KafkaLoggerBackend"]


class KafkaLogger(BufferedLogger):
    """``KafkaLogger(brokers=["127.0.0.1:9092"], topic="dmr-decisions")``; ``producer_config``
    adds or overrides librdkafka settings (security, compression…)."""

    backend = "kafka"

    def __init__(self, brokers: list[str] | str, topic: str, *, producer_config: dict[str, Any] | None = None,
                 delivery_timeout_s: float = 5.0, **options: Any) -> None:
        super().__init__(**options)
        self.brokers = brokers if isinstance(brokers, str) else ",".join(brokers)
        if not self.brokers or not topic:
            raise ValueError("KafkaLogger needs brokers and a topic")
        self.topic = topic
        self.delivery_timeout_s = delivery_timeout_s
        self.producer_config = dict(producer_config or {})
        self._producer: Any = None

    def _connect(self) -> Any:
        if self._producer is None:
            try:
                from confluent_kafka import Producer
            except ImportError:
                raise NotAvailableError(
                    "KafkaLogger needs confluent-kafka: pip install 'dynamic-model-router[kafka]'") from None
            config = {"bootstrap.servers": self.brokers, "message.timeout.ms": int(self.delivery_timeout_s * 1000),
                      "linger.ms": 5, "logger": logging.getLogger("dmr.store.kafka"), **self.producer_config}
            self._producer = Producer(config)
        return self._producer

    def write_batch(self, records: list[dict[str, Any]]) -> None:
        producer = self._connect()
        failed: dict[int, str] = {}

        def report(index: int) -> Any:
            def on_delivery(error: Any, message: Any) -> None:
                if error is not None:
                    failed[index] = str(error)
            return on_delivery

        for i, record in enumerate(records):
            value = json.dumps(record, ensure_ascii=False, default=str).encode("utf-8")
            while True:
                try:
                    producer.produce(self.topic, value=value, key=str(record.get("decision_id", "")).encode(),
                                     on_delivery=report(i))
                    break
                except BufferError:  # the producer's own queue is full: let it drain
                    producer.poll(0.1)
        # Wait past the message timeout, so that every message has its report.
        left = producer.flush(self.delivery_timeout_s + 5.0)
        if left or failed:
            # Keep only the records that did not arrive; the base class retries those.
            keep = [r for i, r in enumerate(records) if i in failed]
            reason = next(iter(failed.values()), f"{left} message(s) undelivered")
            if left:
                raise RuntimeError(f"Kafka delivery unconfirmed for {left} message(s)")
            records[:] = keep
            raise RuntimeError(f"Kafka delivery failed for {len(keep)} message(s): {reason}")

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
