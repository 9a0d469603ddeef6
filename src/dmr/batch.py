"""Classifying a JSONL file of tasks, in this process or spread over a Ray cluster.

Every non-blank line gives one output line, in the input's order: the line's object (a bare JSON
value is taken as ``{"task": value}``) with ``decision`` added, or with ``error`` and ``line`` (its
line number) when the line is not JSON (then ``{"line", "raw", "error"}``), has no ``task`` or the
Router refuses the task. A line that is not valid UTF-8 (read with ``errors="surrogateescape"``, as
``dmr classify --batch`` reads its file, so that its bad bytes arrive as lone surrogates) is kept,
with those bytes replaced by U+FFFD, and its output line says so in ``warning`` (with ``line``). A
byte-order mark before the first line is ignored. Lines are classified a
block at a time with :meth:`~dmr.router.Router.classify_batch` (a line with a ``history`` goes
through :meth:`~dmr.router.Router.classify` with it).

With the Ray engine, each worker builds its own Router from the same ``dmr.yaml`` (and preset), so
the file and the paths it names must be readable at the same place on every node, as with any Ray
job; blocks go to the workers in turn and their lines come back in order. Ray is started locally
unless an address is given (or ``RAY_ADDRESS`` is set), with its usage statistics off.
"""

from __future__ import annotations

import json
import os
import socket
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from dmr.errors import ConfigError, DmrError, InputError
from dmr.layers.base import valid_unicode

__all__ = ["BLOCK", "LocalPool", "RayPool", "classify_lines", "classify_stream"]

BLOCK = 512  # lines a worker classifies at a time

Numbered = Sequence[tuple[int, str]]
T = TypeVar("T")


def classify_lines(router: Any, lines: Numbered) -> list[tuple[str, bool]]:
    """``(output line, classified)`` for each non-blank ``(number, line)`` of ``lines``."""
    records: list[dict[str, Any]] = []
    numbers: list[int] = []  # the input line of each record
    ok: list[bool] = []
    batched: list[int] = []
    replaced: list[int] = []  # the records of lines whose undecodable bytes were replaced
    for number, line in lines:
        if number == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark, as Excel and PowerShell write
        if not line.strip():
            continue
        numbers.append(number)
        text = valid_unicode(line)
        if text is not line:
            replaced.append(len(records))
            line = text
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError as exc:
            records.append({"line": number, "raw": line.rstrip("\r\n"), "error": f"invalid JSON: {exc.msg}"})
            ok.append(False)
            continue
        record = parsed if isinstance(parsed, dict) else {"task": parsed}
        records.append(record)
        ok.append(True)
        if "task" not in record:
            _settle(records, ok, len(records) - 1, InputError("no 'task' field"), number)
        elif record.get("history") is None:
            batched.append(len(records) - 1)
        else:
            _settle(records, ok, len(records) - 1, _attempt(router.classify, record.get("task"),
                                                            history=record.get("history")), number)
    results = router.classify_batch([records[i].get("task") for i in batched], return_exceptions=True)
    for i, result in zip(batched, results):
        _settle(records, ok, i, result, numbers[i])
    for i in replaced:
        records[i]["warning"] = "the line is not valid UTF-8; its undecodable bytes were replaced with U+FFFD"
        records[i].setdefault("line", numbers[i])
    # A lone surrogate (a "\ud800" escape in the input) cannot be written as UTF-8: it becomes U+FFFD.
    return [(valid_unicode(json.dumps(record, ensure_ascii=False, default=str)), good)
            for record, good in zip(records, ok)]


