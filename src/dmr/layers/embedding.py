"""Layer 3: the embedded, offline ML classifier (numpy only, about a tenth of a millisecond).

The head (``dmr.ml.head.NgramHead``) scores hashed word and character n-grams of the task plus
Layer 1's signals, so it confirms or overrules a weakly confident Layer 1 answer with what it
learnt from the team's labelled tasks. A *strategy* turns the head's probabilities into a verdict;
the built-in ``"tier"`` strategy reports the probability that the tier the verdict maps to is the
right one, which is what the router's ``layer3_threshold`` is compared with.

A missing or corrupt head, or a missing numpy, makes the layer raise ``LayerUnavailable`` with the
reason, which the router records in the decision's trace before moving on.
"""

from __future__ import annotations

import inspect
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from dmr.difficulty import expected_difficulty
from dmr.errors import ConfigError
from dmr.layers.base import Context, LayerUnavailable
from dmr.types import TaskComplexity, TaskType, Verdict

__all__ = ["DEFAULT_HEAD", "DEFAULT_THRESHOLD", "EmbeddingLayer", "L3Scores", "l3_strategies",
           "register_l3_strategy"]

DEFAULT_HEAD = Path(__file__).resolve().parents[1] / "data" / "l3" / "head.npz"
# The default `layer3_threshold` (see the README's "Layer 3" section for how it was chosen).
DEFAULT_THRESHOLD = 0.6


@dataclass(frozen=True, slots=True)
class L3Scores:
    """What the head says about one task, handed to a strategy. Probabilities are calibrated
    (temperature-scaled) and keyed by label; ``tier_of`` maps (type, complexity) to a tier with
    the router's tier matrix; ``l1`` is Layer 1's verdict when Layer 1 ran."""

    type_probs: Mapping[str, float]
    complexity_probs: Mapping[str, float]
    tier_of: Callable[[str, str], Any]
    l1: Verdict | None
    # The same probabilities as numpy arrays (label order), and the tier of every (type,
    # complexity) cell as a small integer, for strategies that compute with arrays.
    type_array: Any = None
    complexity_array: Any = None
    tier_grid: Any = None
    # The head's ``needs`` output (0..1, how strong a model the task needs), None without one.
    needs: float | None = None

    @property
    def difficulty(self) -> float:
        """The task's difficulty (:mod:`dmr.difficulty`): the head's ``needs`` output when it has
        one, else the expected type gap times the expected complexity position."""
        return self.needs if self.needs is not None else _difficulty(self.type_probs, self.complexity_probs)

    def tier_probability(self, task_type: str, complexity: str) -> float:
        """The probability that the tier of ``(task_type, complexity)`` is the right tier."""
        if self.tier_grid is not None:
            t, c = list(self.type_probs).index(task_type), list(self.complexity_probs).index(complexity)
            same = self.tier_grid == self.tier_grid[t, c]
            return float(self.type_array @ same @ self.complexity_array)
        tier = self.tier_of(task_type, complexity)
        return sum(pt * pc for a, pt in self.type_probs.items() for b, pc in self.complexity_probs.items()
                   if self.tier_of(a, b) == tier)


Strategy = Callable[..., Any]
_STRATEGIES: dict[str, tuple[Strategy, frozenset[str]]] = {}
_LOCK = threading.Lock()
_EXTRAS = ("scores", "ctx")


