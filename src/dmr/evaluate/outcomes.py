"""Outcome files and prices: what ``dmr eval --outcomes`` and ``dmr train --outcomes`` read.

An outcome file is JSONL, one prompt a line::

    {"id": "...", "prompt": "...", "outcomes": {"model-a": 1.0, "model-b": 0.0},
     "benchmark": "mmlu", "category": "...", "contaminated": false}

``benchmark``, ``category`` and ``contaminated`` are optional; rows marked contaminated are left
out (and counted). A price file maps a model to ``[input, output, source]`` in USD per 1M tokens;
the cost of a call is ``(input + output) / 2``. Without a price file, prices come from the model
registry.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from dmr.datafiles import not_utf8, numbered_lines
from dmr.errors import InputError, UnknownModelError

__all__ = ["OutcomeRow", "OutcomeSet", "load_outcomes", "load_prices", "registry_prices", "resolve_prices",
           "rows_from_dicts"]


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    id: str
    prompt: str
    outcomes: Mapping[str, float]
    benchmark: str = ""
    category: str = ""


@dataclass(frozen=True)
class OutcomeSet:
    """The usable rows of one or more outcome files, and how many contaminated rows were left out."""

    rows: tuple[OutcomeRow, ...]
    contaminated: int = 0
    sources: tuple[str, ...] = field(default=())
    contaminated_by: Mapping[str, int] = field(default_factory=dict)  # per benchmark

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for r in self.rows for m in r.outcomes))

    @property
    def benchmarks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.benchmark for r in self.rows))

    def subset(self, benchmark: str) -> OutcomeSet:
        left_out = self.contaminated_by.get(benchmark, 0)
        return OutcomeSet(tuple(r for r in self.rows if r.benchmark == benchmark), left_out, self.sources,
                          {benchmark: left_out})

    def scored_by(self, models: Sequence[str]) -> OutcomeSet:
        """The rows that have a score for every model in ``models``."""
        return OutcomeSet(tuple(r for r in self.rows if all(m in r.outcomes for m in models)),
                          self.contaminated, self.sources, self.contaminated_by)


def _row(data: Any, where: str) -> OutcomeRow | None:
    """One row, or None when it is contaminated; InputError naming ``where`` when it is bad."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a JSON object")
    contaminated = data.get("contaminated", False)
    if not isinstance(contaminated, bool) and contaminated is not None:
        raise InputError(f"{where}: 'contaminated' must be true or false, got {contaminated!r}")
    if contaminated:
        return None
    prompt, outcomes = data.get("prompt"), data.get("outcomes")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError(f"{where}: 'prompt' must be a non-empty string")
    if not isinstance(outcomes, dict) or not outcomes:
        raise InputError(f"{where}: 'outcomes' must be a non-empty object of model -> score")
    scores: dict[str, float] = {}
    for model, value in outcomes.items():
        if not str(model).strip():
            raise InputError(f"{where}: a model name in 'outcomes' is empty")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"{where}: the score of {model!r} must be a number, got {value!r}")
        scores[str(model)] = float(value)
    return OutcomeRow(str(data.get("id", where)), prompt, scores, str(data.get("benchmark") or ""),
                      str(data.get("category") or ""))


def rows_from_dicts(items: Iterable[Mapping[str, Any]], source: str = "<rows>") -> OutcomeSet:
    """An :class:`OutcomeSet` from rows already parsed (e.g. ``dmr.store.outcomes.training_rows``)."""
    rows: list[OutcomeRow] = []
    dropped = 0
    for n, item in enumerate(items, 1):
        row = _row(dict(item), f"{source}: row {n}")
        if row is None:
            dropped += 1
        else:
            rows.append(row)
    return OutcomeSet(tuple(rows), dropped, (source,))


def load_outcomes(paths: str | Path | Iterable[str | Path]) -> OutcomeSet:
    """Read outcome JSONL files. A bad line raises :class:`~dmr.errors.InputError` naming it."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    rows: list[OutcomeRow] = []
    dropped = 0
    by: dict[str, int] = {}
    where_id: dict[str, str] = {}
    for p, n, line in numbered_lines(paths):
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{p}:{n}: not valid JSON: {exc.msg}") from None
        row = _row(data, f"{p}:{n}")
        if isinstance(data.get("id"), (str, int)):
            # Folds are dealt by id: two rows under one id would be one prompt counted twice, or two
            # prompts that always share a fold.
            first = where_id.setdefault(str(data["id"]), f"{p}:{n}")
            if first != f"{p}:{n}":
                raise InputError(f"{p}:{n}: id {data['id']!r} is already used at {first}; ids must be unique")
        if row is None:
            dropped += 1
            bench = str(data.get("benchmark") or "")
            by[bench] = by.get(bench, 0) + 1
        else:
            rows.append(row)
    return OutcomeSet(tuple(rows), dropped, tuple(str(p) for p in paths), by)


def load_prices(path: str | Path) -> dict[str, float]:
    """A price file (model → ``[input, output, source]`` USD per 1M) as model → cost of a call."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(not_utf8(path, exc)) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an object of model -> [input, output, source]")
    out: dict[str, float] = {}
    for model, entry in data.items():
        if model.startswith("_"):
            continue  # notes such as "_note"
        if (not isinstance(entry, list) or len(entry) < 2
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0
                           for x in entry[:2])):
            raise InputError(f"{path}: {model!r} must be [input, output, source]: two prices in USD per 1M tokens, "
                             f"finite and not negative (got {entry!r})")
        out[model] = (float(entry[0]) + float(entry[1])) / 2
    return out


def registry_prices(models: Sequence[str], registry: Any = None) -> dict[str, float]:
    """The cost of a call, ``(input + output) / 2`` per 1M tokens, of each priced model in the registry."""
    if registry is None:
        from dmr.registry import default_registry

        registry = default_registry()
    out = {}
    for name in models:
        spec = registry.model(name)
        if spec is not None and spec.priced:
            out[name] = (spec.input_per_1m + spec.output_per_1m) / 2
    return out


def resolve_prices(models: Sequence[str], prices: Mapping[str, float] | None = None) -> dict[str, float]:
    """The price of each of ``models`` from ``prices`` (a price file) or else the registry; raises
    :class:`~dmr.errors.UnknownModelError` naming every model without one."""
    found = dict(prices) if prices is not None else registry_prices(models)
    missing = [m for m in models if m not in found]
    if missing:
        where = "the price file" if prices is not None else "the model registry"
        raise UnknownModelError(f"no price for {', '.join(map(repr, missing))} in {where}; "
                                "pass --prices FILE (model -> [input, output, source], USD per 1M tokens)")
    return {m: found[m] for m in models}
