"""Layer 1: keyword heuristics, in microseconds.

The task is tokenised once; single-word terms are found with one C-level set intersection,
phrases only when their first word occurs, stems ("спроектир*") on the words no whole term matched,
and Chinese, Japanese, Korean and Thai terms by substring only when the text has such characters.
Everything a Router can vary (packs, weights) is compiled into a :class:`KeywordLayer` instance;
layers with the same packs and weights share the compiled tables, which nothing changes after.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, NamedTuple

from dmr.difficulty import difficulty
from dmr.errors import ConfigError
from dmr.layers.base import Context
from dmr.packs import STEM_MIN, WORD_SEPARATORS, KeywordPack, fold
from dmr.types import TaskComplexity, TaskType, Verdict

__all__ = ["DEFAULT_WEIGHTS", "KeywordLayer", "complexity_for", "difficulty_for"]

DEFAULT_WEIGHTS: Mapping[str, float] = {
    "primary": 3.0,      # a term that names the task type
    "secondary": 1.0,    # a term that hints at it
    "escalator": 1.0,    # multiplier on escalator weights (complexity up)
    "deescalator": 1.0,  # multiplier on de-escalator weights (complexity down)
    "constraint": 0.35,  # per constraint cue ("must", "at least", "without using")
    "multistep": 0.4,    # per multi-step cue ("then", "step by step")
    "structure": 1.0,    # multiplier on list items, code blocks, several questions
    "length": 1.0,       # multiplier on the length term
}

# Complexity-score boundaries: simple < 1.05 <= standard < 1.35 <= complex < 2.5 <= research.
_BOUNDS = (1.05, 1.35, 2.5)
_LEVELS = ("simple", "standard", "complex", "research")
# Some kinds of work are harder than others at the same surface signals.
# Fitted, with the boundaries below, on the training split of datasets/ (tier accuracy, with a
# penalty on routing too cheap).
_TYPE_PRIOR = {
    "code_creation": 0.37, "math": 0.48, "reasoning": 0.49, "analyzing": 0.31, "thinking": 0.5,
    "multimodal": 0.42, "doc_creation": -0.08, "translation": -0.47, "conversation": -0.33,
}

# Above this many words (Chinese and Japanese: characters / 1.6; Korean and Thai: see below) Layer
# 1's confidence is capped by 0.97 times the square root of this over the length: 0.69 at 40 words,
# 0.43 at 100, so at the default threshold (0.7) it decides nothing over about 38 words. On the
# training split of datasets/ its decisions were right about the tier less often than Layer 3 from
# 20 words on (0.61-0.77 against 0.74-0.82).
_LONG_WORDS = 20
# The most Layer 1 is sure of a complex task that one escalator word alone makes complex: below
# the default escalation threshold (0.7), so Layer 3 reads the whole task.
_ONE_ESCALATOR_CONFIDENCE = 0.6
_LIST_ITEM = re.compile(r"(?m)^\s*(?:\d{1,2}[.)]|[-*•])\s+\S")
# "+ * ^ × ÷ =" between numbers is arithmetic; "-" and "/" only with spaces around them, so that
# dates (12/05/2024, 2024-05-01), ranges and versions are not.
_ARITHMETIC = re.compile(r"\d\s*[+*^×÷=]\s*\(?\d|\d\s+[-/]\s+\(?\d|\d\s*%|√\d")
# Full dates ("12/05/2024", "2024-05-01") are not sums; they are blanked before the arithmetic test.
# Scripts whose terms are matched as substrings: Chinese, Japanese and Korean, and Thai (written
# without spaces between words).
_CJK = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# Hangul is matched by substring like Chinese and Japanese, but Korean puts spaces between words,
# which the word count has already counted. A Korean word carries about one and a half English
# words (its particles and endings) in about three syllables, so each syllable adds a sixth of a
# word, not the 1/1.6 of a Chinese character (which tripled Korean lengths and made Layer 1 call
# everyday Korean asks complex).
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_HANGUL_WEIGHT = 1 / 6
# A Thai word is about four and a half code points (consonants, vowel and tone marks).
_THAI = re.compile(r"[\u0e00-\u0e7f]")
_THAI_WEIGHT = 1 / 4.5
_CLAUSE_END = re.compile(r"[\s.,;:!?。，、？！]")
_CLAUSE_PUNCT = re.compile(r"[.,;:!?。，、？！،؛؟।॥۔]")
# Characters allowed between an escalator and a negation after it in unspaced text: a particle
# or two and a space ("設計は必要ない", "설계까지는 필요 없고").
_AFTER_GAP = 6
_AFTER_GAP_WORDS = 4  # words between an escalator and a negation after it ("proof of this lemma is not needed")
_PUNCT = frozenset(".,;:!?()")
_TYPE_ORDER = {name: i for i, name in enumerate(
    ("code_creation", "math", "translation", "multimodal", "analyzing", "doc_creation", "reasoning",
     "thinking", "conversation"))}


(_PRIMARY, _SECONDARY, _ESC, _DEESC, _CONSTRAINT, _MULTISTEP, _NEGATION) = range(7)


def _plural(word: str) -> tuple[str, ...]:
    """An English noun and its regular plural (both, when the word may already be one)."""
    if len(word) < 3 or not word.isalpha() or (word.endswith("s") and not word.endswith("ss")):
        return (word,)
    if word.endswith(("ss", "x", "ch", "sh")):
        return (word, word + "es")
    if word.endswith("y") and word[-2] not in "aeiou":
        return (word, word[:-1] + "ies")
    return (word, word + "s")


def _inflect(term: str) -> set[str]:
    """Cheap English inflections so that packs can list lemmas ("design" → "designing")."""
    if " " in term or len(term) < 4 or not term.isalpha():
        return {term}
    forms = {term, term + "s", term + "es", term + "ed", term + "ing", term + "er", term + "ers"}
    if term.endswith("e"):
        stem = term[:-1]
        forms |= {term + "d", stem + "ing", stem + "ion", stem + "ions", stem + "ation", term + "r"}
    if term.endswith("y"):
        forms |= {term[:-1] + "ies", term[:-1] + "ied"}
    if term.endswith("ize"):
        forms |= {term[:-3] + "ise", term[:-3] + "ised", term[:-3] + "ising", term[:-3] + "isation"}
    return forms


# Punctuation becomes a space in one C-level ``str.translate`` pass; terms are normalised the
# same way, so "tl;dr" is the phrase "tl dr" and "node.js" the phrase "node js". Text with
# non-ASCII characters, where translate is slow, is split by a regex into the same words.
_SEPARATORS = str.maketrans({c: " " for c in WORD_SEPARATORS})
_WORD = re.compile(f"[^\\s{re.escape(WORD_SEPARATORS)}]+")


def _tokens(low: str) -> list[str]:
    """Lower-cased text → words, punctuation dropped (the hot path)."""
    return low.translate(_SEPARATORS).split() if low.isascii() else _WORD.findall(low)


# Clause punctuation, as the mark each one stands for in :func:`_clause_tokens`.
_CLAUSE_MARKS = {",": ",", ";": ";", ":": ":", "!": "!", "?": "?", "(": "(", ")": ")", ".": ".", "。": ".",
                 "，": ",", "、": ",", "？": "?", "！": "!", "：": ":", "；": ";", "،": ",", "؛": ";", "؟": "?",
                 "।": ".", "॥": ".", "۔": ".", "·": ";"}
_CLAUSE_TABLE = str.maketrans({**{c: " " for c in WORD_SEPARATORS},
                               **{c: f" {mark} " for c, mark in _CLAUSE_MARKS.items()}})


def _clause_tokens(low: str) -> list[str]:
    """Lower-cased text → words and clause punctuation (".", ",", ";", …), for the rarer checks
    that need clause boundaries, such as negation scope."""
    return low.translate(_CLAUSE_TABLE).split()


def _is_cjk(term: str) -> bool:
    return bool(_CJK.search(term))


def complexity_for(score: float) -> TaskComplexity:
    """The complexity whose score band contains ``score``."""
    for bound, level in zip(_BOUNDS, _LEVELS):
        if score < bound:
            return TaskComplexity(level)
    return TaskComplexity.RESEARCH


def difficulty_for(score: float) -> float:
    """A 0..1 difficulty from the complexity score, piecewise linear: 0 at a score of 0 (and for
    trivial input), 0.25 / 0.5 / 0.75 at the simple/standard, standard/complex and complex/research
    bounds, 1 a little beyond. These are the boundaries ``dmr.quality``'s prior uses, so a quality
    target and the tier matrix read Layer 1's difficulty on the same scale."""
    b0, b1, b2 = _BOUNDS
    if score <= 0.0:
        return 0.0
    if score < b0:
        return 0.25 * score / b0
    if score < b1:
        return 0.25 + 0.25 * (score - b0) / (b1 - b0)
    if score < b2:
        return 0.5 + 0.25 * (score - b1) / (b2 - b1)
    return min(1.0, 0.75 + 0.25 * (score - b2) / 1.5)