def register_l3_strategy(name: str, fn: Strategy) -> Strategy:
    """Register a Layer 3 strategy under ``name``; a Router picks it with ``layer3_strategy=name``.

    A strategy is called as ``fn(task, history)``, plus the keyword arguments it names among
    ``scores`` (the head's :class:`L3Scores`) and ``ctx`` (the decision's context), and returns a
    :class:`~dmr.types.Verdict`, a mapping with ``task_type``, ``complexity`` and ``confidence``
    (``difficulty`` optional), or ``None`` to pass. Returns ``fn``."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("an L3 strategy needs a non-empty string name")
    if not callable(fn):
        raise ConfigError(f"L3 strategy {name!r} is not callable")
    try:
        params = inspect.signature(fn).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            wants = frozenset(_EXTRAS)
        else:
            wants = frozenset(k for k in _EXTRAS if k in params)
    except (TypeError, ValueError):
        wants = frozenset()
    with _LOCK:
        _STRATEGIES[name.strip()] = (fn, wants)
    return fn


def _as_verdict(result: Any, strategy: str) -> Verdict | None:
    if result is None or isinstance(result, Verdict):
        return result
    if isinstance(result, Mapping):
        try:
            return Verdict(TaskType(result["task_type"]), TaskComplexity(result["complexity"]),
                           float(result["confidence"]), float(result.get("difficulty", 0.5)), "layer3",
                           str(result.get("reasoning", f"Layer 3 strategy {strategy!r}")))
        except (KeyError, TypeError, ValueError) as exc:
            raise TypeError(f"L3 strategy {strategy!r} returned a mapping without a valid {exc}") from None
    raise TypeError(f"L3 strategy {strategy!r} returned {type(result).__name__}; expected Verdict, mapping or None")


def _escalator_floor(verdict: Verdict | None, ctx: Context) -> Verdict | None:
    """Short but hard tasks are the head's weak spot ("Design a distributed lock…"): when Layer 1
    found two or more (un-negated) escalators, Layer 3 may not call the task easier than Layer 1
    did. The type stays Layer 3's."""
    signals = ctx.signals.get("l1")
    if verdict is None or signals is None or len(signals.escalators) < 2:
        return verdict
    l1 = next((v for v in ctx.verdicts if v.layer == "layer1"), None)
    if l1 is None or l1.complexity.rank <= verdict.complexity.rank:
        return verdict
    return Verdict(verdict.task_type, l1.complexity, verdict.confidence, max(verdict.difficulty, l1.difficulty),
                   verdict.layer, verdict.reasoning + f"; kept at {l1.complexity} for Layer 1's escalators "
                   f"({', '.join(signals.escalators[:3])})")


def l3_strategies() -> tuple[str, ...]:
    with _LOCK:
        return tuple(sorted(_STRATEGIES))


def _difficulty(types: Mapping[str, float], cx: Mapping[str, float]) -> float:
    """How much the task needs a stronger model, 0..1 (:mod:`dmr.difficulty`): the expected
    position on the complexity scale (simple 0, standard 1/3, complex 2/3, research 1) under the
    head's calibrated probabilities, scaled by the expected type gap. The router places it inside
    the band of the decided tier; ``dmr.quality``'s prior reads it directly."""
    top = max(len(cx) - 1, 1)
    return expected_difficulty(types, sum(p * i for i, p in enumerate(cx.values())) / top)


def _relation(l1: Verdict | None, task_type: str, complexity: str) -> str:
    if l1 is None:
        return ""
    if l1.task_type == task_type and l1.complexity == complexity:
        return "; confirms Layer 1"
    return f"; overrules Layer 1 ({l1.task_type}, {l1.complexity})"


def _tier_strategy(task: str, history: Any, scores: L3Scores) -> Verdict:
    """Arg-max type and complexity; confidence = probability that their tier is the right tier."""
    tp, cp = scores.type_probs, scores.complexity_probs
    task_type = max(tp, key=tp.__getitem__)
    complexity = max(cp, key=cp.__getitem__)
    confidence = scores.tier_probability(task_type, complexity)
    return Verdict(TaskType(task_type), TaskComplexity(complexity), round(min(confidence, 1.0), 4),
                   scores.difficulty, "layer3",
                   f"Layer 3: {task_type} (p={tp[task_type]:.2f}), {complexity} (p={cp[complexity]:.2f})"
                   + _relation(scores.l1, task_type, complexity))


