"""The decision-log base class: a bounded buffer, a background flusher and retries.

``log()`` is all the decision path does: it appends to an in-memory buffer and returns. A
background thread takes batches from the buffer, turns them into records and hands them to the
backend's :meth:`BufferedLogger.write_batch`. A batch that fails stays at the head of the buffer
and is tried again with exponential backoff, so a backend that is down never blocks or fails a
decision. The buffer is bounded: when it is full the oldest record is dropped, and every drop is
counted (``stats()["dropped"]``), logged as a warning and, once the backend accepts writes again,
written to the log itself as a gap record (:meth:`BufferedLogger.write_gap`) — never lost silently.

Feedback recorded with ``Router.record_outcome`` travels the same path as records of kind
``"outcome"`` (:mod:`dmr.store.outcomes`); a backend that keeps them apart (SQLite, PostgreSQL,
JSONL) splits each batch with :func:`split_outcomes`.

A backend subclass implements ``write_batch(records)`` (raise on failure; it must be safe to call
again with the same records, which carry a unique ``decision_id``; before raising it may remove
from the list the records it did write) and optionally ``write_gap`` and ``close_backend``. A
record the backend is up but will never take (a Kafka message over the broker's size limit, a value
the database refuses) must not hold up the records behind it: the backend leaves in the list only
what is worth retrying and raises :class:`RecordsRefused` with the others, which are dropped and
counted like any other drop.
"""

from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
import weakref
from typing import Any, Callable

__all__ = ["BufferedLogger", "RecordsRefused", "split_outcomes", "writable"]

log = logging.getLogger("dmr.store")

_LIVE: weakref.WeakSet[BufferedLogger] = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for logger in list(_LIVE):
        logger.close(timeout=5.0)


class RecordsRefused(Exception):
    """Raised by a backend's ``write_batch`` for records it will never accept, however often they
    are retried: ``refused`` holds them, ``reason`` says why; the list passed to ``write_batch``
    holds what is still to be retried (often nothing)."""

    def __init__(self, refused: list[dict[str, Any]], reason: str) -> None:
        super().__init__(f"{len(refused)} record(s) refused: {reason}")
        self.refused, self.reason = list(refused), reason