def _merge_nested(escalators: dict[str, float]) -> None:
    """A phrase escalator and an escalator word inside it ("distributed system", "distributed";
    "分布式系统", "分布式") are one piece of evidence, not two: the word is dropped and the phrase
    keeps the larger weight. (A word matched by a stem is keyed by the word, so it is found too.)"""
    for term in [t for t in escalators if " " in t or _is_cjk(t)]:
        if term not in escalators:
            continue
        inner = term.split(" ") if " " in term else ()
        for other in list(escalators):
            if other != term and (other in inner or (not inner and other in term)):
                escalators[term] = max(escalators[term], escalators.pop(other))


def _chain_back(seq: str | list[str], anchor: int, escalators: Mapping[str, float], negated: list[str]) -> None:
    """Add to ``negated`` the escalators that end within a small gap before ``anchor`` in ``seq``
    (clause tokens, or unspaced text as characters), then those just before them, and so on; a
    clause mark stops the search."""
    words = isinstance(seq, list)
    if words:
        start = anchor
        while start > 0 and seq[start - 1] not in _PUNCT:
            start -= 1
        gap = _AFTER_GAP_WORDS
    else:
        start = max((m.end() for m in _CLAUSE_PUNCT.finditer(seq, max(0, anchor - 80), anchor)), default=0)
        gap = _AFTER_GAP
    while True:
        earliest = anchor
        for term in escalators:
            if term in negated:
                continue
            if words:
                parts = term.split(" ")
                n = len(parts)
                for end in range(anchor, max(start + n, anchor - gap) - 1, -1):
                    if seq[end - n:end] == parts:
                        negated.append(term)
                        earliest = min(earliest, end - n)
                        break
            else:
                at = seq.rfind(term, start, anchor)
                if at >= 0 and anchor - at - len(term) <= gap:
                    negated.append(term)
                    earliest = min(earliest, at)
        if earliest == anchor:
            return
        anchor = earliest


