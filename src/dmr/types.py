"""The taxonomy (task types, complexities, tiers) and the two result objects, Verdict and Decision.

The three taxonomies are *open* enumerations: they behave like ``str`` enums (``TaskType.MATH ==
"math"``, ``TaskType("math") is TaskType.MATH``, iteration in definition order) but a program can
add members at run time with :func:`register_task_type` or replace the ordered tier list with
:func:`set_tier_levels`. Members are interned, so identity comparison is safe.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Iterator

__all__ = [
    "Decision",
    "LayerStep",
    "ModelTier",
    "TaskComplexity",
    "TaskType",
    "Verdict",
    "register_task_type",
    "set_tier_levels",
]

_LOCK = threading.RLock()


class _OpenEnumMeta(type):
    def __iter__(cls) -> Iterator[Any]:
        return iter(tuple(cls._members.values()))

    def __len__(cls) -> int:
        return len(cls._members)

    def __contains__(cls, item: object) -> bool:
        return isinstance(item, str) and str(item).lower() in cls._members

    def __getitem__(cls, name: str) -> Any:
        try:
            return cls._members[name.lower()]
        except KeyError:
            raise KeyError(name) from None


class _OpenEnum(str, metaclass=_OpenEnumMeta):
    """A ``str`` whose instances are the registered members of its class."""

    _members: ClassVar[dict[str, Any]]
    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._members = {}

    def __new__(cls, value: Any) -> Any:
        if isinstance(value, cls):
            return value
        key = str(value).strip().lower() if isinstance(value, str) else None
        member = cls._members.get(key) if key is not None else None
        if member is None:
            known = ", ".join(cls._members)
            raise ValueError(f"{value!r} is not a valid {cls.__name__} (known: {known})")
        return member

    @classmethod
    def _add(cls, value: str) -> Any:
        value = value.strip().lower()
        if not value or not value.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"invalid {cls.__name__} name {value!r}: use letters, digits, '_' or '-'")
        with _LOCK:
            member = cls._members.get(value)
            if member is None:
                member = str.__new__(cls, value)
                cls._members[value] = member
                setattr(cls, value.upper().replace("-", "_"), member)
            return member

    @property
    def value(self) -> str:
        return str.__str__(self)

    @property
    def name(self) -> str:
        return self.value.upper().replace("-", "_")

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: {self.value!r}>"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (type(self), (self.value,))

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self

    __hash__ = str.__hash__
    __eq__ = str.__eq__
    __ne__ = str.__ne__


class TaskType(_OpenEnum):
    """What kind of work the task asks for."""

    __slots__ = ()
    REASONING: ClassVar[TaskType]
    THINKING: ClassVar[TaskType]
    ANALYZING: ClassVar[TaskType]
    CODE_CREATION: ClassVar[TaskType]
    DOC_CREATION: ClassVar[TaskType]
    TRANSLATION: ClassVar[TaskType]
    MATH: ClassVar[TaskType]
    CONVERSATION: ClassVar[TaskType]
    MULTIMODAL: ClassVar[TaskType]


class _RankedEnum(_OpenEnum):
    """An open enum ordered by ``rank``, not alphabetically; a plain string compares as the member
    it names (an unknown name raises ValueError rather than comparing as text)."""

    __slots__ = ()

    @property
    def rank(self) -> int:
        raise NotImplementedError

    def _cmp(self, other: object) -> tuple[int, int] | None:
        if not isinstance(other, str):
            return None
        return self.rank, type(self)(other).rank

    def __lt__(self, other: object) -> bool:
        pair = self._cmp(other)
        return NotImplemented if pair is None else pair[0] < pair[1]

    def __le__(self, other: object) -> bool:
        pair = self._cmp(other)
        return NotImplemented if pair is None else pair[0] <= pair[1]

    def __gt__(self, other: object) -> bool:
        pair = self._cmp(other)
        return NotImplemented if pair is None else pair[0] > pair[1]

    def __ge__(self, other: object) -> bool:
        pair = self._cmp(other)
        return NotImplemented if pair is None else pair[0] >= pair[1]

    __hash__ = str.__hash__
    __eq__ = str.__eq__
    __ne__ = str.__ne__


class TaskComplexity(_RankedEnum):
    """How demanding the task is, from ``simple`` to ``research``. Ordered."""

    __slots__ = ()
    SIMPLE: ClassVar[TaskComplexity]
    STANDARD: ClassVar[TaskComplexity]
    COMPLEX: ClassVar[TaskComplexity]
    RESEARCH: ClassVar[TaskComplexity]

    @property
    def rank(self) -> int:
        return list(TaskComplexity._members).index(self.value)


class ModelTier(_RankedEnum):
    """A price/capability tier. Ordered cheapest first; the order is :func:`set_tier_levels`'s."""

    __slots__ = ()
    _levels: ClassVar[tuple[str, ...]] = ()
    _ranks: ClassVar[dict[str, int]] = {}
    LOW: ClassVar[ModelTier]
    MEDIUM: ClassVar[ModelTier]
    HIGH: ClassVar[ModelTier]

    @classmethod
    def levels(cls) -> tuple[ModelTier, ...]:
        """The tiers in force, cheapest first."""
        return tuple(cls._members[v] for v in cls._levels)

    @property
    def rank(self) -> int:
        try:
            return ModelTier._ranks[self]
        except KeyError:
            raise ValueError(
                f"tier {self.value!r} is not among the tier levels in force {list(ModelTier._levels)}"
            ) from None


