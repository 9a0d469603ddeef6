"""Lexical features for Layer 3: hashed word and character n-grams, plus a few dense signals.

Everything is computed with numpy on the text's code points, with no Python loop over
characters: the text becomes a ``uint64`` array, n-gram hashes are rolling polynomial hashes built
by a handful of vector operations (wrapping arithmetic modulo 2**64), and a multiplicative hash
maps each n-gram to one of ``2**bits`` buckets. The hash does not depend on ``PYTHONHASHSEED``, so
a head trained in one process gives the same answers in every other.

Character n-grams carry most of the signal and work for every script (CJK has no spaces); word
unigrams and bigrams add whole-word evidence. Feature values are sublinear term frequencies times
an inverse document frequency learned by :meth:`NgramFeaturizer.fit`, L2-normalised per text.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from dmr.layers.base import valid_unicode

__all__ = ["DENSE_NAMES", "NgramFeaturizer", "SparseRows", "condense_data", "dense_features"]

_P = np.uint64(1_000_003)            # polynomial base (odd, so invertible modulo 2**64)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing multiplier
# Salts keep an n-gram of one kind from sharing a bucket with the same hash of another kind.
_CHAR_SALT = 0x51ED270B
_WORD_SALT = 0x2545F491
_BIGRAM_SALT = 0x6A09E667


# ASCII letters and digits are word characters; above ASCII, everything but spaces and punctuation.
_ASCII_WORD = np.zeros(128, dtype=bool)
for _c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_":
    _ASCII_WORD[ord(_c)] = True
_NON_WORD_RANGES = ((0x80, 0xBF), (0xD7, 0xD7), (0xF7, 0xF7), (0x2000, 0x206F), (0x3000, 0x303F),
                    (0xFF00, 0xFF0F), (0xFF1A, 0xFF20), (0xFE30, 0xFE4F))


def _word_mask(codes: np.ndarray) -> np.ndarray:
    mask = codes >= 128
    ascii_ = ~mask
    mask[ascii_] = _ASCII_WORD[codes[ascii_].astype(np.intp)]
    if not ascii_.all():
        for lo, hi in _NON_WORD_RANGES:
            mask &= ~((codes >= lo) & (codes <= hi))
    return mask


# A token with no letter: a number, a date, a price, a separator ("|", "-", "3.1%", "2024-05-01,412").
_DATA_TOKEN = r"(?:[^\s\w]|[\d_])+"
DATA_RUN_KEEP = 12
DATA_RUN_LONGEST = 16
# More than DATA_RUN_LONGEST such tokens in a row, whole tokens only.
_DATA_RUN = re.compile(rf"(?<!\S)(?:{_DATA_TOKEN}\s+){{{DATA_RUN_LONGEST},}}{_DATA_TOKEN}(?!\S)")
_OTHER_DIGIT = re.compile(r"[^\D0-9]")  # a digit of another script: ১, ٣, ७, ３
_DATA_HEAD = re.compile(rf"(?<!\S)(?:{_DATA_TOKEN}\s+){{{DATA_RUN_KEEP}}}")


def condense_data(text: str) -> str:
    """``text`` with every run of more than :data:`DATA_RUN_LONGEST` letterless tokens (a pasted
    table of numbers, a long list of values) cut to its first :data:`DATA_RUN_KEEP` and "…".

    What a task asks is in its words; a pasted table only says that there is data. Left whole, 60
    rows of numbers outweigh a one-line request in every feature (n-grams, digit share, length,
    the embedding's mean), and a regression or a forecast on them read as a simple sum. The head
    reads the condensed text when it is trained and when it predicts; the cost estimate and Layer
    1 still see the whole text."""
    if len(text) < 2 * DATA_RUN_LONGEST:
        return text
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) - len(raw.translate(None, b"0123456789")) < DATA_RUN_KEEP and (
            len(raw) == len(text) or _OTHER_DIGIT.search(text) is None):
        return text  # too few digits for a table of numbers (the common case, in a microsecond)
    return _DATA_RUN.sub(lambda m: _DATA_HEAD.match(m.group()).group() + "…", text)


class SparseRows:
    """A minimal CSR matrix: row ``i`` is ``indices[indptr[i]:indptr[i+1]]`` with ``values``."""

    __slots__ = ("indptr", "indices", "values", "n_cols")

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, n_cols: int) -> None:
        self.indptr, self.indices, self.values, self.n_cols = indptr, indices, values, n_cols

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def row_ids(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_rows), np.diff(self.indptr))

    def take(self, rows: np.ndarray) -> SparseRows:
        """The rows ``rows``, in that order."""
        lengths = np.diff(self.indptr)[rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        pick = np.concatenate([np.arange(self.indptr[r], self.indptr[r + 1]) for r in rows]) if len(rows) else \
            np.zeros(0, dtype=np.int64)
        return SparseRows(indptr, self.indices[pick], self.values[pick], self.n_cols)

    def dot(self, weights: np.ndarray, dtype: Any = None) -> np.ndarray:
        """``self @ weights`` as a float64 array; ``dtype`` (e.g. float32, faster) is the precision
        of the products, by default numpy's promotion of the two operands."""
        out = np.zeros((self.n_rows, weights.shape[1]), dtype=np.float64)
        if len(self.indices):
            contrib = np.take(weights, self.indices, axis=0)
            if dtype is None:
                contrib = contrib * self.values[:, None]
            else:
                contrib = contrib.astype(dtype, copy=False)
                contrib *= self.values[:, None].astype(dtype)
            nonempty = np.flatnonzero(np.diff(self.indptr) > 0)
            out[nonempty] = np.add.reduceat(contrib, self.indptr[:-1][nonempty], axis=0)
        return out


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    inverse = np.uint64(pow(int(_P), -1, 2**64))
    up = np.empty(n, dtype=np.uint64)
    down = np.empty(n, dtype=np.uint64)
    up[0] = down[0] = 1
    if n > 1:
        up[1:] = _P
        down[1:] = inverse
        np.cumprod(up, out=up)
        np.cumprod(down, out=down)
    return up, down


class NgramFeaturizer:
    """Hashes text into ``2**bits`` n-gram buckets.

    Parameters are stored as given; :meth:`fit` learns ``idf_`` (one weight per bucket).
    """

    def __init__(self, bits: int = 18, char_ngrams: tuple[int, int] = (1, 5), word_ngrams: int = 2,
                 max_chars: int = 4000, ask_chars: int = 0, ask_bits: int = 16) -> None:
        self.bits = bits
        self.char_ngrams = tuple(char_ngrams)
        self.word_ngrams = word_ngrams
        self.max_chars = max_chars
        self.ask_chars = ask_chars
        self.ask_bits = ask_bits
        self._up, self._down = _powers(2 * max_chars + 8)

    @property
    def n_features(self) -> int:
        return (1 << self.bits) + ((1 << self.ask_bits) if self.ask_chars else 0)

    def params(self) -> dict[str, Any]:
        out = {"bits": self.bits, "char_ngrams": list(self.char_ngrams), "word_ngrams": self.word_ngrams,
               "max_chars": self.max_chars}
        if self.ask_chars:
            out.update(ask_chars=self.ask_chars, ask_bits=self.ask_bits)
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, Any], idf: np.ndarray | None = None) -> NgramFeaturizer:
        self = cls(int(params["bits"]), tuple(params["char_ngrams"]), int(params["word_ngrams"]),
                   int(params["max_chars"]), int(params.get("ask_chars", 0)), int(params.get("ask_bits", 16)))
        if idf is not None:
            if idf.shape != (self.n_features,):
                raise ValueError(f"idf has shape {idf.shape}, expected ({self.n_features},)")
            self.idf_ = idf.astype(np.float32)
        return self

    # -- hashing -------------------------------------------------------------------------------
    def _normalise(self, text: str) -> str:
        if len(text) > self.max_chars:
            head = self.max_chars * 3 // 4
            text = text[:head] + " " + text[-(self.max_chars - head - 1):]
        text = valid_unicode(text)  # a lone surrogate has no UTF-32 code
        # lower() can lengthen a few characters ("İ"); the cut keeps the hash powers in range.
        return " " + " ".join(text.lower().split())[:2 * self.max_chars] + " "

    def _ask(self, normalised: str) -> str:
        """The *ask view* of a normalised text: all of it when short, else its opening and its end,
        where a request usually sits around pasted material."""
        n = self.ask_chars
        if len(normalised) <= 2 * n + 2:
            return normalised
        return normalised[:n + 1] + " " + normalised[-(n + 1):]

    def buckets(self, text: str) -> np.ndarray:
        """The bucket id of every n-gram occurrence in ``text`` (with repeats). With an ask view
        (``ask_chars``), its n-grams follow in their own ``2**ask_bits`` ids after the main ones."""
        s = self._normalise(text)
        mixed = self._hash(s)
        main = self._top(mixed, self.bits)
        if not self.ask_chars:
            return main
        ask = self._ask(s)
        # A short text is its own ask view: its hashes are reused, not computed twice.
        return np.concatenate([main, self._top(mixed if ask is s else self._hash(ask), self.ask_bits)
                               + (1 << self.bits)])

    @staticmethod
    def _top(mixed: np.ndarray, bits: int) -> np.ndarray:
        """Bucket ids: the top ``bits`` bits of the mixed hashes."""
        return (mixed >> np.uint64(64 - bits)).astype(np.int64)

    def _hash(self, s: str) -> np.ndarray:
        codes = np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        parts = []
        lo, hi = self.char_ngrams
        h = codes
        for n in range(1, hi + 1):
            if n > 1:
                if len(h) < 2:
                    break
                h = h[:-1] * _P + codes[n - 1:]
            if n >= lo:
                parts.append(h + np.uint64(_CHAR_SALT * n))
        if self.word_ngrams:
            # Word characters: ASCII letters and digits, and every code point above ASCII except
            # spaces and punctuation blocks. The text starts and ends with a space, so every word
            # has a start and an end.
            wordish = _word_mask(codes)
            edges = np.flatnonzero(wordish[1:] != wordish[:-1]) + 1
            starts, ends = edges[0::2], edges[1::2]
            if len(starts):
                prefix = np.zeros(len(codes) + 1, dtype=np.uint64)
                np.cumsum(codes * self._down[:len(codes)], out=prefix[1:])
                words = (prefix[ends] - prefix[starts]) * self._up[ends - 1]
                parts.append(words + np.uint64(_WORD_SALT))
                if self.word_ngrams >= 2 and len(starts) > 1:
                    pairs = (prefix[ends[1:]] - prefix[starts[:-1]]) * self._up[ends[1:] - 1]
                    parts.append(pairs + np.uint64(_BIGRAM_SALT))
        allh = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
        return allh * _MIX

    def batch_buckets(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`buckets` of many texts in one vectorised pass: ``(text index, bucket)`` of every
        n-gram occurrence. The texts are laid end to end; an n-gram that would cross from one text
        into the next is dropped, and word hashes use powers counted from each text's start."""
        strings = [self._normalise(t) for t in texts]
        who, mixed = self._batch_hash(strings)
        ids = self._top(mixed, self.bits)
        if not self.ask_chars:
            return who, ids
        # Short texts are their own ask view (their hashes are reused); long ones hash theirs.
        views = [self._ask(s) for s in strings]
        long = [i for i, (s, view) in enumerate(zip(strings, views)) if view is not s]
        short = np.ones(len(strings), dtype=bool)
        short[long] = False
        keep = short[who]
        whos, asks = [who, who[keep]], [ids, self._top(mixed[keep], self.ask_bits) + (1 << self.bits)]
        if long:
            who2, mixed2 = self._batch_hash([views[i] for i in long])
            whos.append(np.asarray(long, dtype=np.int64)[who2])
            asks.append(self._top(mixed2, self.ask_bits) + (1 << self.bits))
        return np.concatenate(whos), np.concatenate(asks)

    def _batch_hash(self, strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
        codes = np.frombuffer("".join(strings).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        doc = np.repeat(np.arange(len(strings)), lengths)
        offsets = np.zeros(len(strings) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        local = np.arange(len(codes)) - offsets[doc]
        parts, owners = [], []
        lo, hi = self.char_ngrams
        h = codes
        for n in range(1, hi + 1):
            if n > 1:
                if len(h) < 2:
                    break
                h = h[:-1] * _P + codes[n - 1:]
            if n >= lo:
                inside = doc[:len(h)] == doc[n - 1:]
                parts.append(h[inside] + np.uint64(_CHAR_SALT * n))
                owners.append(doc[:len(h)][inside])
        if self.word_ngrams and len(codes):
            wordish = _word_mask(codes)
            edges = np.flatnonzero(wordish[1:] != wordish[:-1]) + 1
            starts, ends = edges[0::2], edges[1::2]
            if len(starts):
                prefix = np.zeros(len(codes) + 1, dtype=np.uint64)
                np.cumsum(codes * self._down[local], out=prefix[1:])
                words = (prefix[ends] - prefix[starts]) * self._up[local[ends - 1]]
                parts.append(words + np.uint64(_WORD_SALT))
                owners.append(doc[starts])
                if self.word_ngrams >= 2 and len(starts) > 1:
                    same = doc[starts[:-1]] == doc[starts[1:]]
                    a, b = starts[:-1][same], ends[1:][same]
                    parts.append((prefix[b] - prefix[a]) * self._up[local[b - 1]] + np.uint64(_BIGRAM_SALT))
                    owners.append(doc[a])
        allh = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
        who = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
        return who, allh * _MIX

    def transform_batch(self, texts: Sequence[str]) -> SparseRows:
        """:meth:`transform` in one vectorised pass (the same rows, much faster for many texts)."""
        who, ids = self.batch_buckets(texts)
        shift = np.int64(self.n_features.bit_length())
        keys = (who << shift) | ids
        if len(texts) << int(shift) <= 1 << 32:
            keys = keys.astype(np.uint32)  # sorts twice as fast, in the same order
        keys.sort()
        first = np.empty(len(keys), dtype=bool)
        first[:1] = True
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        counts = np.diff(starts, append=len(keys))
        unique = keys[starts].astype(np.int64)
        rows, cols = unique >> shift, unique & ((np.int64(1) << shift) - 1)
        vals = (1.0 + np.log(counts)) * self.idf_[cols]
        # Each view is normalised on its own, so a long paste does not drown the ask view.
        view = rows * 2 + (cols >= (1 << self.bits))
        norms = np.sqrt(np.bincount(view, weights=vals * vals, minlength=2 * len(texts)))
        norms[norms == 0] = 1.0
        vals /= norms[view]
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(texts)), out=indptr[1:])
        return SparseRows(indptr, cols, vals, self.n_features)

    def _row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        # np.unique(..., return_counts=True) by hand: the same result with less call overhead.
        b = self.buckets(text)
        b.sort()
        first = np.empty(len(b), dtype=bool)
        first[:1] = True
        np.not_equal(b[1:], b[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        counts = np.diff(starts, append=len(b))
        return b[starts], 1.0 + np.log(counts)

    # -- fitting and transforming --------------------------------------------------------------
    def fit(self, texts: Iterable[str]) -> NgramFeaturizer:
        docs = np.zeros(self.n_features, dtype=np.float64)
        n = 0
        for text in texts:
            docs[np.unique(self.buckets(text))] += 1
            n += 1
        self.idf_ = (np.log((1.0 + n) / (1.0 + docs)) + 1.0).astype(np.float32)
        return self

    def transform_one(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One text as (bucket ids, L2-normalised tf-idf values)."""
        ids, tf = self._row(text)
        vals = tf * self.idf_[ids]
        # As in transform_batch: the main ids and the ask view's are normalised apart.
        view = (ids >= (1 << self.bits)).astype(np.intp)
        norms = np.sqrt(np.bincount(view, weights=vals * vals, minlength=2))
        norms[norms == 0] = 1.0
        return ids, vals / norms[view]

    def transform(self, texts: Iterable[str], chunk: int = 256) -> SparseRows:
        """Many texts as rows of a sparse matrix (vectorised in chunks to bound memory)."""
        texts = list(texts)
        pieces = [self.transform_batch(texts[i:i + chunk]) for i in range(0, len(texts), chunk)]
        if not pieces:
            return SparseRows(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0), self.n_features)
        indptr = [np.zeros(1, dtype=np.int64)]
        offset = 0
        for piece in pieces:
            indptr.append(piece.indptr[1:] + offset)
            offset += piece.indptr[-1]
        return SparseRows(np.concatenate(indptr), np.concatenate([p.indices for p in pieces]),
                          np.concatenate([p.values for p in pieces]), self.n_features)


_L1_TYPES = ("reasoning", "thinking", "analyzing", "code_creation", "doc_creation", "translation", "math",
             "conversation", "multimodal")
DENSE_NAMES = ("log_chars", "log_words", "lines", "questions", "digits", "code", "list_items",
               "l1_score", "l1_words", "l1_escalators", "l1_constraints", "l1_multistep", "l1_deescalation",
               "l1_trivial") + tuple(f"l1_{name}" for name in _L1_TYPES)


def dense_features(text: str, signals: Any = None) -> np.ndarray:
    """Surface signals that n-gram frequencies lose (length, structure) and Layer 1's signals."""
    words = len(text.split())
    out = np.zeros(len(DENSE_NAMES), dtype=np.float64)
    out[0] = math.log1p(len(text)) / 8.0
    out[1] = math.log1p(words) / 6.0
    out[2] = min(text.count("\n"), 50) / 10.0
    out[3] = min(text.count("?") + text.count("？"), 10) / 3.0
    out[4] = sum(map(text.count, "0123456789")) / max(1, len(text))
    out[5] = 1.0 if ("```" in text or text.count(";") + text.count("{") >= 3) else 0.0
    if signals is not None:
        out[6] = min(signals.list_items, 10) / 3.0
        out[7] = signals.score / 3.0
        out[8] = math.log1p(signals.words) / 6.0
        out[9] = min(len(signals.escalators), 6) / 2.0
        out[10] = signals.constraints
        out[11] = signals.multistep
        out[12] = signals.deescalation
        out[13] = 1.0 if signals.trivial else 0.0
        # Layer 1's keyword evidence for each task type, from every language's pack.
        scores = signals.type_scores
        if scores:
            for i, name in enumerate(_L1_TYPES, 14):
                value = scores.get(name)
                if value:
                    out[i] = math.log1p(value) / 2.0
    return out