@functools.lru_cache(maxsize=1 << 16)
def _shape(term: str, english: bool) -> tuple[Any, ...]:
    """How a pack term is matched: ("stem", stem), ("cjk", term), ("word", forms) or ("phrase",
    first word, phrase); ("none",) for a term of punctuation only. Packs are immutable and shared,
    so each term's shape is worked out once per process."""
    if term.endswith("*"):
        if not _is_cjk(term):
            return ("stem", term[:-1])
        term = term[:-1]  # CJK terms match anywhere already
    if _is_cjk(term):
        return ("cjk", term)
    toks = _tokens(term)
    if not toks:
        return ("none",)
    if len(toks) == 1:
        return ("word", tuple(_inflect(toks[0])) if english else (toks[0],))
    # An English phrase also matches with its last word in the plural ("race condition" →
    # "race conditions"), as a single word matches its inflections.
    lasts = _plural(toks[-1]) if english else (toks[-1],)
    return ("phrase", toks[0], tuple(" ".join([*toks[:-1], last]) for last in lasts))


def _forms(shape: tuple[Any, ...]) -> tuple[str, ...]:
    """The keys under which a term of this shape is found in a text (none for a stem, whose key is
    the word it matched, or for punctuation)."""
    kind = shape[0]
    if kind == "word":
        return shape[1]
    if kind == "phrase":
        return shape[2]
    if kind == "cjk":
        return (shape[1],)
    return ()


class _Signals(NamedTuple):
    """What Layer 1 saw, for the layers after it (and for debugging)."""

    score: float
    escalators: tuple[str, ...]
    negated: tuple[str, ...]
    deescalation: float
    constraints: float
    multistep: float
    list_items: int
    has_code: bool
    words: float
    trivial: bool
    type_scores: dict[TaskType, float]


class _Agg(NamedTuple):
    """Everything one matched term contributes, summed over the packs that list it."""

    types: tuple[tuple[TaskType, float], ...]
    esc: float
    other: bool  # any de-escalation, constraint, multi-step or negation part below
    deesc: float
    constraint: float
    multistep: float
    negation: bool


