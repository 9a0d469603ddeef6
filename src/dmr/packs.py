"""Keyword packs: the data Layer 1 scores with.

A pack is plain data (``dmr/data/keywords/<lang>.yaml`` for the bundled languages, or built with
:meth:`KeywordPack.builder`): per task type *primary* and *secondary* terms, complexity
*escalators* and *de-escalators* with weights, *constraint* and *multi-step* cues, *negation* cues
that cancel an escalator just after them ("no need for a full design, just …"), *negations_after*
that cancel one just before them, for languages that put the negation last ("設計は必要ない",
"tasarıma gerek yok"), *hazards*: escalators no negation cancels, because they name what the
work must avoid ("with no race conditions" asks for more care, not less), and *trivial* whole
inputs ("hi", "thanks"). A single word ending in ``*`` is a *stem*: it matches every word that begins with
it ("спроектир*" matches "спроектируй" and "спроектировать"), for languages whose words take many
endings; a stem has at least four characters, and a word listed whole wins over a stem. Packs are
immutable; a Router compiles the packs it was given and shares nothing mutable with other Routers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from dmr.datafiles import not_utf8
from dmr.errors import ConfigError
from dmr.types import TaskType

__all__ = ["KeywordPack", "KeywordPackBuilder", "bundled_packs", "load_pack_file"]

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """YAML 1.1 reads ``no``/``yes``/``on`` as booleans; in a word list they are words."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
BUNDLED_LANGUAGES = ("en", "es", "fr", "de", "pt", "zh", "ja", "it", "ru", "ar", "tr", "ko", "hi", "pl", "vi", "uk",
                     "fa", "nl", "id", "th", "bn", "he", "cs", "el", "sv", "hu", "ro", "fi", "ur", "sw", "ta",
                     "tl", "da", "no", "ms")


def fold(text: str) -> str:
    """Text as Layer 1 compares it: lower-cased, accents composed (NFC: some keyboards and PDF
    copies send a letter and a combining accent), and Turkish dotted capital I ("İ", which
    lower-cases to "i" and a combining dot) read as "i". Pack terms go through the same."""
    low = text.lower()
    if low.isascii():
        return low
    if "\u0307" in low:
        low = low.replace("i\u0307", "i")
    return low if unicodedata.is_normalized("NFC", low) else unicodedata.normalize("NFC", low)


# What Layer 1 splits words on (besides whitespace); a stem may not contain it.
WORD_SEPARATORS = ',;:!?()."/[]{}<>|`*=\\\n\t\r“”„«»¿¡。，、？！：；（）「」『』【】،؛؟।॥·۔'
STEM_MIN = 4


def _check_stem(term: str, where: str) -> None:
    stem = term[:-1]
    if len(stem) < STEM_MIN or any(ch.isspace() or ch in WORD_SEPARATORS for ch in stem):
        raise ConfigError(f"{where}: a stem ({term!r}) is one word of at least {STEM_MIN} characters "
                          f"followed by '*'")


