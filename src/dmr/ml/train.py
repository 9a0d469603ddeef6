"""Training a Layer 3 head from labelled JSONL, in numpy.

Rows are ``{"task", "task_type", "complexity"}`` (``language`` optional). The held-out split is
fixed by a hash of the task text (sha256 % 5 == 0, as in ``scripts/check_datasets.py``) and is never
trained on. Temperatures are fitted on out-of-fold logits of the training split (k-fold), so the
held-out split stays untouched for reporting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

import numpy as np

from dmr.datafiles import fold_of, numbered_lines
from dmr.errors import InputError
from dmr.ml.features import NgramFeaturizer
from dmr.ml.head import NgramHead

T = TypeVar("T")

__all__ = ["Example", "fold_of", "is_heldout", "l1_signals", "load_examples", "out_of_fold_logits", "read_rows",
           "train_head"]


@dataclass(frozen=True, slots=True)
class Example:
    task: str
    task_type: str
    complexity: str | None  # None: the row teaches the task type only
    language: str = ""


def is_heldout(task: str) -> bool:
    """The fixed test split: sha256 of the task text divisible by 5."""
    return fold_of(task) == 0


def read_rows(paths: str | Path | Iterable[str | Path], parse: Callable[[dict[str, Any]], T]) -> list[T]:
    """``parse`` applied to every row of JSONL files (a file, a folder of ``*.jsonl``, or several),
    each row's ``task`` checked to be a non-empty string first. An unreadable file or a bad line
    (``parse`` raising ValueError, KeyError or TypeError) raises :class:`~dmr.errors.InputError`
    naming the file and line."""
    out: list[T] = []
    for file, n, line in numbered_lines(paths, folders=True):
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{file}:{n}: not valid JSON: {exc}") from None
        try:
            if not isinstance(row, dict):
                raise ValueError(f"expected a JSON object, got {type(row).__name__}")
            task = row.get("task")
            if not isinstance(task, str) or not task.strip():
                raise ValueError("'task' must be a non-empty string")
            out.append(parse(row))
        except KeyError as exc:
            raise InputError(f"{file}:{n}: no {exc} field") from None
        except (ValueError, TypeError) as exc:
            raise InputError(f"{file}:{n}: {exc}") from None
    return out


def load_examples(paths: str | Path | Iterable[str | Path], *, types_only: bool = False) -> list[Example]:
    """Read labelled JSONL files (a file, a folder of ``*.jsonl``, or several). Bad lines raise
    :class:`~dmr.errors.InputError` naming the file and line. ``types_only``: read ``task_type``
    alone (the examples' complexity is None)."""
    from dmr.types import TaskComplexity, TaskType

    return read_rows(paths, lambda row: Example(
        row["task"], str(TaskType(row["task_type"])),
        None if types_only else str(TaskComplexity(row["complexity"])), str(row.get("language") or "")))


def _l1_layer(languages: Iterable[str]) -> Any:
    from dmr.layers.keywords import KeywordLayer
    from dmr.packs import bundled_packs

    wanted = set(languages)
    packs = [p for p in bundled_packs() if p.language in wanted]
    unknown = wanted - {p.language for p in packs}
    if unknown:
        raise InputError(f"no bundled Layer 1 pack for {', '.join(sorted(unknown))}")
    return KeywordLayer(packs)


def l1_signals(texts: Sequence[str], layer: Any = None) -> list[Any]:
    """Layer 1's signals for each text (what the router hands Layer 3 at run time)."""
    from dmr.layers.base import Context

    if layer is None:
        from dmr.layers.keywords import KeywordLayer
        from dmr.packs import bundled_packs

        layer = KeywordLayer(bundled_packs())
    out = []
    for text in texts:
        ctx = Context(text=text, length=len(text))
        layer.classify(text, ctx)
        out.append(ctx.signals.get("l1"))
    return out


# The ask view (:class:`~dmr.ml.features.NgramFeaturizer`): the opening and the end of a long text,
# 300 characters each, hashed apart from the rest, where a request around pasted material sits.
ASK_CHARS = 300


def _labels(examples: Sequence[Example]) -> tuple[list[str], list[str]]:
    from dmr.types import TaskComplexity, TaskType

    return [str(t) for t in TaskType], [str(c) for c in TaskComplexity]


def _fit(examples: Sequence[Example], signals: Sequence[Any], featurizer_params: dict[str, Any], l2: float,
         max_iter: int, progress: Callable[[int, float], None] | None = None, encoder: Any = None) -> NgramHead:
    types, levels = _labels(examples)
    params = {"ask_chars": ASK_CHARS, **featurizer_params}
    head = NgramHead(NgramFeaturizer(**params), l2=l2, max_iter=max_iter, encoder=encoder)
    return head.fit([e.task for e in examples], [e.task_type for e in examples], [e.complexity for e in examples],
                    signals, type_labels=types, complexity_labels=levels, progress=progress)


def out_of_fold_logits(examples: Sequence[Example], signals: Sequence[Any], *, folds: int = 5, rounds: int = 1,
                       featurizer_params: dict[str, Any] | None = None, l2: float = 1e-5, max_iter: int = 300,
                       on_fold: Callable[[int], None] | None = None, encoder: Any = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Logits from heads that did not see the rows they score: the rows are split in ``folds`` by a
    second hash and the first ``rounds`` folds are each scored by a head trained on the others.
    Returns the logits and the indices of the rows they belong to."""
    params = featurizer_params or {}
    fold = np.array([fold_of("oof:" + e.task, folds) for e in examples])
    out: np.ndarray | None = None
    for f in range(min(rounds, folds)):
        train = np.flatnonzero(fold != f)
        test = np.flatnonzero(fold == f)
        head = _fit([examples[i] for i in train], [signals[i] for i in train], params, l2, max_iter,
                    encoder=encoder)
        z = head.logits([examples[i].task for i in test], [signals[i] for i in test])
        if out is None:
            out = np.zeros((len(examples), z.shape[1]))
        out[test] = z
        if on_fold is not None:
            on_fold(f)
    assert out is not None
    scored = np.flatnonzero(fold < min(rounds, folds))
    return out[scored], scored


def train_head(examples: Sequence[Example], *, featurizer_params: dict[str, Any] | None = None,
               l2: float = 1e-5, max_iter: int = 150, calibration_folds: int = 5, calibration_rounds: int = 1,
               progress: Callable[[str, int, float], None] | None = None, encoder: Any = None,
               l1_layer: Any = None) -> tuple[NgramHead, tuple[np.ndarray, np.ndarray] | None]:
    """Train a head on ``examples`` (callers leave the held-out split out) and calibrate its
    temperatures on out-of-fold logits. Returns the head and ``(logits, row indices)`` of those
    out-of-fold predictions (None when there are too few rows to hold some out). ``encoder``
    (from :func:`dmr.ml.encoder.load_encoder`) adds sentence embeddings to the features.
    ``l1_layer``: the Layer 1 whose signals the head learns from (default: every bundled pack)."""
    if len(examples) < 2:
        raise InputError("training needs at least two labelled examples")
    texts = [e.task for e in examples]
    signals = l1_signals(texts, l1_layer)
    oof = None
    if calibration_folds >= 2 and len(examples) >= 10 * calibration_folds:
        oof = out_of_fold_logits(examples, signals, folds=calibration_folds, rounds=calibration_rounds,
                                 featurizer_params=featurizer_params, l2=l2, max_iter=max_iter, encoder=encoder,
                                 on_fold=(lambda f: progress("calibrate", f + 1, calibration_rounds))
                                 if progress else None)
    head = _fit(examples, signals, featurizer_params or {}, l2, max_iter,
                (lambda it, loss: progress("fit", it + 1, loss)) if progress else None, encoder=encoder)
    if oof is not None:
        logits, rows = oof
        head.calibrate(logits, [examples[i].task_type for i in rows], [examples[i].complexity for i in rows])
    return head, oof


def trained_on(train: int, heldout: int, type_only: int = 0) -> str:
    """What a head's metadata says it was trained on (``trained_on`` in its JSON)."""
    out = f"{train} rows ({heldout} held out by hash)"
    return out + f", and {type_only} rows for the task type only" if type_only else out


def train_and_save(data: str | Path | Iterable[str | Path], output: str | Path, *, max_iter: int = 150,
                   l2: float = 1e-5, progress: Callable[[str, int, float], None] | None = None,
                   encoder: Any = "default", capability: str | Path | Iterable[str | Path] | None = None,
                   type_data: str | Path | Iterable[str | Path] | None = None,
                   l1_languages: Iterable[str] | None = None) -> dict[str, Any]:
    """Train a head on ``data`` less its held-out split (the hash split), score it on that split,
    save it to ``output`` (``.npz`` + ``.json``) and return the report (``path``, ``heldout``).
    ``encoder``: an encoder object, a directory, ``"default"`` (the shipped static encoder) or
    None / ``"none"`` (n-grams and signals only). ``capability``: capability-labelled JSONL
    (``datasets/capability/README.md``) for the head's ``needs`` output (:mod:`dmr.ml.needs`), held out and
    scored by the same hash split; without it the head has none and difficulty comes from the type
    gaps (:mod:`dmr.difficulty`). ``type_data``: more rows (``task``, ``task_type``) that teach the
    task type only, less their own held-out split; the held-out report stays on ``data``'s split.
    ``l1_languages``: the bundled Layer 1 packs whose signals the head learns from (default: all);
    the held-out report reads every pack, as a Router does."""
    from dmr.ml.evaluate import evaluate_head

    if isinstance(encoder, (str, Path)):
        from dmr.ml.encoder import EncoderUnavailable, load_encoder

        try:
            encoder = None if encoder == "none" else load_encoder(None if encoder == "default" else encoder)
        except EncoderUnavailable as exc:
            raise InputError(f"encoder: {exc}") from None

    examples = load_examples(data)
    train = [e for e in examples if not is_heldout(e.task)]
    test = [e for e in examples if is_heldout(e.task)]
    if len(train) < 2:
        raise InputError(f"training needs at least two labelled rows outside the held-out split; got {len(train)}")
    for field, kinds in (("task type", {e.task_type for e in train}), ("complexity", {e.complexity for e in train})):
        if len(kinds) < 2:
            # A head that has seen one label gives it to everything, at full confidence.
            raise InputError(f"the training rows hold one {field} only ({', '.join(map(str, kinds))}): a head "
                             f"needs examples of at least two to tell them apart")
    extra = [] if type_data is None else [e for e in load_examples(type_data, types_only=True)
                                          if not is_heldout(e.task)]
    l1_layer = None if l1_languages is None else _l1_layer(l1_languages)
    head, _ = train_head(train + extra, l2=l2, max_iter=max_iter, progress=progress, encoder=encoder,
                         l1_layer=l1_layer)
    heldout = evaluate_head(head, test) if test else None
    if heldout is not None:
        heldout.pop("confidence", None)
    needs = None
    if capability is not None:
        from dmr.ml.needs import fit_and_score

        needs = fit_and_score(head, capability, l1_layer=l1_layer)
    path = head.save(output, trained_on=trained_on(len(train), len(test), len(extra)), heldout=heldout,
                     needs_report=needs)
    return {"path": str(path), "train_rows": len(train), "type_rows": len(extra), "heldout_rows": len(test),
            "heldout": heldout, "needs": needs}