def _aggregate(entries: Iterable[_Entry], memo: dict[tuple[Any, ...], _Agg]) -> _Agg:
    """``_aggregate_many``, with one-entry terms (nearly all of them) looked up in ``memo``: their
    aggregate depends only on the kind, the weight and, for a task-type term, the type."""
    entries = tuple(entries)
    if len(entries) != 1:
        return _aggregate_many(entries)
    e = entries[0]
    key = (e.kind, e.key, e.weight)
    found = memo.get(key)
    if found is None:
        found = memo[key] = _aggregate_many(entries)
    return found


def _aggregate_many(entries: Iterable[_Entry]) -> _Agg:
    types: dict[TaskType, float] = {}
    esc = deesc = constraint = multistep = 0.0
    negation = False
    for entry in entries:
        if entry.kind <= _SECONDARY:
            types[entry.key] = types.get(entry.key, 0.0) + entry.weight
        elif entry.kind == _ESC:
            esc = max(esc, entry.weight)
        elif entry.kind == _DEESC:
            deesc += entry.weight
        elif entry.kind == _CONSTRAINT:
            constraint += entry.weight
        elif entry.kind == _MULTISTEP:
            multistep += entry.weight
        else:
            negation = True
    other = bool(deesc or constraint or multistep or negation)
    return _Agg(tuple(types.items()), esc, other, deesc, constraint, multistep, negation)


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: int
    key: Any
    weight: float


# Compiled tables are never changed after compiling, so Layers built from the same pack objects
# and weights (every default Router in a process) share one copy instead of each spending ~6 MB and
# ~0.1 s on its own. Keyed by the packs' identities and the weights; the oldest of eight goes first.
_COMPILED: dict[tuple[Any, ...], tuple[tuple[KeywordPack, ...], dict[str, Any]]] = {}
_COMPILED_LOCK = threading.Lock()
_COMPILED_MAX = 8


