"""Caches and decision logs.

Caches: :class:`MemoryCache` (in-process LRU+TTL, what ``cache_enabled=True`` uses) and
:class:`RedisCache` (shared by replicas). Decision logs, all built on :class:`BufferedLogger`
(bounded buffer, background writes, retries, counted drops): :class:`SQLiteLogger` (the default),
:class:`JSONLLogger`, :class:`PostgresLogger`, :class:`KafkaLogger`, :class:`S3Logger` and
:class:`WebhookLogger`. Feedback from ``Router.record_outcome`` travels the same loggers, and
:func:`dmr.store.outcomes.training_rows` reads it back as training rows. Each backend's client
library is imported only when it is used::

    from dmr import Router
    from dmr.store import RedisCache, SQLiteLogger

    router = Router(cache_backend=RedisCache(url="redis://127.0.0.1:6379/0"),
                    decision_logger=SQLiteLogger("decisions.sqlite3"))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "BufferedLogger",
    "Cache",
    "JSONLLogger",
    "KafkaLogger",
    "KafkaLoggerBackend",
    "MemoryCache",
    "PostgresLogger",
    "RedisCache",
    "RedisCacheBackend",
    "S3Logger",
    "SQLiteLogger",
    "WebhookLogger",
    "WebhookLoggerBackend",
    "build_record",
    "cache_key",
    "default_log_path",
]

_LAZY = {
    "BufferedLogger": "dmr.store.logger",
    "Cache": "dmr.store.cache",
    "JSONLLogger": "dmr.store.jsonl",
    "KafkaLogger": "dmr.store.kafka",
    "KafkaLoggerBackend": "dmr.store.kafka",
    "MemoryCache": "dmr.store.cache",
    "PostgresLogger": "dmr.store.postgres",
    "RedisCache": "dmr.store.redis_cache",
    "RedisCacheBackend": "dmr.store.redis_cache",
    "S3Logger": "dmr.store.s3",
    "SQLiteLogger": "dmr.store.sqlite",
    "WebhookLogger": "dmr.store.webhook",
    "WebhookLoggerBackend": "dmr.store.webhook",
    "build_record": "dmr.store.wiring",
    "cache_key": "dmr.store.cache",
    "default_log_path": "dmr.store.wiring",
}

if TYPE_CHECKING:
    from dmr.store.cache import Cache, MemoryCache, cache_key
    from dmr.store.jsonl import JSONLLogger
    from dmr.store.kafka import KafkaLogger, KafkaLoggerBackend
    from dmr.store.logger import BufferedLogger
    from dmr.store.postgres import PostgresLogger
    from dmr.store.redis_cache import RedisCache, RedisCacheBackend
    from dmr.store.s3 import S3Logger
    from dmr.store.sqlite import SQLiteLogger
    from dmr.store.webhook import WebhookLogger, WebhookLoggerBackend
    from dmr.store.wiring import build_record, default_log_path


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dmr.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