for _name in ("reasoning", "thinking", "analyzing", "code_creation", "doc_creation",
              "translation", "math", "conversation", "multimodal"):
    TaskType._add(_name)
for _name in ("simple", "standard", "complex", "research"):
    TaskComplexity._add(_name)
for _name in ("low", "medium", "high"):
    ModelTier._add(_name)
ModelTier._levels = ("low", "medium", "high")
ModelTier._ranks = {"low": 0, "medium": 1, "high": 2}


def register_task_type(name: str, *, gap: float | None = None) -> TaskType:
    """Add a task type (idempotent) and return it. Routers need a tier-matrix row for it.

    ``gap`` (0..1) is how far economy models typically fall behind flagship ones on this kind of
    task; it scales the task's difficulty (:mod:`dmr.difficulty`). Without it the type takes
    reasoning's gap."""
    from dmr.difficulty import check_gap, set_type_gap

    if gap is not None:
        check_gap(name, gap)  # before adding, so a bad gap leaves no half-registered type
    task_type = TaskType._add(name)
    if gap is not None:
        set_type_gap(str(task_type), gap)
    return task_type


def set_tier_levels(levels: list[str] | tuple[str, ...]) -> tuple[ModelTier, ...]:
    """Replace the ordered list of tiers (cheapest first), e.g. ``["nano", "low", "medium", "high",
    "frontier"]``. Routers built afterwards validate their tier matrix against it."""
    names = [str(level).strip().lower() for level in levels]
    if len(names) < 2:
        raise ValueError("set_tier_levels needs at least two tiers, cheapest first")
    if len(set(names)) != len(names):
        raise ValueError(f"set_tier_levels: duplicate tier names in {names}")
    with _LOCK:
        for name in names:
            ModelTier._add(name)
        ModelTier._ranks = {name: i for i, name in enumerate(names)}
        ModelTier._levels = tuple(names)
    return ModelTier.levels()


@dataclass(frozen=True, slots=True)
class Verdict:
    """One layer's answer: what the task is, how hard, and how sure the layer is."""

    task_type: TaskType
    complexity: TaskComplexity
    confidence: float
    difficulty: float
    layer: str
    reasoning: str = ""


@dataclass(frozen=True, slots=True)
class LayerStep:
    """What one layer did for one decision (for the trace and the decision log)."""

    layer: str
    outcome: str  # "decided", "unsure", "passed", "error", "skipped"
    confidence: float | None = None
    latency_ms: float = 0.0
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """The router's answer for one task. Immutable; ``to_dict()`` gives a JSON-ready form."""

    tier: ModelTier
    model_name: str | None
    provider: str | None
    task_type: TaskType
    complexity: TaskComplexity
    confidence: float
    difficulty: float
    layer: str
    reasoning: str
    latency_ms: float
    estimated_cost_usd: float | None
    decision_id: str
    policies_applied: tuple[str, ...] = ()
    trace: tuple[LayerStep, ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("tier", "task_type", "complexity"):
            out[key] = str(getattr(self, key))
        out["policies_applied"] = list(self.policies_applied)
        out["trace"] = [asdict(step) for step in self.trace]
        return out