class KeywordLayer:
    """Layer 1. ``classify`` returns a verdict for every non-empty task; the router compares its
    confidence with ``escalation_threshold``."""

    name = "layer1"

    def __init__(self, packs: Iterable[KeywordPack], weights: Mapping[str, float] | None = None) -> None:
        self.packs = tuple(packs)
        self.weights = dict(DEFAULT_WEIGHTS)
        problems: list[tuple[str, str]] = []
        for key, value in (weights or {}).items():
            if key not in DEFAULT_WEIGHTS:
                problems.append((f"l1_weights.{key}", f"unknown weight (known: {', '.join(DEFAULT_WEIGHTS)})"))
            elif (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or value < 0):
                problems.append((f"l1_weights.{key}", f"must be a finite number >= 0, got {value!r}"))
            else:
                self.weights[key] = float(value)
        if problems:
            raise ConfigError("invalid l1_weights:\n" + "\n".join(f"  {p}: {m}" for p, m in problems), problems)
        key = (tuple(map(id, self.packs)), tuple(sorted(self.weights.items())))
        with _COMPILED_LOCK:
            found = _COMPILED.get(key)
        if found is not None and all(a is b for a, b in zip(found[0], self.packs)):
            self.__dict__.update(found[1])
        else:
            before = set(vars(self))
            self._compile()
            tables = {k: v for k, v in vars(self).items() if k not in before}
            with _COMPILED_LOCK:
                if len(_COMPILED) >= _COMPILED_MAX:
                    del _COMPILED[next(iter(_COMPILED))]
                _COMPILED[key] = (self.packs, tables)  # holding the packs keeps their ids unique
        self._local = threading.local()  # per-thread answers of prime()

    # -- compilation -------------------------------------------------------------------------
    def _compile(self) -> None:
        words: dict[str, list[_Entry]] = {}
        # Phrases and CJK terms, each with its entries, grouped by first word (first character)
        # in the order they were first listed.
        phrases: dict[str, dict[str, list[_Entry]]] = {}
        cjk: dict[str, dict[str, list[_Entry]]] = {}
        stems: dict[str, list[_Entry]] = {}
        trivial: set[str] = set()
        after: dict[str, list[tuple[str, ...]]] = {}  # negations after, by their longest word
        after_cjk: list[str] = []
        hazards: set[str] = set()  # every form in which a hazard escalator is matched
        w = self.weights

        def put(term: str, entry: _Entry, english: bool) -> None:
            shape = _shape(term, english)
            if shape[0] == "word":
                for form in _forms(shape):
                    words.setdefault(form, []).append(entry)
            elif shape[0] == "phrase":
                for form in _forms(shape):
                    listed = phrases.setdefault(shape[1], {}).setdefault(form, [])
                    if entry not in listed:  # "race conditions" listed beside "race condition"
                        listed.append(entry)
            elif shape[0] == "stem":
                stems.setdefault(shape[1], []).append(entry)
            elif shape[0] == "cjk":
                cjk.setdefault(shape[1][0], {}).setdefault(shape[1], []).append(entry)

        entry = functools.lru_cache(maxsize=None)(_Entry)  # one object per kind, type and weight
        for pack in self.packs:
            english = pack.language in ("", "en")
            for task_type, terms in pack.primary.items():
                for term in terms:
                    put(term, entry(_PRIMARY, task_type, w["primary"]), english)
            for task_type, terms in pack.secondary.items():
                for term in terms:
                    put(term, entry(_SECONDARY, task_type, w["secondary"]), english)
            for term, weight in pack.escalators.items():
                put(term, entry(_ESC, None, weight * w["escalator"]), english)
            for term, weight in pack.deescalators.items():
                put(term, entry(_DEESC, None, weight * w["deescalator"]), english)
            for term in pack.constraints:
                put(term, entry(_CONSTRAINT, None, w["constraint"]), False)
            for term in pack.multistep:
                put(term, entry(_MULTISTEP, None, w["multistep"]), False)
            for term in pack.negations:
                put(term, entry(_NEGATION, None, 0.0), False)
            for term in pack.negations_after:
                if _is_cjk(term):
                    after_cjk.append(term)
                elif toks := tuple(_tokens(term)):
                    after.setdefault(max(toks, key=len), []).append(toks)
            for term in pack.trivial:
                trivial.add(" ".join(_tokens(term)) if not _is_cjk(term) else term)
            for term in pack.hazards:
                hazards.update(_forms(_shape(term, english)))

        memo: dict[tuple[Any, ...], _Agg] = {}
        self._words = {k: _aggregate(v, memo) for k, v in words.items()}
        self._word_keys = frozenset(self._words)
        # Phrases are indexed by their longest (rarest) token: only phrases whose anchor occurs
        # are looked for, each with one C-level substring search in the joined tokens.
        index: dict[str, list[tuple[str, str, tuple[_Entry, ...]]]] = {}
        for bucket in phrases.values():
            for phrase, entries in bucket.items():
                toks = phrase.split(" ")
                anchor = max(toks, key=len)
                index.setdefault(anchor, []).append((f" {phrase}", phrase, _aggregate(entries, memo)))
        self._phrase_index = index
        self._phrase_keys = frozenset(index)
        self._cjk = {k: tuple((t, _aggregate(e, memo)) for t, e in v.items()) for k, v in cjk.items()}
        self._cjk_keys = frozenset(self._cjk)
        self._trivial = frozenset(trivial)
        self._cjk_negations = tuple(t for bucket in self._cjk.values() for t, agg in bucket if agg.negation)
        self._stems = {k: _aggregate(v, memo) for k, v in stems.items()}
        # Longest stem first; a word is only tried when its first STEM_MIN characters begin a stem.
        self._stem_lengths = tuple(sorted({len(k) for k in self._stems}, reverse=True))
        self._stem_heads = frozenset(k[:STEM_MIN] for k in self._stems)
        self._after = {k: tuple((cue, f" {' '.join(cue)} ") for cue in dict.fromkeys(v)) for k, v in after.items()}
        self._after_keys = frozenset(self._after)
        self._after_cjk = tuple(dict.fromkeys(after_cjk))
        self._hazards = frozenset(hazards)

    # -- classification ----------------------------------------------------------------------
    def prime(self, tasks: Iterable[str]) -> dict[str, tuple[Verdict, _Signals]]:
        """Classify many texts up front (``Router.classify_batch`` does, so that Layer 3 gets
        their signals at once); ``classify`` then returns these answers for them in this thread
        until :meth:`unprime`. Returns text -> (verdict, signals), without texts that raised."""
        answers: dict[str, tuple[Verdict, _Signals]] = {}
        for task in tasks:
            if task not in answers:
                ctx = Context(text=task, length=len(task))
                try:
                    answers[task] = (self._classify(task, ctx), ctx.signals["l1"])
                except Exception:  # classify raises it again where the router handles errors
                    continue
        self._local.primed = answers
        return answers

    def unprime(self) -> None:
        self._local.primed = None

    def classify(self, task: str, ctx: Context) -> Verdict:
        primed = getattr(self._local, "primed", None)
        found = primed.get(task) if primed else None
        if found is None:
            return self._classify(task, ctx)
        ctx.signals["l1"] = found[1]
        return found[0]

    def _classify(self, task: str, ctx: Context) -> Verdict:
        low = fold(task)
        toks = _tokens(low)
        tokset = set(toks)
        if "'" in low or "’" in low:
            # Elisions and suffixes: "dell'algoritmo", "python'da", "python's" also match their
            # word, unless a pack lists the token as written ("l'architecture"); a phrase still
            # needs the token as written.
            tokset |= {piece for tok in toks if ("'" in tok or "’" in tok) and tok not in self._word_keys
                       for piece in tok.replace("’", "'").split("'") if len(piece) >= 3}
        if "-" in low and not low.isascii():
            # A Latin-script word with a suffix of another script after a hyphen ("architecture-ஐ",
            # "python-ல்", "api-нь") also matches its word.
            tokset |= {piece for tok in toks if "-" in tok and not tok.isascii() and tok not in self._word_keys
                       for piece in tok.split("-") if len(piece) >= 3 and piece.isascii()}
        words = self._words
        hits: dict[str, _Agg] = {t: words[t] for t in tokset & self._word_keys}
        if self._stem_heads:
            self._stem_hits(toks, tokset, hits)
        anchors = tokset & self._phrase_keys
        if anchors:
            index = self._phrase_index
            joined = " " + " ".join(toks) + " "
            for anchor in anchors:
                for needle, phrase, entries in index[anchor]:
                    # The needle ends on a letter, not on the space that would match everywhere
                    # and defeat the substring search's skipping; the boundary is checked after.
                    at = joined.find(needle)
                    while at >= 0:
                        if joined[at + len(needle)] == " ":
                            hits[phrase] = entries
                            break
                        at = joined.find(needle, at + 1)
        cjk_words = 0.0
        if not low.isascii() and _CJK.search(low):
            hangul = len(_HANGUL.findall(low))
            thai = len(_THAI.findall(low))
            cjk_words = ((len(_CJK.findall(low)) - hangul - thai) / 1.6 + hangul * _HANGUL_WEIGHT
                         + thai * _THAI_WEIGHT)
            for ch in set(low) & self._cjk_keys:
                for term, entries in self._cjk[ch]:
                    if term in low:
                        hits[term] = entries

        type_scores: dict[TaskType, float] = {}
        escalators: dict[str, float] = {}
        deesc = constraints = multistep = 0.0
        negations: list[str] = []
        for term, agg in hits.items():
            for task_type, weight in agg.types:
                type_scores[task_type] = type_scores.get(task_type, 0.0) + weight
            if agg.esc:
                escalators[term] = agg.esc
            if agg.other:
                deesc += agg.deesc
                constraints += agg.constraint
                multistep += agg.multistep
                if agg.negation:
                    negations.append(term)
        if len(escalators) > 1:
            _merge_nested(escalators)

        negated: list[str] = []
        if negations and escalators:
            # A hazard ("race condition") is what the work must avoid: "with no race conditions"
            # is a requirement, so no negation cancels it.
            negated = [t for t in self._negated(_clause_tokens(low), low, escalators, negations)
                       if t not in self._hazards]
            for term in negated:
                deesc += 0.5 * escalators.pop(term) * self.weights["deescalator"]
        if escalators and (tokset & self._after_keys or (cjk_words and self._after_cjk)):
            for term in self._negated_after(low, toks, tokset, escalators):
                if term not in self._hazards:
                    negated.append(term)
                    deesc += 0.5 * escalators.pop(term) * self.weights["deescalator"]

        n_tokens = len(toks)
        eff_words = n_tokens + cjk_words
        structure = 0.0
        items = 0
        if "\n" in task:
            items = len(_LIST_ITEM.findall(task))
            if items >= 2:
                structure += 0.25 * (items if items < 6 else 6)
        has_code = "```" in task or (low.count(";") + low.count("{") + low.count("def ") + low.count("=>")) >= 3
        if has_code:
            structure += 0.4
            type_scores[TaskType.CODE_CREATION] = type_scores.get(TaskType.CODE_CREATION, 0.0) + 0.8
        questions = low.count("?") + low.count("？") + low.count("؟")
        if questions >= 2:
            structure += 0.2 * (questions - 1 if questions < 4 else 3)
        structure *= self.weights["structure"]
        if (("+" in low or "*" in low or " / " in low or " - " in low or "=" in low or "^" in low
                or "%" in low or "×" in low or "÷" in low) and _ARITHMETIC.search(low, 0, 4000)):
            type_scores[TaskType.MATH] = type_scores.get(TaskType.MATH, 0.0) + 2.0

        # Type: the best-scored type, with a confidence from its margin over the runner-up.
        trivial = n_tokens <= 8 and (
            " ".join(toks) in self._trivial
            or low.strip(" .!?。！？~") in self._trivial)
        if trivial:
            task_type, type_conf = TaskType.CONVERSATION, 0.95
        elif type_scores:
            task_type, top, second = TaskType.CONVERSATION, -1.0, 0.0
            for key, value in type_scores.items():
                # Ties go to the type listed first in the taxonomy, so that the answer does not
                # depend on set iteration order (which changes with PYTHONHASHSEED).
                if value > top or (value == top and _TYPE_ORDER.get(key, 99) < _TYPE_ORDER.get(task_type, 99)):
                    task_type, top, second = key, value, (top if top > 0 else 0.0)
                elif value > second:
                    second = value
            type_conf = min(0.97, (top - second + 0.5) / (top + 1.5))
        elif eff_words <= 6 and not escalators:
            task_type, type_conf = TaskType.CONVERSATION, 0.45
        else:
            task_type, type_conf = TaskType.REASONING, 0.25

        esc_total = sum(escalators.values())
        length_term = 0.55 * math.log2(1.0 + eff_words / 12.0)
        score = (
            (length_term if length_term < 1.6 else 1.6) * self.weights["length"]
            + _TYPE_PRIOR.get(task_type, 0.0)
            + 0.85 * (esc_total if esc_total < 5.0 else 5.0)
            - (deesc if deesc < 2.5 else 2.5)
            + (constraints if constraints < 1.2 else 1.2)
            + (multistep if multistep < 1.2 else 1.2)
            + structure
        )
        if trivial:
            score = min(score, 0.0)
        if score < -1.0:
            score = -1.0
        b0, b1, b2 = _BOUNDS
        if score < b0:
            complexity, margin = TaskComplexity.SIMPLE, b0 - score
        elif score < b1:
            complexity, margin = TaskComplexity.STANDARD, min(score - b0, b1 - score)
        elif score < b2:
            complexity, margin = TaskComplexity.COMPLEX, min(score - b1, b2 - score)
        else:
            complexity, margin = TaskComplexity.RESEARCH, score - b2
        complexity_conf = 0.95 if trivial else 0.55 + 0.45 * (margin / 0.8 if margin < 0.8 else 1.0)
        # One escalator word is weak evidence of a hard task: "design", "optimise", "strategy" also
        # ask for a meal plan, a morning routine, a way to save on groceries. When nothing else
        # (a second escalator, constraints, steps, structure) backs it, a later layer decides.
        if (complexity.rank >= TaskComplexity.COMPLEX.rank and len(escalators) == 1 and not constraints
                and not multistep and not structure and complexity_conf > _ONE_ESCALATOR_CONFIDENCE):
            complexity_conf = _ONE_ESCALATOR_CONFIDENCE
        # Little evidence of any kind means a guess, whatever the margin says.
        if not hits and not items and not has_code and not trivial and eff_words > 6 and complexity_conf > 0.5:
            complexity_conf = 0.5
        confidence = type_conf if type_conf < complexity_conf else complexity_conf
        if eff_words > _LONG_WORDS:
            # In a long text most words belong to pasted material, not to the ask: its keywords
            # and sums say little about what is wanted, so the evidence counts for less.
            confidence = min(confidence, 0.97 * math.sqrt(_LONG_WORDS / eff_words))
        confidence = round(confidence, 4)

        ctx.signals["l1"] = _Signals(score, tuple(escalators), tuple(negated), deesc, constraints,
                                     multistep, items, has_code, eff_words, trivial, type_scores)
        return Verdict(
            task_type, complexity, confidence, difficulty(task_type, difficulty_for(score)), self.name,
            self._explain(task_type, complexity, hits, escalators, negated, trivial, eff_words),
        )

    def _stem_hits(self, toks: list[str], tokset: set[str], hits: dict[str, _Agg]) -> None:
        """Words that begin with a stem and matched no whole term. Each stem counts once, under the
        first word it matched (so that a negation before that word finds it)."""
        heads = self._stem_heads
        candidates = {t for t in tokset if t[:STEM_MIN] in heads and t not in hits}
        if not candidates:
            return
        used: set[str] = set()
        for tok in toks:
            if tok not in candidates:
                continue
            candidates.discard(tok)
            for n in self._stem_lengths:
                if n <= len(tok):
                    stem = tok[:n]
                    agg = self._stems.get(stem)
                    if agg is not None:
                        if stem not in used:
                            used.add(stem)
                            hits[tok] = agg
                        break
            if not candidates:
                return

    def _negated(self, toks: list[str], low: str, escalators: Mapping[str, float],
                 negations: Iterable[str]) -> list[str]:
        """Escalators within six tokens after a negation cue, in the same clause. A cue is a matched
        negation word, or the first word of a matched negation phrase where the whole phrase stands
        or earlier in its clause, as in "ne … ne de" and "ni … ni" (so "hindi na kailangan" in one
        place does not make every later "hindi" a cue)."""
        words: set[str] = set()
        starts: dict[str, list[list[str]]] = {}
        for term in negations:
            parts = term.split(" ")
            if len(parts) == 1:
                words.add(term)
            else:
                starts.setdefault(parts[0], []).append(parts)
        cues: set[int] = set()
        for i, tok in enumerate(toks):
            if tok in starts and any(toks[i:i + len(p)] == p for p in starts[tok]):
                k = i
                while k >= 0 and toks[k] not in _PUNCT:
                    if toks[k] == tok:
                        cues.add(k)
                    k -= 1
        spans = [(term, term.split(" ")) for term in escalators if " " in term]
        negated: list[str] = []
        window_end = -1
        for i, tok in enumerate(toks):
            if tok in _PUNCT:
                window_end = -1
                continue
            if tok in words or i in cues:
                window_end = 6
                continue
            if window_end > 0:
                window_end -= 1
                if tok in escalators and tok not in negated:
                    negated.append(tok)
                for term, parts in spans:
                    if parts[0] == tok and term not in negated and toks[i:i + len(parts)] == parts:
                        negated.append(term)
        for term in escalators:
            if term not in negated and _is_cjk(term) and self._cjk_negations:
                idx = low.find(term)
                if _THAI.match(term):
                    # Thai words run to four or five characters, and a space ends a Thai clause.
                    before = _CLAUSE_END.split(low[max(0, idx - 24):idx])[-1]
                else:
                    before = low[max(0, idx - 8):idx]
                if any(n in before for n in self._cjk_negations):
                    negated.append(term)
        return negated

    def _negated_after(self, low: str, toks: list[str], tokset: set[str],
                       escalators: Mapping[str, float]) -> list[str]:
        """Escalators just before a negation that follows what it negates ("分散システムの設計は
        必要ない", "dağıtık mimariye gerek yok"), in the same clause: one that ends at most four words
        (six characters of unspaced text) before the cue, then one that ends as close before that
        one, and so on ("분산 아키텍처 설계까지는 필요 없고" cancels 설계, then 아키텍처)."""
        negated: list[str] = []
        anchors = tokset & self._after_keys
        if anchors:
            joined = " " + " ".join(toks) + " "
            cues = {cue for anchor in anchors for cue, needle in self._after[anchor] if needle in joined}
            if cues:
                firsts = {cue[0] for cue in cues}
                clause = _clause_tokens(low)
                for i, tok in enumerate(clause):
                    if tok in firsts:
                        for cue in cues:
                            if cue[0] == tok and tuple(clause[i:i + len(cue)]) == cue:
                                _chain_back(clause, i, escalators, negated)
        for cue in self._after_cjk:
            at = low.find(cue)
            while at >= 0:
                _chain_back(low, at, escalators, negated)
                at = low.find(cue, at + 1)
        return negated

    @staticmethod
    def _explain(task_type: TaskType, complexity: TaskComplexity, hits: Mapping[str, _Agg],
                 escalators: Mapping[str, float], negated: list[str], trivial: bool, words: float) -> str:
        if trivial:
            return "Layer 1: a greeting or acknowledgement: conversation, simple"
        cues = [term for term, agg in hits.items() if any(t is task_type for t, _ in agg.types)]
        why = "keywords " + ", ".join(cues[:4]) if cues else "no type keywords"
        text = f"Layer 1: {task_type} ({why}); {complexity} ({int(words)} words"
        if escalators:
            text += ", escalators " + ", ".join(list(escalators)[:4])
        if negated:
            text += ", negated " + ", ".join(negated[:3])
        return text + ")"
