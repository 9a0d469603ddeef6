"""Sliding 60-second windows of requests per tenant, for ``rpm``.

:class:`LocalWindows` counts in this process. :class:`RedisWindows` counts in Redis, so that every
proxy replica sharing it sees the same count: one sorted set per tenant (``dmr:rpm:<name>``) of
request arrival times, read and written by one Lua script, so that the check and the count are
one atomic step. Times come from the Redis server's clock, which replicas share even when their own
clocks drift.
"""

from __future__ import annotations

import collections
import time
import uuid

from dmr.redis_client import connect

__all__ = ["LocalWindows", "RedisWindows", "WINDOW_S"]

WINDOW_S = 60.0

# KEYS[1]: the tenant's set; ARGV: limit, window (s), a unique member. Returns nil when the request
# is admitted (and counted), else the seconds until the oldest request leaves the window.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
return false
"""


class LocalWindows:
    """Windows kept in this process. Not thread-safe: the proxy calls it on its event loop."""

    def __init__(self) -> None:
        self._sent: dict[str, collections.deque[float]] = {}

    def admit(self, name: str, limit: int, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        sent = self._sent.setdefault(name, collections.deque())
        while sent and sent[0] <= now - WINDOW_S:
            sent.popleft()
        if len(sent) >= limit:
            return sent[0] + WINDOW_S - now
        sent.append(now)
        return None


class RedisWindows:
    """Windows kept in Redis at ``url`` (``redis://``, ``rediss://`` or ``unix://``). A call blocks
    for one round trip and raises ``redis.RedisError`` when Redis cannot answer."""

    def __init__(self, url: str, *, timeout: float = 0.5) -> None:
        self.url = url
        self._client = connect(url, "rate_store", self, timeout=timeout)
        self._script = self._client.register_script(_ADMIT)
        import redis

        self.errors = redis.RedisError  # what admit raises when Redis cannot answer

    def admit(self, name: str, limit: int) -> float | None:
        wait = self._script(keys=[f"dmr:rpm:{name}"], args=[limit, WINDOW_S, uuid.uuid4().hex])
        if wait is None:
            return None
        return max(0.0, float(wait.decode() if isinstance(wait, bytes) else wait))

    def reset(self, name: str) -> None:
        self._client.delete(f"dmr:rpm:{name}")
