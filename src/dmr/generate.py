"""Synthetic training data through any configured provider (``dmr generate-data``).

For each slot — a task type × complexity pair — the provider is asked, with a JSON schema, for
example tasks of a domain. Every candidate is validated (text of a sensible length, no attempt to
steer a classifier) and de-duplicated (case, spacing and punctuation ignored) against everything
written so far, including the lines already in the file when appending. Records are JSONL in the
format ``dmr train`` reads: ``task``, ``task_type``, ``complexity``, plus ``domain`` and ``source``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from dmr.layers.prompt import _COMPLEXITY_HELP, _TYPE_HELP, INJECTION
from dmr.providers import Provider
from dmr.providers.base import InvalidAnswer, ProviderCallError
from dmr.types import TaskComplexity, TaskType

__all__ = ["GenerationReport", "generate", "normalise", "read_existing"]

_SYSTEM = ("You write realistic example requests that people send to an AI assistant. They are used to "
           "train a classifier that decides how capable a model each request needs. Answer with one JSON "
           'object: {"tasks": [ ... ]}, a list of distinct requests, each written as the person would type it.')
_SCHEMA = {"type": "object", "properties": {"tasks": {"type": "array", "items": {"type": "string"}}},
           "required": ["tasks"], "additionalProperties": False}
_BATCH = 8
_WORD = re.compile(r"\w+")


@dataclass
class GenerationReport:
    written: int = 0
    duplicates: int = 0
    invalid: int = 0
    failed_calls: int = 0
    short_slots: list[str] = field(default_factory=list)


def normalise(task: str) -> str:
    """The de-duplication key: words only, case-folded."""
    return " ".join(_WORD.findall(task.casefold()))


def read_existing(path: Path) -> set[str]:
    """The keys of the tasks already in a JSONL file (unreadable lines are ignored)."""
    keys: set[str] = set()
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("task"), str):
                keys.add(normalise(record["task"]))
    return keys


def _valid(task: Any) -> str | None:
    if not isinstance(task, str):
        return None
    task = " ".join(task.split())
    words = len(task.split())
    if not 3 <= words <= 300 or len(task) > 4000 or INJECTION.search(task):
        return None
    return task


def _prompt(domain: str, task_type: TaskType, complexity: TaskComplexity, count: int) -> str:
    kind = f"{task_type} ({_TYPE_HELP[task_type]})" if task_type in _TYPE_HELP else str(task_type)
    level = f"{complexity} ({_COMPLEXITY_HELP[complexity]})" if complexity in _COMPLEXITY_HELP else str(complexity)
    return (f"Domain: {json.dumps(domain, ensure_ascii=False)}.\nWrite {count} different requests in this domain "
            f"whose kind of work is {kind} and whose difficulty is {level}. Vary the wording and the subject.")


def generate(provider: Provider, domain: str, per_slot: int, *,
             task_types: Sequence[TaskType] | None = None, complexities: Sequence[TaskComplexity] | None = None,
             seen: Iterable[str] = (), timeout: float = 60.0, max_rounds: int | None = None,
             report: GenerationReport | None = None,
             on_record: Callable[[dict[str, Any]], None] | None = None) -> Iterator[dict[str, Any]]:
    """Yield up to ``per_slot`` new records for every slot. ``report`` (if given) is filled in as it
    goes; three failed calls in a row stop the run with the last :class:`ProviderCallError`."""
    report = report if report is not None else GenerationReport()
    keys = set(seen)
    rounds = max_rounds if max_rounds is not None else 3 + per_slot // _BATCH * 2
    failures_in_a_row = 0
    model = getattr(provider, "model", "") or getattr(provider, "name", "")
    for task_type in task_types or list(TaskType):
        for complexity in complexities or list(TaskComplexity):
            got = 0
            for _ in range(rounds):
                if got >= per_slot:
                    break
                want = min(_BATCH, per_slot - got)
                try:
                    completion = provider.complete_json(_SYSTEM, _prompt(domain, task_type, complexity, want),
                                                        _SCHEMA, timeout=timeout, max_tokens=120 * want + 50)
                except InvalidAnswer:
                    report.failed_calls += 1
                    continue
                except ProviderCallError:
                    report.failed_calls += 1
                    failures_in_a_row += 1
                    if failures_in_a_row >= 3:
                        raise
                    continue
                failures_in_a_row = 0
                data = completion.data
                candidates = data.get("tasks") if isinstance(data, dict) else None
                if not isinstance(candidates, list):
                    report.failed_calls += 1
                    continue
                for candidate in candidates:
                    task = _valid(candidate)
                    if task is None:
                        report.invalid += 1
                        continue
                    key = normalise(task)
                    if key in keys:
                        report.duplicates += 1
                        continue
                    keys.add(key)
                    got += 1
                    report.written += 1
                    record = {"task": task, "task_type": str(task_type), "complexity": str(complexity),
                              "domain": domain, "source": f"generated:{model}"}
                    if on_record is not None:
                        on_record(record)
                    yield record
                    if got >= per_slot:
                        break
            if got < per_slot:
                report.short_slots.append(f"{task_type}/{complexity}: {got} of {per_slot}")
