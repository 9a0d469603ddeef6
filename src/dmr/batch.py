"""Classifying a JSONL file of tasks, in this process or spread over a Ray cluster.

Every non-blank line gives one output line, in the input's order: the line's object (a bare JSON
value is taken as ``{"task": value}``) with ``decision`` added, or with ``error`` when the line is
not JSON (then ``{"line", "raw", "error"}``) or the Router refuses the task. Lines are classified a
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
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from dmr.errors import ConfigError, DmrError

__all__ = ["BLOCK", "classify_lines", "classify_stream"]

BLOCK = 512  # lines a worker classifies at a time

Numbered = Sequence[tuple[int, str]]


def classify_lines(router: Any, lines: Numbered) -> list[tuple[str, bool]]:
    """``(output line, classified)`` for each non-blank ``(number, line)`` of ``lines``."""
    records: list[dict[str, Any]] = []
    ok: list[bool] = []
    batched: list[int] = []
    for number, line in lines:
        if not line.strip():
            continue
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError as exc:
            records.append({"line": number, "raw": line.rstrip("\n"), "error": f"invalid JSON: {exc.msg}"})
            ok.append(False)
            continue
        record = parsed if isinstance(parsed, dict) else {"task": parsed}
        records.append(record)
        ok.append(True)
        if record.get("history") is None:
            batched.append(len(records) - 1)
        else:
            _settle(records, ok, len(records) - 1, _attempt(router.classify, record.get("task"),
                                                            history=record.get("history")))
    results = router.classify_batch([records[i].get("task") for i in batched], return_exceptions=True)
    for i, result in zip(batched, results):
        _settle(records, ok, i, result)
    return [(json.dumps(record, ensure_ascii=False, default=str), good) for record, good in zip(records, ok)]


def _attempt(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except DmrError as exc:
        return exc


def _settle(records: list[dict[str, Any]], ok: list[bool], i: int, result: Any) -> None:
    if isinstance(result, DmrError):
        records[i]["error"] = str(result)
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
    returns ``(classified, failed)``. ``engine="local"`` uses ``router``; ``engine="ray"`` builds a
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
        for numbered in _blocks(lines, block):
            emit(numbered, classify_lines(router, numbered))
    elif engine == "ray":
        _on_ray(lines, emit, config, preset, address, workers, block)
    else:
        raise ConfigError(f"unknown engine {engine!r} (local or ray)")
    return done, failed


class _Worker:
    """A Ray actor holding one Router, built from the run's configuration."""

    def __init__(self, config: str | None, preset: str | None) -> None:
        from dmr.router import Router

        extra = {"preset": preset} if preset else {}
        self.router = Router.from_yaml(config, **extra) if config else Router(**extra)

    def classify(self, numbered: Numbered) -> list[tuple[str, bool]]:
        return classify_lines(self.router, numbered)

    def close(self) -> None:
        self.router.close()  # flush the decision log, if the configuration keeps one


def _on_ray(lines: Iterable[str], emit: Callable[[Numbered, list[tuple[str, bool]]], None], config: Path | None,
            preset: str | None, address: str | None, workers: int | None, block: int) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError("the Ray engine needs Ray: pip install 'dynamic-model-router[ray]'") from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports unless the user asks
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, configure_logging=False)  # None: RAY_ADDRESS, else local
    try:
        cpus = float(ray.cluster_resources().get("CPU", 1))
        count = workers or max(1, int(cpus))
        # A worker per CPU; more workers than CPUs share them rather than wait for one.
        actor = ray.remote(num_cpus=min(1.0, cpus / count))(_Worker)
        pool = [actor.remote(str(Path(config).resolve()) if config else None, preset) for _ in range(count)]
        pending: deque[tuple[Numbered, Any]] = deque()
        try:
            for i, numbered in enumerate(_blocks(lines, block)):
                pending.append((numbered, pool[i % count].classify.remote(numbered)))
                if len(pending) >= 2 * count:  # bounded: the file is read as the workers keep up
                    first, ref = pending.popleft()
                    emit(first, ray.get(ref))
            while pending:
                first, ref = pending.popleft()
                emit(first, ray.get(ref))
            ray.get([worker.close.remote() for worker in pool])
        finally:
            for worker in pool:
                ray.kill(worker)
    finally:
        if started:
            ray.shutdown()

