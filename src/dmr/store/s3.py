"""A decision log archived to S3 (boto3): each batch becomes one JSON Lines object.

Object keys are ``{prefix}YYYY/MM/DD/HHMMSS-{first decision id}-{count}-{content hash}.jsonl`` (UTC,
the first record's time), named by the batch's own content, so a retried batch overwrites its own
object instead of adding a copy, and two different batches never share a key (an outcome record
carries the id of the decision it rates, so ids alone could collide). With
a bucket under object lock this is the immutable audit trail the production checklist asks for.
:meth:`S3Logger.read_records` reads the objects back (``dmr train --from-log`` does).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from typing import Any, Iterator

from dmr.errors import NotAvailableError
from dmr.store.logger import BufferedLogger

__all__ = ["S3Logger"]


class S3Logger(BufferedLogger):
    """``S3Logger(bucket="audit", prefix="dmr/decisions/")``. ``client_options`` go to
    ``boto3.client("s3", ...)`` (``endpoint_url``, ``region_name``, credentials); by default the
    usual AWS environment and config files apply. Batches default to 1,000 records or 5 seconds."""

    backend = "s3"

    def __init__(self, bucket: str, *, prefix: str = "dmr/decisions/", client: Any = None,
                 batch_size: int = 1000, flush_interval_s: float = 5.0, **options: Any) -> None:
        client_options = {k: options.pop(k) for k in list(options)
                          if k in ("endpoint_url", "region_name", "aws_access_key_id", "aws_secret_access_key",
                                   "aws_session_token")}
        super().__init__(batch_size=batch_size, flush_interval_s=flush_interval_s, **options)
        if not bucket:
            raise ValueError("S3Logger needs a bucket")
        self.bucket = bucket
        self.prefix = prefix
        self._client = client
        self._client_options = client_options

    def _connect(self) -> Any:
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise NotAvailableError("S3Logger needs boto3: pip install 'dynamic-model-router[s3]'") from None
            # The logger retries with its own backoff; boto3's retries would only stretch one attempt.
            config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=3, read_timeout=15)
            self._client = boto3.client("s3", config=config, **self._client_options)
        return self._client

    def _key(self, records: list[dict[str, Any]], body: bytes) -> str:
        first = records[0]
        when = dt.datetime.fromtimestamp(float(first.get("ts") or time.time()), dt.timezone.utc)
        ident = "".join(c for c in str(first.get("decision_id", "")) if c.isalnum() or c in "-_")[:64]
        digest = hashlib.sha256(body).hexdigest()[:16]
        return f"{self.prefix}{when:%Y/%m/%d/%H%M%S}-{ident}-{len(records)}-{digest}.jsonl"

    def write_batch(self, records: list[dict[str, Any]]) -> None:
        body = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records).encode("utf-8")
        self._connect().put_object(Bucket=self.bucket, Key=self._key(records, body), Body=body,
                                   ContentType="application/x-ndjson")

    def read_records(self) -> Iterator[dict[str, Any]]:
        """Every record under the prefix (gap notices left out), object by object in key order,
        which is the order the batches were written in. Unreadable lines are skipped."""
        from dmr.store.jsonl import parse_records

        client = self._connect()
        gaps = f"{self.prefix}gaps/"
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", ()):
                if item["Key"].startswith(gaps):
                    continue
                body = client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                yield from parse_records(body.splitlines())

    def write_gap(self, count: int) -> None:
        now = time.time()
        body = json.dumps({"event": "records_dropped", "count": count, "ts": now}).encode("utf-8")
        key = f"{self.prefix}gaps/{dt.datetime.fromtimestamp(now, dt.timezone.utc):%Y/%m/%d/%H%M%S.%f}.json"
        self._connect().put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")

    def __repr__(self) -> str:
        return f"S3Logger(bucket={self.bucket!r}, prefix={self.prefix!r})"
