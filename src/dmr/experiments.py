"""Experiments on routing: ``ABTest`` splits traffic between two routers by a sticky key, and
``ShadowMode`` runs a candidate router beside the live one without touching the live path.

Both take anything with ``classify(task, **kw) -> Decision`` (a :class:`~dmr.router.Router`, or
another experiment) and are used where a Router is::

    ab = ABTest(control=Router(), treatment=Router(escalation_threshold=0.6), split=0.05)
    decision = ab.classify(task, key=user_id)          # decision.policies_applied ends with "ab:control"

    with ShadowMode(primary=current, shadow=candidate, on_diff=log_diff) as shadow:
        decision = shadow.classify(task)               # always the primary's decision
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import queue
import threading
from typing import Any, Callable, Mapping

from dmr.errors import ConfigError
from dmr.types import Decision

__all__ = ["ABTest", "ShadowMode", "same_route"]

_log = logging.getLogger("dmr.experiments")


def _with_policy(decision: Decision, policy: str) -> Decision:
    return dataclasses.replace(decision, policies_applied=(*decision.policies_applied, policy))


def _close(target: Any) -> None:
    close = getattr(target, "close", None)
    if callable(close):
        close()


class ABTest:
    """Send a share ``split`` of traffic to ``treatment`` and the rest to ``control``.

    Assignment is sticky: it depends only on the experiment's ``name`` and the key, through a stable
    hash (BLAKE2b), so the same user or tenant lands in the same arm in every process and replica
    and across restarts. The key is, in order: ``classify(..., key=...)``; the ``key`` given here —
    a callable ``(task, tenant_config) -> str`` or the name of a ``tenant_config`` entry such as
    ``"tenant_id"``; else the task text itself (so a repeated task gets a repeated answer). The arm
    is appended to ``policies_applied`` as ``ab:control`` / ``ab:treatment`` (``ab:<name>:<arm>``
    when the experiment is named). ``close()`` closes both routers (those that have ``close()``).
    """

    def __init__(self, control: Any, treatment: Any, split: float = 0.05, *,
                 key: str | Callable[[Any, Mapping[str, Any] | None], Any] | None = None,
                 name: str | None = None) -> None:
        if not 0.0 <= split <= 1.0:
            raise ConfigError(f"split must be between 0 and 1, not {split!r}", [("split", "out of range")])
        if key is not None and not (isinstance(key, str) or callable(key)):
            raise ConfigError("key must be a tenant_config entry name or a callable", [("key", "wrong type")])
        self.control, self.treatment, self.split, self.key, self.name = control, treatment, split, key, name
        # The split as a threshold on a 64-bit hash: arm() is one digest and one comparison.
        self._threshold = int(split * 2**64)
        self._salt = (name or "dmr-ab").encode("utf-8") + b"\x00"
        self._tags = {arm: f"ab:{name}:{arm}" if name else f"ab:{arm}" for arm in ("control", "treatment")}

    def arm(self, key: Any) -> str:
        """``"control"`` or ``"treatment"`` for this key — the same answer everywhere, always."""
        digest = hashlib.blake2b(self._salt + str(key).encode("utf-8"), digest_size=8).digest()
        return "treatment" if int.from_bytes(digest, "big") < self._threshold else "control"

    def _key(self, task: Any, key: Any, tenant_config: Mapping[str, Any] | None) -> Any:
        if key is not None:
            return key
        if callable(self.key):
            return self.key(task, tenant_config)
        if isinstance(self.key, str) and tenant_config and tenant_config.get(self.key) is not None:
            return tenant_config[self.key]
        return task

    def classify(self, task: Any, *, key: Any = None, **kwargs: Any) -> Decision:
        arm = self.arm(self._key(task, key, kwargs.get("tenant_config")))
        router = self.treatment if arm == "treatment" else self.control
        return _with_policy(router.classify(task, **kwargs), self._tags[arm])

    async def aclassify(self, task: Any, *, key: Any = None, **kwargs: Any) -> Decision:
        arm = self.arm(self._key(task, key, kwargs.get("tenant_config")))
        router = self.treatment if arm == "treatment" else self.control
        return _with_policy(await router.aclassify(task, **kwargs), self._tags[arm])

    def close(self) -> None:
        _close(self.control)
        _close(self.treatment)

    def __enter__(self) -> ABTest:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def same_route(a: Decision, b: Decision) -> bool:
    """Whether two decisions route alike (ids, timings, reasoning and confidence aside)."""
    return ((a.tier, a.model_name, a.provider, a.task_type, a.complexity)
            == (b.tier, b.model_name, b.provider, b.task_type, b.complexity))


_STOP = object()


class ShadowMode:
    """Answer from ``primary``; replay each task on ``shadow`` in the background and call
    ``on_diff(primary_decision, shadow_decision)`` when they route differently.

    The caller's path only puts the task on a bounded queue (``max_queue``): the shadow adds no
    latency to the primary, and whatever the shadow or ``on_diff`` raises is counted and logged,
    never raised to the caller. When the queue is full the task is dropped and counted — the shadow
    never slows the primary down to catch up. ``stats`` has the counts; ``flush()`` waits for the
    queue to drain; ``close()`` (or leaving the ``with`` block) stops the workers and closes both
    routers (those that have ``close()``).
    """

    def __init__(self, primary: Any, shadow: Any, on_diff: Callable[[Decision, Decision], Any] | None = None, *,
                 max_queue: int = 1000, workers: int = 1,
                 differs: Callable[[Decision, Decision], bool] | None = None) -> None:
        if max_queue < 1 or workers < 1:
            raise ConfigError("max_queue and workers must be at least 1", [("max_queue", "must be >= 1")])
        self.primary, self.shadow, self.on_diff = primary, shadow, on_diff
        self._differs = differs or (lambda a, b: not same_route(a, b))
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._workers_wanted = workers
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self._counts = dict.fromkeys(("submitted", "compared", "diffs", "dropped", "shadow_errors",
                                      "callback_errors"), 0)

    @property
    def stats(self) -> dict[str, int]:
        """Counts: submitted, compared, diffs, dropped (queue full or closed), shadow_errors,
        callback_errors, and ``queued`` now."""
        with self._lock:
            return {**self._counts, "queued": self._queue.qsize()}

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def _start(self) -> None:
        # Workers start on first use, not in __init__, so that building a ShadowMode before a fork
        # (gunicorn, multiprocessing) leaves no thread behind in the parent.
        with self._lock:
            if self._workers or self._closed:
                return
            for i in range(self._workers_wanted):
                worker = threading.Thread(target=self._work, name=f"dmr-shadow-{i}", daemon=True)
                worker.start()
                self._workers.append(worker)

    def _submit(self, task: Any, kwargs: dict[str, Any], decision: Decision) -> None:
        if not self._workers:
            self._start()
        try:
            if self._closed:
                raise queue.Full
            self._queue.put_nowait((task, kwargs, decision))
            self._count("submitted")
        except queue.Full:
            self._count("dropped")

    def classify(self, task: Any, **kwargs: Any) -> Decision:
        decision = self.primary.classify(task, **kwargs)
        self._submit(task, kwargs, decision)
        return decision

    async def aclassify(self, task: Any, **kwargs: Any) -> Decision:
        decision = await self.primary.aclassify(task, **kwargs)
        self._submit(task, kwargs, decision)
        return decision

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._replay(*item)
            finally:
                self._queue.task_done()

    def _replay(self, task: Any, kwargs: dict[str, Any], primary: Decision) -> None:
        try:
            shadow = self.shadow.classify(task, **kwargs)
        except Exception:
            self._count("shadow_errors")
            _log.warning("shadow router failed", exc_info=True)
            return
        self._count("compared")
        if not self._differs(primary, shadow):
            return
        self._count("diffs")
        if self.on_diff is None:
            return
        try:
            result = self.on_diff(primary, shadow)
            if asyncio.iscoroutine(result):
                asyncio.run(result)
        except Exception:
            self._count("callback_errors")
            _log.warning("on_diff callback failed", exc_info=True)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued task has been replayed; False if ``timeout`` ran out first."""
        with self._queue.all_tasks_done:
            return self._queue.all_tasks_done.wait_for(lambda: not self._queue.unfinished_tasks, timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop taking tasks, let the workers finish what is queued (up to ``timeout`` seconds),
        and stop them. A shadow stuck past the timeout is left to its daemon thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = list(self._workers)
        for _ in workers:
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:  # the shadow is stuck; its daemon threads end with the process
                break
        for worker in workers:
            worker.join(timeout)
        _close(self.primary)
        _close(self.shadow)

    def __enter__(self) -> ShadowMode:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
