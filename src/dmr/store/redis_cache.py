"""A decision cache in Redis, shared by every replica that points at the same server.

Values are the decisions' JSON (never pickle). Redis being slow or down never fails or stalls a
decision: calls have short socket timeouts, an error counts as a miss, and after an error the
cache stays out of the way for ``retry_after_s`` before trying the server again.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from dmr.errors import NotAvailableError
from dmr.store.cache import decision_from_json, decision_to_json
from dmr.types import Decision

__all__ = ["RedisCache", "RedisCacheBackend"]

log = logging.getLogger("dmr.store")


class RedisCache:
    """``RedisCache(url="redis://127.0.0.1:6379/0")`` or ``RedisCache(host=..., port=...)``.

    ``ttl_s`` is each entry's time to live (``None``: no expiry); ``prefix`` separates routers
    that share a server for different purposes."""

    def __init__(self, url: str | None = None, *, host: str | None = None, port: int = 6379, db: int = 0,
                 password: str | None = None, ttl_s: float | None = 3600.0, prefix: str = "",
                 socket_timeout_s: float = 0.25, retry_after_s: float = 1.0, client: Any = None) -> None:
        if url is not None and host is not None:
            raise ValueError("give either url= or host=, not both")
        self.url = url if url is not None or host is not None else "redis://127.0.0.1:6379/0"
        self.host, self.port, self.db, self._password = host, port, db, password
        self.ttl_s = ttl_s
        self.prefix = prefix
        self.socket_timeout_s = socket_timeout_s
        self.retry_after_s = retry_after_s
        self._client = client
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._hits = self._misses = self._errors = 0
        self.last_error: str | None = None

    def _redis(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:
                        import redis
                    except ImportError:
                        raise NotAvailableError(
                            "RedisCache needs the redis client: pip install 'dynamic-model-router[redis]'") from None
                    common = {"socket_timeout": self.socket_timeout_s, "socket_connect_timeout": self.socket_timeout_s}
                    if self.host is not None:
                        self._client = redis.Redis(host=self.host, port=self.port, db=self.db,
                                                   password=self._password, **common)
                    else:
                        self._client = redis.Redis.from_url(self.url, password=self._password, **common)
        return self._client

    def _failed(self, exc: Exception) -> None:
        self._errors += 1
        self._down_until = time.monotonic() + self.retry_after_s
        message = f"{type(exc).__name__}: {exc}"
        if message != self.last_error:
            log.warning("dmr: Redis cache unavailable (%s); deciding without it for now", message)
        self.last_error = message

    def get(self, key: str) -> Decision | None:
        if time.monotonic() < self._down_until:
            self._misses += 1
            return None
        client = self._redis()
        try:
            raw = client.get(self.prefix + key)
        except Exception as exc:  # any client or network failure is a miss, never the caller's error
            self._failed(exc)
            self._misses += 1
            return None
        if raw is None:
            self._misses += 1
            return None
        try:
            decision = decision_from_json(raw)
        except (ValueError, TypeError, KeyError) as exc:
            # An entry this version cannot read (written by another version, or corrupt).
            self._errors += 1
            self.last_error = f"unreadable entry {key}: {exc}"
            self._misses += 1
            return None
        self._hits += 1
        return decision

    def set(self, key: str, decision: Decision) -> None:
        if time.monotonic() < self._down_until:
            return
        client = self._redis()
        try:
            ttl = None if self.ttl_s is None else max(1, round(self.ttl_s * 1000))
            client.set(self.prefix + key, decision_to_json(decision), px=ttl)
        except Exception as exc:
            self._failed(exc)

    def clear(self) -> None:
        """Delete this cache's entries (those under its prefix) from the server."""
        client = self._redis()
        batch = list(client.scan_iter(match=f"{self.prefix}dmr:decision:*", count=500))
        for i in range(0, len(batch), 500):
            client.delete(*batch[i:i + 500])

    def stats(self) -> dict[str, Any]:
        return {"hits": self._hits, "misses": self._misses, "errors": self._errors, "last_error": self.last_error}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __repr__(self) -> str:
        # Never show a password that the URL may carry.
        url = re.sub(r"//[^@/]*@", "//***@", self.url)
        where = f"host={self.host!r}, port={self.port}" if self.host is not None else f"url={url!r}"
        return f"RedisCache({where}, ttl_s={self.ttl_s})"


# The name the original README uses: RedisCacheBackend(host="…").
RedisCacheBackend = RedisCache
