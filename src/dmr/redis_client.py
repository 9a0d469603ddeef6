"""A Redis client for a shared counter (the budget's spend, the proxy's request windows), opened
from a URL the user configured; the ``redis`` package is an optional extra."""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["REDIS_SCHEMES", "connect"]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def connect(url: str, option: str, owner: Any, *, timeout: float = 0.5) -> Any:
    """A ``redis.Redis`` for ``url`` with short timeouts, closed when ``owner`` is collected.
    ``option`` names the setting in the error raised when the package is missing."""
    try:
        import redis
    except ImportError:
        from dmr.errors import NotAvailableError

        raise NotAvailableError(f"{option}: a Redis store needs the redis package; "
                                "pip install 'dynamic-model-router[redis]'",
                                [(option, "redis is not installed")]) from None
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    weakref.finalize(owner, client.close)
    return client
