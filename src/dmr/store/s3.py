"""A decision log archived to S3 (boto3): each batch becomes one JSON Lines object.

Object keys are ``{prefix}YYYY/MM/DD/HHMMSS-{first decision id}-{count}.jsonl`` (UTC), named by the
batch's own content, so a retried batch overwrites its own object instead of adding a copy. With
a bucket under object lock this is the immutable audit trail the production checklist asks for.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

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

    def _key(self, records: list[dict[str, Any]]) -> str:
        first = records[0]
        when = dt.datetime.fromtimestamp(float(first.get("ts") or time.time()), dt.timezone.utc)
        ident = "".join(c for c in str(first.get("decision_id", "")) if c.isalnum() or c in "-_")[:64]
        return f"{self.prefix}{when:%Y/%m/%d/%H%M%S}-{ident}-{len(records)}.jsonl"

    def write_batch(self, records: list[dict[str, Any]]) -> None:
        body = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records).encode("utf-8")
        self._connect().put_object(Bucket=self.bucket, Key=self._key(records), Body=body,
                                   ContentType="application/x-ndjson")

    def write_gap(self, count: int) -> None:
        now = time.time()
        body = json.dumps({"event": "records_dropped", "count": count, "ts": now}).encode("utf-8")
        key = f"{self.prefix}gaps/{dt.datetime.fromtimestamp(now, dt.timezone.utc):%Y/%m/%d/%H%M%S.%f}.json"
        self._connect().put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")

    def __repr__(self) -> str:
        return f"S3Logger(bucket={self.bucket!r}, prefix={self.prefix!r})"