def _attempt(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except DmrError as exc:
        return exc


def _settle(records: list[dict[str, Any]], ok: list[bool], i: int, result: Any, number: int) -> None:
    if isinstance(result, DmrError):
        records[i]["error"] = str(result)
        records[i].setdefault("line", number)  # which input line, for a record that has no id
        ok[i] = False
    elif isinstance(result, BaseException):
        raise result  # not the task's fault: stop, as a single classify would
    else:
        records[i]["decision"] = result.to_dict()


def _blocks(lines: Iterable[str], size: int) -> Iterator[list[tuple[int, str]]]:
    block: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        block.append((number, line))
        if len(block) >= size:
            yield block
            block = []
    if block:
        yield block


def classify_stream(lines: Iterable[str], write: Callable[[str], None], *, router: Any = None,
                    config: Path | None = None, preset: str | None = None, engine: str = "local",
                    address: str | None = None, workers: int | None = None, block: int | None = None,
                    progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Classify JSONL ``lines`` and ``write`` each output line (without its newline), in order;
    returns ``(classified, failed)``. ``engine="local"`` uses ``router`` (default: one built from
    ``config`` and ``preset``); ``engine="ray"`` builds a
    Router from ``config``/``preset`` on each of ``workers`` Ray workers (default: one per CPU of
    the cluster) at ``address`` (default: ``RAY_ADDRESS``, else a local Ray started for the run).
    ``progress`` is told how many input lines each finished block held; ``block`` is the lines
    classified at a time (default :data:`BLOCK`)."""
    done = failed = 0
    block = block or BLOCK

    def emit(numbered: Numbered, results: list[tuple[str, bool]]) -> None:
        nonlocal done, failed
        for text, good in results:
            write(text)
            done, failed = done + good, failed + (not good)
        if progress is not None:
            progress(len(numbered))

    if engine == "local":
        pool: LocalPool | RayPool = LocalPool(router if router is not None else
                                              _router(str(config) if config else None, preset))
    elif engine == "ray":
        pool = RayPool(config, preset, address=address, workers=workers)
    else:
        raise ConfigError(f"unknown engine {engine!r} (local or ray)")
    with pool:
        for numbered, results in pool.ordered("classify", _blocks(lines, block)):
            emit(numbered, results)
    return done, failed


def _router(config: str | None, preset: str | None) -> Any:
    from dmr.router import Router

    extra = {"preset": preset} if preset else {}
    return Router.from_yaml(config, **extra) if config else Router(**extra)


class _Worker:
    """One Router's share of the work: a Ray actor built from the run's configuration, or, in
    :class:`LocalPool`, the caller's Router."""

    def __init__(self, config: str | None, preset: str | None, router: Any = None) -> None:
        self.router = router if router is not None else _router(config, preset)

    def classify(self, numbered: Numbered) -> list[tuple[str, bool]]:
        return classify_lines(self.router, numbered)

    def decide(self, tasks: list[Any]) -> list[Any]:
        return self.router.classify_batch(tasks)

    def difficulty(self, prompts: list[str]) -> list[float]:
        return [d.difficulty for d in self.router.classify_batch(prompts)]

    def close(self) -> None:
        self.router.close()  # flush the decision log, if the configuration keeps one


class LocalPool:
    """:class:`RayPool`'s interface in this process, on ``router`` (which it does not close)."""

    def __init__(self, router: Any) -> None:
        self._worker = _Worker(None, None, router)

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def ordered(self, method: str, blocks: Iterable[T]) -> Iterator[tuple[T, Any]]:
        """``(block, method(block))`` for each block, in order."""
        work = getattr(self._worker, method)
        return ((block, work(block)) for block in blocks)


class RayPool:
    """Ray workers, each with a Router built from ``config`` (a dmr.yaml path) and ``preset``.

    ``with RayPool(...) as pool``: Ray is joined at ``address`` (default: ``RAY_ADDRESS``, else a
    local Ray of its own is started, and stopped on leaving; ``"auto"`` joins a cluster started on
    this machine with ``ray start``), with ``workers`` actors (default: one per CPU of
    the cluster). :meth:`ordered` deals blocks of work to them in turn and yields the results in
    the blocks' order, with a bounded number in flight."""

    def __init__(self, config: Path | None = None, preset: str | None = None, *, address: str | None = None,
                 workers: int | None = None) -> None:
        self.config = str(Path(config).resolve()) if config else None
        self.preset, self.address, self.workers = preset, address, workers
        self._ray: Any = None
        self._started = False
        self._pool: list[Any] = []

    def __enter__(self) -> RayPool:
        try:
            import ray
        except ImportError:
            raise ConfigError("the Ray engine needs Ray: pip install 'dynamic-model-router[ray]'") from None
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports unless the user asks
        self._ray, self._started = ray, not ray.is_initialized()
        if self._started:
            # Without an address, a Ray of the run's own, even where `ray start` left a cluster
            # running that Ray would otherwise join ("auto" joins it).
            address = self.address or os.environ.get("RAY_ADDRESS") or "local"
            _check_reachable(address)
            ray.init(address=address, include_dashboard=False, configure_logging=False)
        try:
            cpus = float(ray.cluster_resources().get("CPU", 1))
            count = self.workers or max(1, int(cpus))
            # A worker per CPU; more workers than CPUs share them rather than wait for one.
            actor = ray.remote(num_cpus=min(1.0, cpus / count))(_Worker)
            self._pool = [actor.remote(self.config, self.preset) for _ in range(count)]
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def ordered(self, method: str, blocks: Iterable[T]) -> Iterator[tuple[T, Any]]:
        """``(block, the worker's method(block))`` for each block, in order."""
        pending: deque[tuple[T, Any]] = deque()
        for i, block in enumerate(blocks):
            pending.append((block, getattr(self._pool[i % len(self._pool)], method).remote(block)))
            if len(pending) >= 2 * len(self._pool):  # bounded: the input is read as the workers keep up
                first, ref = pending.popleft()
                yield first, self._ray.get(ref)
        while pending:
            first, ref = pending.popleft()
            yield first, self._ray.get(ref)

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        ray, pool, self._pool = self._ray, self._pool, []
        try:
            if pool and kind is None:
                ray.get([worker.close.remote() for worker in pool])
        finally:
            for worker in pool:
                ray.kill(worker)
            if self._started:
                ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail at once, not after Ray's minutes of retries, when nothing listens at a cluster's
    ``host:port`` (or ``ray://host:port``); ``auto`` and ``local`` are left to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"no Ray cluster answers at {address}: {exc.strerror or exc}") from None
