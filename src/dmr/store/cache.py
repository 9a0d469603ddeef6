"""Decision caches: the key, the JSON form of a cached decision, and the in-memory LRU+TTL cache.

A cache maps a key to a :class:`~dmr.types.Decision`. The key is a hash of everything that can
change the decision: the whole task text (after decoding and the pre-classify hooks), the
conversation history, the tenant config and the router's fingerprint (its configuration, its
registry's content, its keyword packs, its layers and the tier levels in force). Nothing is
truncated before hashing, so two tasks that differ anywhere never share an entry.

A cache backend is anything with ``get(key) -> Decision | None`` and ``set(key, decision)``; a
backend that fails answers ``None`` (a miss) and counts the error — a cache never fails a decision.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from collections import OrderedDict
from typing import Any, Iterable, Mapping, Protocol, Sequence, runtime_checkable

from dmr.types import Decision, LayerStep, ModelTier, TaskComplexity, TaskType

__all__ = ["Cache", "MemoryCache", "cache_key", "decision_from_dict", "from_cache"]

CACHE_POLICY = "cache_hit"


@runtime_checkable
class Cache(Protocol):
    """What a Router needs from a cache backend."""

    def get(self, key: str) -> Decision | None: ...

    def set(self, key: str, decision: Decision) -> None: ...


def _canonical(value: Any) -> str:
    # sort_keys makes equal mappings hash equally; default=repr keeps odd objects (a message
    # object in the history) from failing the key instead of the cache.
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=repr)


def cache_key(text: str, history: Sequence[Any] | None, tenant_config: Mapping[str, Any] | None,
              fingerprint: str, needs: Iterable[str] = (), state: str = "") -> str:
    """The cache key of one call: a hash of every input that can change its decision. ``state``
    is what can change it between two identical calls (the stage a budget has reached)."""
    digest = hashlib.blake2b(digest_size=20)
    # Each part is length-prefixed, so no shift of characters between parts gives the same bytes.
    parts = [fingerprint, text, _canonical(list(history)) if history else "",
             _canonical(dict(tenant_config)) if tenant_config else ""]
    if needs:  # (absent from the keys of calls without: their cached decisions stay valid)
        parts.append(",".join(sorted(needs)))
    if state:  # (likewise)
        parts.append("state:" + state)
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return "dmr:decision:" + digest.hexdigest()


def decision_from_dict(data: Mapping[str, Any]) -> Decision:
    """Rebuild a Decision from :meth:`Decision.to_dict`'s form (JSON-decoded)."""
    fields = dict(data)
    fields["tier"] = ModelTier(fields["tier"])
    fields["task_type"] = TaskType(fields["task_type"])
    fields["complexity"] = TaskComplexity(fields["complexity"])
    fields["policies_applied"] = tuple(fields.get("policies_applied") or ())
    fields["trace"] = tuple(LayerStep(**step) for step in fields.get("trace") or ())
    known = {f.name for f in dataclasses.fields(Decision)}
    return Decision(**{k: v for k, v in fields.items() if k in known})


def decision_to_json(decision: Decision) -> str:
    return json.dumps(decision.to_dict(), ensure_ascii=False, separators=(",", ":"))


def decision_from_json(text: str | bytes) -> Decision:
    return decision_from_dict(json.loads(text))


def from_cache(cached: Decision, decision_id: str, latency_ms: float) -> Decision:
    """The decision a cache hit returns: the cached answer with this call's id and latency. Its
    trace is one ``cache`` step that names the decision it came from; its ``layer`` stays."""
    policies = cached.policies_applied
    if CACHE_POLICY not in policies:
        policies = (*policies, CACHE_POLICY)
    step = LayerStep("cache", "hit", cached.confidence, latency_ms, f"cached from {cached.decision_id}")
    return dataclasses.replace(cached, decision_id=decision_id, latency_ms=latency_ms,
                               policies_applied=policies, trace=(step,))


class MemoryCache:
    """An in-process LRU cache with a time to live: at most ``max_entries`` decisions, each kept
    ``ttl_s`` seconds (``None``: until evicted). Thread-safe. Decisions are immutable, so the
    cache holds them as they are; nothing is serialised."""

    def __init__(self, max_entries: int = 10_000, ttl_s: float | None = 3600.0) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError("ttl_s must be positive (or None for no expiry)")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._entries: OrderedDict[str, tuple[float, Decision]] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = self._misses = self._evictions = 0

    def get(self, key: str) -> Decision | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._misses += 1
                return None
            if entry[0] < time.monotonic():
                del self._entries[key]
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return entry[1]

    def set(self, key: str, decision: Decision) -> None:
        expires = time.monotonic() + self.ttl_s if self.ttl_s is not None else float("inf")
        with self._lock:
            self._entries[key] = (expires, decision)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self._evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"entries": len(self._entries), "hits": self._hits, "misses": self._misses,
                    "evictions": self._evictions, "errors": 0}

    def __repr__(self) -> str:
        return f"MemoryCache(max_entries={self.max_entries}, ttl_s={self.ttl_s})"