def _min_strategy(task: str, history: Any, scores: L3Scores) -> Verdict:
    """Arg-max type and complexity; confidence = the smaller of their two probabilities."""
    tp, cp = scores.type_probs, scores.complexity_probs
    task_type = max(tp, key=tp.__getitem__)
    complexity = max(cp, key=cp.__getitem__)
    return Verdict(TaskType(task_type), TaskComplexity(complexity), round(min(tp[task_type], cp[complexity]), 4),
                   scores.difficulty, "layer3",
                   f"Layer 3: {task_type} (p={tp[task_type]:.2f}), {complexity} (p={cp[complexity]:.2f})"
                   + _relation(scores.l1, task_type, complexity))


register_l3_strategy("tier", _tier_strategy)
register_l3_strategy("min", _min_strategy)

# Loaded heads are read-only after loading, so Routers share one copy per file and encoder version.
_HEADS: dict[tuple[str, float, int, str], Any] = {}
_HEADS_LOCK = threading.Lock()


def load_head(path: str | Path, encoder: str | Path | None = None) -> Any:
    """Load (once per file version) the head at ``path``, running on the sentence encoder in the
    directory ``encoder`` (None: the package's own); raises LayerUnavailable with the reason."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        raise LayerUnavailable("numpy is not installed (pip install 'dynamic-model-router[ml]')") from None
    from dmr.ml.head import HeadFormatError, NgramHead

    p = Path(path).expanduser()
    if p.suffix != ".npz":
        p = p.with_suffix(".npz")
    try:
        stat = p.stat()
    except OSError:
        raise LayerUnavailable(f"Layer 3 head not found: {p}") from None
    key = (str(p.resolve()), stat.st_mtime, stat.st_size, os.fspath(encoder) if encoder is not None else "")
    head = _HEADS.get(key)
    if head is None:
        from dmr.ml.encoder import EncoderUnavailable, load_encoder

        with _HEADS_LOCK:
            head = _HEADS.get(key)
            if head is None:
                try:
                    head = NgramHead.load(p, load_encoder(encoder) if encoder is not None else None)
                except EncoderUnavailable as exc:
                    raise LayerUnavailable(f"Layer 3 encoder unusable: {exc}") from None
                except HeadFormatError as exc:
                    raise LayerUnavailable(f"Layer 3 head unusable: {exc}") from None
                _HEADS[key] = head
    return head


_KEYWORDS: list[Any] = []


def _keyword_signals(task: str) -> Any:
    if not _KEYWORDS:
        from dmr.layers.keywords import KeywordLayer
        from dmr.packs import bundled_packs

        with _LOCK:
            if not _KEYWORDS:
                _KEYWORDS.append(KeywordLayer(bundled_packs()))
    scratch = Context(text=task, length=len(task))
    _KEYWORDS[0].classify(task, scratch)
    return scratch.signals.get("l1")


class EmbeddingLayer:
    """Layer 3. Loads its head on first use (or at once with ``eager=True``)."""

    name = "layer3"

    def __init__(self, head: str | Path | None = None, strategy: str = "tier", tier_of: Callable[[str, str], Any]
                 | None = None, *, eager: bool = False, encoder: str | Path | None = None) -> None:
        with _LOCK:
            found = _STRATEGIES.get(strategy)
        if found is None:
            raise ConfigError(f"layer3_strategy: unknown strategy {strategy!r} (known: {', '.join(l3_strategies())})",
                              [("layer3_strategy", f"unknown strategy {strategy!r}")])
        self.head_path = Path(os.fspath(head)) if head is not None else DEFAULT_HEAD
        self.encoder = encoder
        self.strategy = strategy
        self._strategy, self._wants = found
        if tier_of is None:
            from dmr.tiers import TierMatrix

            tier_of = TierMatrix().tier
        self._tier_of = tier_of
        self._head: Any = None
        self._grid: Any = None
        self._local = threading.local()  # per-thread results of prime()
        self._labels: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
        if eager:
            self._load()

    def _load(self) -> Any:
        head = self._head
        if head is None:
            head = load_head(self.head_path, self.encoder)
            known_t, known_c = set(map(str, TaskType)), set(map(str, TaskComplexity))
            unknown = [x for x in head.type_labels_ if x not in known_t] + \
                      [x for x in head.complexity_labels_ if x not in known_c]
            if unknown:
                raise LayerUnavailable(f"Layer 3 head predicts labels this process does not know: {unknown} "
                                       "(register_task_type them first)")
            self._labels = (tuple(head.type_labels_), tuple(head.complexity_labels_))
            self._head = head
        return head

    def available(self) -> tuple[bool, str]:
        """Whether the layer can run here, and why not."""
        try:
            self._load()
        except LayerUnavailable as exc:
            return False, str(exc)
        encoder = getattr(self._head, "encoder", None)
        return True, f"head {self.head_path.name}" + (f", encoder {encoder.name}" if encoder is not None else "")

    def scores(self, task: str, ctx: Context) -> L3Scores:
        head = self._load()
        signals = ctx.signals.get("l1")
        primed = getattr(self._local, "primed", None)
        found = primed.get(task) if primed else None
        if found is not None and found[0] is signals:  # prime() ran the head with these signals
            p_type, p_cx, needs = found[2:]
        else:
            if signals is None:
                # The head was trained with Layer 1's signals; compute them when Layer 1 is off.
                signals = _keyword_signals(task)
            z = head.logits_one(task, signals, None if found is None else found[1])
            p_type, p_cx = (p[0] for p in head.proba_from_logits(z))
            needs = head.needs_from_logits(z)
            needs = None if needs is None else float(needs[0])
        types, levels = self._labels
        l1 = next((v for v in reversed(ctx.verdicts) if v.layer == "layer1"), None)
        grid = self._grid
        if grid is None:
            import numpy as np

            cells = [[self._tier_of(t, c) for c in levels] for t in types]
            ids = {tier: i for i, tier in enumerate(dict.fromkeys(x for row in cells for x in row))}
            grid = self._grid = np.array([[ids[x] for x in row] for row in cells])
        found = L3Scores(dict(zip(types, p_type.tolist())), dict(zip(levels, p_cx.tolist())), self._tier_of,
                         l1, p_type, p_cx, grid, needs)
        ctx.signals["l3"] = found
        return found

    def difficulty(self, task: str, ctx: Context) -> float | None:
        """The head's difficulty for ``task`` (see :attr:`L3Scores.difficulty`), reusing this
        decision's scores when Layer 3 already ran; None when the layer cannot run here."""
        found = ctx.signals.get("l3")
        if found is None:
            try:
                found = self.scores(task, ctx)
            except LayerUnavailable:
                return None
        return found.difficulty

    def classify(self, task: str, ctx: Context) -> Verdict | None:
        extra: dict[str, Any] = {}
        if "scores" in self._wants:
            extra["scores"] = self.scores(task, ctx)
        else:
            self._load()  # a strategy that ignores the head still needs Layer 3 to be usable
        if "ctx" in self._wants:
            extra["ctx"] = ctx
        return _escalator_floor(_as_verdict(self._strategy(task, ctx.history, **extra), self.strategy), ctx)

    def prime(self, tasks: list[str], signals: Mapping[str, Any] | None = None) -> None:
        """Run the head on many tasks at once (``Router.classify_batch`` calls this), its n-gram
        part in one vectorised pass, with Layer 1's ``signals`` of each (text -> signals; those
        missing are computed as ``classify`` would); ``classify`` then uses the results for those
        texts in this thread until :meth:`unprime`, when Layer 1 gave it the same signals."""
        try:
            head = self._load()
        except LayerUnavailable:
            return  # classify will pass with the reason
        texts = list(dict.fromkeys(t for t in tasks if isinstance(t, str) and t.strip()))
        if not texts:
            return
        given = [(signals or {}).get(t) for t in texts]
        sparse, z = head.parts_and_logits(texts, [s if s is not None else _keyword_signals(t)
                                                  for t, s in zip(texts, given)])
        p_type, p_cx = head.proba_from_logits(z)
        needs = head.needs_from_logits(z)
        needs = [None] * len(texts) if needs is None else needs.tolist()
        self._local.primed = {t: entry for t, *entry in zip(texts, given, sparse, p_type, p_cx, needs)}

    def unprime(self) -> None:
        self._local.primed = None