def _terms(values: Iterable[Any], where: str, *, stems: str = "") -> tuple[str, ...]:
    """Folded, de-duplicated terms; ``stems`` is why a stem is refused here ("" allows stems)."""
    if isinstance(values, str):
        values = [values]
    elif not isinstance(values, Iterable) or isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a list of keyword terms, got {type(values).__name__}")
    out = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: keyword terms must be non-empty strings, got {value!r}")
        term = " ".join(fold(value).split())
        if term.endswith("*"):
            if stems:
                raise ConfigError(f"{where}: {term!r}: {stems}")
            _check_stem(term, where)
        out.append(term)
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class KeywordPack:
    """An immutable set of Layer 1 keywords. Build one with :meth:`builder` or :meth:`from_dict`."""

    name: str
    language: str = ""
    primary: Mapping[TaskType, tuple[str, ...]] = field(default_factory=dict)
    secondary: Mapping[TaskType, tuple[str, ...]] = field(default_factory=dict)
    escalators: Mapping[str, float] = field(default_factory=dict)
    deescalators: Mapping[str, float] = field(default_factory=dict)
    constraints: tuple[str, ...] = ()
    multistep: tuple[str, ...] = ()
    negations: tuple[str, ...] = ()
    negations_after: tuple[str, ...] = ()
    hazards: tuple[str, ...] = ()
    trivial: tuple[str, ...] = ()

    @staticmethod
    def builder(name: str) -> KeywordPackBuilder:
        return KeywordPackBuilder(name)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> KeywordPack:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a keyword pack must be a mapping")
        known = {"name", "language", "task_types", "escalators", "deescalators", "constraints",
                 "multistep", "negations", "negations_after", "hazards", "trivial", "note"}
        problems = [(f"{source}.{k}", "unknown key") for k in data if k not in known]
        builder = cls.builder(str(data.get("name") or Path(source).stem))
        builder._language = str(data.get("language", ""))

        def collect(path: str, step: Any, *args: Any, **kwargs: Any) -> None:
            # Every problem is reported at once, so a builder error is noted and reading goes on.
            try:
                step(*args, **kwargs)
            except ConfigError as exc:
                problems.append((path, str(exc)))

        def mapping(key: str) -> Mapping[str, Any]:
            value = data.get(key) or {}
            if not isinstance(value, Mapping):
                problems.append((f"{source}.{key}", f"must be a mapping, got {type(value).__name__}"))
                return {}
            return value

        for type_name, spec in mapping("task_types").items():
            where = f"{source}.task_types.{type_name}"
            try:
                task_type = TaskType(type_name)
            except ValueError as exc:
                problems.append((where, str(exc)))
                continue
            if isinstance(spec, (list, tuple, str)):
                spec = {"primary": spec}
            if not isinstance(spec, Mapping):
                problems.append((where, "must be a list of terms or a mapping with primary/secondary"))
                continue
            for kind in spec:
                if kind not in ("primary", "secondary"):
                    problems.append((f"{where}.{kind}", "unknown key"))
            collect(f"{where}.primary", builder.add, task_type, spec.get("primary") or [])
            collect(f"{where}.secondary", builder.add, task_type, spec.get("secondary") or [], kind="secondary")
        for term, weight in mapping("escalators").items():
            collect(f"{source}.escalators.{term}", builder.escalator, term, weight=weight)
        for term, weight in mapping("deescalators").items():
            collect(f"{source}.deescalators.{term}", builder.deescalator, term, weight=weight)
        for key, add in (("constraints", builder.constraint), ("multistep", builder.multistep),
                         ("negations", builder.negation), ("negations_after", builder.negation_after),
                         ("hazards", builder.hazard), ("trivial", builder.trivial)):
            collect(f"{source}.{key}", add, data.get(key) or [])
        pack = None
        if not problems:
            try:
                pack = builder.build()  # checks that each hazard is an escalator
            except ConfigError as exc:
                problems.append((f"{source}.hazards", str(exc)))
        if pack is None:
            raise ConfigError(
                "invalid keyword pack:\n" + "\n".join(f"  {p}: {m}" for p, m in problems), problems
            )
        return pack

    def to_dict(self) -> dict[str, Any]:
        types = {}
        for task_type in dict.fromkeys([*self.primary, *self.secondary]):
            types[str(task_type)] = {
                "primary": list(self.primary.get(task_type, ())),
                "secondary": list(self.secondary.get(task_type, ())),
            }
        return {
            "name": self.name, "language": self.language, "task_types": types,
            "escalators": dict(self.escalators), "deescalators": dict(self.deescalators),
            "constraints": list(self.constraints), "multistep": list(self.multistep),
            "negations": list(self.negations), "negations_after": list(self.negations_after),
            "hazards": list(self.hazards), "trivial": list(self.trivial),
        }