def split_outcomes(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A batch as (decision records, outcome records), each in its original order."""
    decisions, outcomes = [], []
    for record in records:
        (outcomes if record.get("kind") == "outcome" else decisions).append(record)
    return decisions, outcomes


class BufferedLogger:
    """Base of every decision logger. Parameters:

    ``buffer_size``: records held while the backend is slow or down (oldest dropped past it);
    ``batch_size``: records per write; ``flush_interval_s``: how long a partial batch may wait;
    ``retry_initial_s`` / ``retry_max_s``: backoff between failed writes (doubling)."""

    backend = "logger"

    def __init__(self, *, buffer_size: int = 100_000, batch_size: int = 500, flush_interval_s: float = 0.2,
                 retry_initial_s: float = 0.1, retry_max_s: float = 5.0) -> None:
        if buffer_size < 1 or batch_size < 1:
            raise ValueError("buffer_size and batch_size must be at least 1")
        self.buffer_size = buffer_size
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._queue: collections.deque[Any] = collections.deque()
        self._inflight: list[dict[str, Any]] = []  # taken from the queue, not yet written
        self._building = 0  # taken from the queue, being built into records (not yet in _inflight)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._close_deadline: float | None = None
        self._flush_waiters = 0
        self._written = self._dropped = self._errors = 0
        self._gap = 0  # dropped records not yet recorded in the log itself
        self._last_error: str | None = None
        self._last_warned = 0.0
        self._failing = False
        self._refused_now = 0  # records refused in the current write (not written, but dropped)

    # -- the hot path ------------------------------------------------------------------------
    def log(self, item: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        """Queue one record: a dict, or a function that builds it (called on the flusher thread, so
        the work of building the record stays off the decision path)."""
        with self._cond:
            if self._closed:
                self._drop(1, "the logger is closed")
                return
            self._queue.append(item)
            overflow = len(self._queue) + len(self._inflight) - self.buffer_size
            if overflow > 0:
                dropped = min(overflow, len(self._queue))
                for _ in range(dropped):
                    self._queue.popleft()
                self._drop(dropped, "the buffer is full")
            if self._thread is None:
                self._start()
            elif len(self._queue) == 1 or len(self._queue) >= self.batch_size:
                # The first record starts the flush interval's clock; a full batch goes at once.
                self._cond.notify_all()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"dmr-{self.backend}-logger", daemon=True)
        self._thread.start()
        _LIVE.add(self)

    def _drop(self, count: int, why: str) -> None:
        # Called with the lock held.
        self._dropped += count
        self._gap += count
        now = time.monotonic()
        if now - self._last_warned >= 10.0:
            self._last_warned = now
            log.warning("dmr: %s decision log dropped %d record(s) (%s; %d dropped in all, last error: %s)",
                        self.backend, count, why, self._dropped, self._last_error)

    # -- the background flusher ----------------------------------------------------------------
    def _run(self) -> None:
        delay = self.retry_initial_s
        while True:
            with self._cond:
                while not self._inflight and not self._queue and not self._closed:
                    self._cond.wait()
                if not self._inflight and not self._closed and len(self._queue) < self.batch_size \
                        and not self._flush_waiters:
                    self._cond.wait(self.flush_interval_s)
                if not self._inflight:
                    take = min(self.batch_size, len(self._queue))
                    items = [self._queue.popleft() for _ in range(take)]
                    # Neither queued nor in flight while they are built: flush() waits for them too.
                    self._building = take
                else:
                    items = []
                if self._closed and not self._inflight and not items:
                    self._cond.notify_all()
                    return
            if items:
                records = []
                for item in items:
                    # Hand the GIL back between records, so that a decision waiting for it does not
                    # wait out the interpreter's whole switch interval (5 ms) behind a batch.
                    time.sleep(0)
                    try:
                        records.append(item() if callable(item) else dict(item))
                    except Exception as exc:  # a record that cannot be built is a drop, counted
                        with self._cond:
                            self._last_error = f"cannot build record: {type(exc).__name__}: {exc}"
                            self._drop(1, "the record could not be built")
                with self._cond:
                    self._inflight = records
                    self._building = 0
            ok = self._write_inflight()
            with self._cond:
                if ok:
                    delay = self.retry_initial_s
                    self._cond.notify_all()
                    continue
                if self._closed and self._close_deadline is not None and time.monotonic() >= self._close_deadline:
                    self._drop(len(self._inflight) + len(self._queue), "closed while the backend was down")
                    self._inflight = []
                    self._queue.clear()
                    self._cond.notify_all()
                    return
                self._cond.notify_all()
                # Back off for the whole delay: new records and flush() calls do not hurry a retry.
                retry_at = time.monotonic() + delay
                if self._closed and self._close_deadline is not None:
                    retry_at = min(retry_at, self._close_deadline)
                while (remaining := retry_at - time.monotonic()) > 0:
                    self._cond.wait(remaining)
                delay = min(delay * 2, self.retry_max_s)

    def _write_inflight(self) -> bool:
        records = self._inflight
        before = len(records)
        self._refused_now = 0
        try:
            if records:
                try:
                    self._write_or_refuse(records)
                except Exception:
                    # A lone surrogate or a NUL in a string (a str can hold them, some backends
                    # cannot store them) would fail this batch forever and hold up every record
                    # behind it: replace them and write again once. Looked for only after a failure.
                    scrubbed = writable(records)
                    if scrubbed == records:
                        raise
                    records[:] = scrubbed
                    self._write_or_refuse(records)
            with self._cond:
                self._written += before - self._refused_now
                self._inflight = []
                gap = self._gap
            if gap:
                self.write_gap(gap)
                with self._cond:
                    self._gap -= gap
        except Exception as exc:  # the backend's failure is retried, never raised into a decision
            with self._cond:
                # A backend may take out of the list the records it did write before failing.
                self._written += before - len(records) - self._refused_now
                self._errors += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                if not self._failing:
                    log.warning("dmr: %s decision log cannot write (%s); buffering and retrying",
                                self.backend, self._last_error)
                self._failing = True
            return False
        if self._failing:
            self._failing = False
            log.info("dmr: %s decision log writes again", self.backend)
        return True

    def _write_or_refuse(self, records: list[dict[str, Any]]) -> None:
        """``write_batch``, with the records the backend refuses dropped (and counted) rather than
        retried; raises when what is left still failed."""
        try:
            self.write_batch(records)
        except RecordsRefused as exc:
            refused = {id(r) for r in exc.refused}
            records[:] = [r for r in records if id(r) not in refused]
            with self._cond:
                self._refused_now += len(exc.refused)
                self._last_error = f"the backend refused {len(exc.refused)} record(s): {exc.reason}"
                self._drop(len(exc.refused), "the backend refused them")
            if records:
                raise RuntimeError(f"{len(records)} record(s) not written after a refusal") from exc

    # -- what a backend implements ---------------------------------------------------------------
    def write_batch(self, records: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def write_gap(self, count: int) -> None:
        """Record in the log that ``count`` records were dropped (backends that can, do)."""

    def close_backend(self) -> None:
        """Release the backend's connections (called once, from :meth:`close`)."""

    # -- control -----------------------------------------------------------------------------------
    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every queued record is written; False if that did not happen in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flush_waiters += 1
            try:
                self._cond.notify_all()
                while self._queue or self._inflight or self._building:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining if remaining is not None else 0.5)
                return True
            finally:
                self._flush_waiters -= 1

    def close(self, timeout: float = 10.0) -> None:
        """Flush (for up to ``timeout`` seconds), stop the flusher and release the backend. Records
        still unwritten then are counted as dropped."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._close_deadline = time.monotonic() + timeout
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout + 1.0)
        with self._cond:
            left = len(self._queue) + len(self._inflight)
            if left:
                self._drop(left, "closed before they could be written")
                self._queue.clear()
                self._inflight = []
        _LIVE.discard(self)
        try:
            self.close_backend()
        except Exception as exc:
            log.warning("dmr: closing the %s decision log failed: %s", self.backend, exc)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called: further records are dropped (and counted)."""
        with self._cond:
            return self._closed

    def stats(self) -> dict[str, Any]:
        """``written``, ``buffered``, ``dropped``, ``errors`` and ``last_error``."""
        with self._cond:
            return {"backend": self.backend, "written": self._written,
                    "buffered": len(self._queue) + len(self._inflight), "dropped": self._dropped,
                    "errors": self._errors, "last_error": self._last_error}

    def __enter__(self) -> BufferedLogger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def writable(value: Any) -> Any:
    """``value`` with every lone surrogate and NUL in its strings replaced by U+FFFD."""
    from dmr.layers.base import valid_unicode

    if isinstance(value, str):
        return valid_unicode(value).replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {writable(k): writable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(writable(v) for v in value)
    return value