class KeywordPackBuilder:
    """Fluent builder: ``KeywordPack.builder("legal").add(TaskType.REASONING, [...]).build()``."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("a keyword pack needs a non-empty name")
        self._name = name.strip()
        self._language = ""
        self._primary: dict[TaskType, list[str]] = {}
        self._secondary: dict[TaskType, list[str]] = {}
        self._escalators: dict[str, float] = {}
        self._deescalators: dict[str, float] = {}
        self._lists: dict[str, list[str]] = {
            k: [] for k in ("constraints", "multistep", "negations", "negations_after", "hazards", "trivial")}

    def language(self, code: str) -> KeywordPackBuilder:
        self._language = code
        return self

    def add(self, task_type: TaskType | str, terms: Iterable[str] | str, *, kind: str = "primary") -> KeywordPackBuilder:
        """Add terms that point to ``task_type``. ``kind`` is ``"primary"`` or ``"secondary"``."""
        if kind not in ("primary", "secondary"):
            raise ConfigError(f"keyword kind must be 'primary' or 'secondary', not {kind!r}")
        try:
            task_type = TaskType(task_type)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        target = self._primary if kind == "primary" else self._secondary
        found = _terms(terms, f"{self._name}.{task_type}")
        if found:  # no empty rows: a pack read back from to_dict() equals the original
            target.setdefault(task_type, []).extend(found)
        return self

    def escalator(self, term: str, *, weight: float = 1.0) -> KeywordPackBuilder:
        """A term that makes the task harder (``weight`` > 0 adds to the complexity score)."""
        self._escalators[_terms([term], self._name)[0]] = self._weight(term, weight)
        return self

    def deescalator(self, term: str, *, weight: float = 1.0) -> KeywordPackBuilder:
        """A term that makes the task easier ("quick", "briefly", "one line")."""
        self._deescalators[_terms([term], self._name)[0]] = self._weight(term, weight)
        return self

    def constraint(self, terms: Iterable[str] | str) -> KeywordPackBuilder:
        self._lists["constraints"].extend(_terms(terms, self._name))
        return self

    def multistep(self, terms: Iterable[str] | str) -> KeywordPackBuilder:
        self._lists["multistep"].extend(_terms(terms, self._name))
        return self

    def negation(self, terms: Iterable[str] | str) -> KeywordPackBuilder:
        self._lists["negations"].extend(_terms(terms, self._name))
        return self

    def negation_after(self, terms: Iterable[str] | str) -> KeywordPackBuilder:
        """Cues that cancel an escalator just before them in the same clause ("… 필요 없고")."""
        self._lists["negations_after"].extend(
            _terms(terms, self._name, stems="a negation after is matched as written, not as a stem"))
        return self

    def hazard(self, terms: Iterable[str] | str) -> KeywordPackBuilder:
        """Escalators of this pack that no negation cancels: what the work must avoid ("race
        condition", "deadlock"), so that "with no race conditions" stays hard."""
        self._lists["hazards"].extend(_terms(terms, self._name, stems="a hazard is matched as written, not as a stem"))
        return self

    def trivial(self, terms: Iterable[str] | str) -> KeywordPackBuilder:
        self._lists["trivial"].extend(_terms(terms, self._name, stems="trivial inputs are whole texts, not stems"))
        return self

    def _weight(self, term: str, weight: Any) -> float:
        if isinstance(weight, bool):
            raise ConfigError(f"{self._name}: weight of {term!r} must be a number, got {weight!r}")
        try:
            value = float(weight)
        except (TypeError, ValueError):
            raise ConfigError(f"{self._name}: weight of {term!r} must be a number, got {weight!r}") from None
        if not 0 < value <= 10:
            raise ConfigError(f"{self._name}: weight of {term!r} must be in (0, 10], got {value}")
        return value

    def build(self) -> KeywordPack:
        strays = [term for term in self._lists["hazards"] if term not in self._escalators]
        if strays:
            raise ConfigError(f"{self._name}: a hazard must also be one of the pack's escalators: "
                              f"{', '.join(map(repr, strays))}")
        freeze = lambda d: {k: tuple(dict.fromkeys(v)) for k, v in d.items()}  # noqa: E731
        return KeywordPack(
            name=self._name, language=self._language,
            primary=freeze(self._primary), secondary=freeze(self._secondary),
            escalators=dict(self._escalators), deescalators=dict(self._deescalators),
            **{k: tuple(dict.fromkeys(v)) for k, v in self._lists.items()},
        )


def load_pack_file(path: str | Path) -> KeywordPack:
    """Load a keyword pack from a YAML file."""
    path = Path(path).expanduser()
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read keyword pack: {not_utf8(path, exc)}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read keyword pack {path}: {exc}") from None
    return KeywordPack.from_dict(data or {}, source=path.name)


# The bundled packs, already read and checked, with the SHA-256 of the YAML each came from
# (``python scripts/build_packs.py`` writes it). Reading 35 packs from YAML takes about a quarter of
# a second; this file, a few milliseconds. A pack whose YAML no longer matches is read from YAML.
SNAPSHOT = "bundled.json"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _from_snapshot(data: Mapping[str, Any]) -> KeywordPack:
    """A pack saved by :func:`snapshot` (its terms are already folded and checked)."""
    types = {TaskType(name): spec for name, spec in data["task_types"].items()}
    return KeywordPack(
        name=data["name"], language=data["language"],
        primary={t: tuple(spec["primary"]) for t, spec in types.items() if spec["primary"]},
        secondary={t: tuple(spec["secondary"]) for t, spec in types.items() if spec["secondary"]},
        escalators=dict(data["escalators"]), deescalators=dict(data["deescalators"]),
        **{key: tuple(data[key]) for key in ("constraints", "multistep", "negations", "negations_after", "hazards",
                                             "trivial")},
    )


def _bundled_texts() -> dict[str, str]:
    root = resources.files("dmr") / "data" / "keywords"
    texts = {}
    for lang in BUNDLED_LANGUAGES:
        entry = root / f"{lang}.yaml"
        if entry.is_file():
            texts[lang] = entry.read_text(encoding="utf-8")
    return texts


def snapshot() -> dict[str, Any]:
    """The bundled packs read from their YAML, as ``dmr/data/keywords/bundled.json`` stores them."""
    return {"packs": [
        {"language": lang, "sha256": _digest(text),
         "pack": KeywordPack.from_dict(yaml.load(text, Loader=_Loader) or {}, source=f"{lang}.yaml").to_dict()}
        for lang, text in _bundled_texts().items()
    ]}


@functools.lru_cache(maxsize=None)
def bundled_packs() -> tuple[KeywordPack, ...]:
    """The language packs shipped in ``dmr/data/keywords`` (parsed once; immutable)."""
    try:
        saved = json.loads((resources.files("dmr") / "data" / "keywords" / SNAPSHOT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    return read_packs(_bundled_texts(), saved)


def read_packs(texts: Mapping[str, str], saved: Mapping[str, Any]) -> tuple[KeywordPack, ...]:
    """Packs from their YAML ``texts`` (language -> text), taking each from the ``saved``
    snapshot instead when the snapshot holds that language with the same text's digest."""
    try:
        known = {entry["language"]: entry for entry in saved.get("packs", ())}
    except (KeyError, TypeError, AttributeError):
        known = {}
    packs = []
    for lang, text in texts.items():
        entry = known.get(lang)
        if isinstance(entry, Mapping) and entry.get("sha256") == _digest(text):
            try:
                packs.append(_from_snapshot(entry["pack"]))
                continue
            except (KeyError, TypeError, ValueError, AttributeError):
                pass  # a damaged entry: read the YAML
        packs.append(KeywordPack.from_dict(yaml.load(text, Loader=_Loader) or {}, source=f"{lang}.yaml"))
    return tuple(packs)
