"""Token counting for cost estimates: a per-model tokenizer registry over a dependency-free default.

How a count is made, for ``count_tokens(text, model)``:

1. a tokenizer registered for that exact model name (:func:`register_tokenizer`);
2. tiktoken, when it is installed, knows the model, and its encoding file is *already* in
   tiktoken's cache (``TIKTOKEN_CACHE_DIR``, ``DATA_GYM_CACHE_DIR`` or its default directory) with
   the expected checksum — tiktoken downloads missing files, and dmr never reaches the network
   unless told to, so a missing file means step 3, silently;
3. :func:`heuristic_count`, which sees text the way byte-level BPE tokenizers do: about four ASCII
   characters per token, three two-byte characters (accented Latin, Cyrillic, Greek, Arabic,
   Hebrew) per token, and one token per three- or four-byte character (CJK, kana, hangul, Indic
   scripts, emoji). It runs in linear time, in C (a few ms per MB).

To prime tiktoken's cache offline, copy the ``.tiktoken`` file to
``$TIKTOKEN_CACHE_DIR/<sha1 of its download URL>``.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import tempfile
import threading
from typing import Any, Callable

from dmr.errors import ConfigError, InputTypeError, NotAvailableError
from dmr.types import TaskComplexity

__all__ = [
    "count_tokens",
    "estimate_output_tokens",
    "get_tokenizer",
    "heuristic_count",
    "register_tokenizer",
    "unregister_tokenizer",
]

Tokenizer = Callable[[str], int]

# Rough planning numbers for the length of an answer, used only to estimate a call's cost before it
# is made; real answers vary by an order of magnitude either way.
_OUTPUT_TOKENS = {"simple": 150, "standard": 450, "complex": 1200, "research": 2500}

# Maps every UTF-8 byte to its class: ASCII, continuation, or the lead byte of a 2/3/4-byte char.
_BYTE_CLASS = bytes(
    ord("a")
    if b < 0x80
    else ord("c")
    if b < 0xC0
    else ord("2")
    if b < 0xE0
    else ord("3")
    if b < 0xF0
    else ord("4")
    for b in range(256)
)

# Where tiktoken caches each encoding (the sha1 of this URL names the file) and the sha256 it
# checks; a file that fails the check would make tiktoken download it again, so dmr checks first.
_TIKTOKEN_FILES = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "p50k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/p50k_base.tiktoken",
        "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
    ),
    "r50k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken",
        "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
    ),
}

_lock = threading.Lock()
_registered: dict[str, Tokenizer] = {}
_auto: dict[str | None, Tokenizer] = {}  # resolved steps 2-3 per model; cleared on registration
_revision = [0]  # bumped on every (un)registration, so callers may cache tokenizer_for()


def heuristic_count(text: str) -> int:
    """Estimated tokens in ``text`` without any tokenizer (see the module docstring)."""
    if not text:
        return 0
    if text.isascii():
        return (len(text) + 3) // 4
    classes = text.encode("utf-8", "surrogatepass").translate(_BYTE_CLASS)
    two, three, four = classes.count(b"2"), classes.count(b"3"), classes.count(b"4")
    ascii_chars = len(text) - two - three - four
    return max(1, math.ceil(ascii_chars / 4 + two / 3 + three + four))


def register_tokenizer(model_name: str, fn: Tokenizer) -> None:
    """Count tokens for ``model_name`` with ``fn(text) -> int`` from now on (replaces any earlier one)."""
    if not callable(fn):
        raise TypeError(f"register_tokenizer({model_name!r}, ...): the tokenizer must be callable")
    with _lock:
        _registered[model_name] = fn
        _auto.clear()
        _revision[0] += 1


def unregister_tokenizer(model_name: str) -> bool:
    """Forget the tokenizer registered for ``model_name``; True if there was one."""
    with _lock:
        _auto.clear()
        _revision[0] += 1
        return _registered.pop(model_name, None) is not None


def tokenizer_for(model: str | None) -> Tokenizer:
    """The counter :func:`count_tokens` would use for ``model`` (valid until the next registration;
    :func:`revision` tells when that happened)."""
    fn = _registered.get(model) if model is not None else None
    return fn if fn is not None else _auto_tokenizer(model)


def revision() -> int:
    return _revision[0]


def count_tokens(text: str, model: str | None = None) -> int:
    """Tokens in ``text`` as ``model`` would count them, as well as dmr can tell offline."""
    if not isinstance(text, str):
        raise InputTypeError(f"count_tokens expects text (str), got {type(text).__name__}")
    fn = _registered.get(model) if model is not None else None
    if fn is None:
        fn = _auto_tokenizer(model)
    return int(fn(text))


def get_tokenizer(spec: Any = None, *, model: str | None = None) -> Tokenizer:
    """A ``text -> int`` counter for a ``tokenizer=`` option: ``None``/``"auto"`` (as
    :func:`count_tokens`), ``"heuristic"``, ``"tiktoken"`` (raises :class:`NotAvailableError` when
    it cannot run offline) or a callable, returned as is."""
    if callable(spec):
        return spec
    name = "auto" if spec is None else str(spec).strip().lower()
    if name == "auto":
        return functools.partial(count_tokens, model=model)
    if name == "heuristic":
        return heuristic_count
    if name == "tiktoken":
        counter = _tiktoken_counter(model, default_encoding="o200k_base")
        if counter is None:
            raise NotAvailableError(
                "tokenizer='tiktoken' needs the tiktoken package and its encoding file already in "
                "tiktoken's cache (dmr does not download it); install dynamic-model-router[tokenizers] "
                "and prime TIKTOKEN_CACHE_DIR, or use tokenizer='auto'"
            )
        return counter
    raise ConfigError(f"unknown tokenizer {spec!r}: use 'auto', 'heuristic', 'tiktoken' or a callable")


def estimate_output_tokens(complexity: TaskComplexity | str) -> int:
    """A rough planning length for the answer to a task of this complexity (for cost estimates)."""
    found = _OUTPUT_TOKENS.get(complexity)  # members hash as their string values
    return found if found is not None else _OUTPUT_TOKENS.get(TaskComplexity(complexity).value, _OUTPUT_TOKENS["standard"])


def _auto_tokenizer(model: str | None) -> Tokenizer:
    fn = _auto.get(model)
    if fn is None:
        # Resolved outside the lock: loading an encoding can take a second, and two threads
        # resolving the same model at once merely do the same work twice.
        fn = (_tiktoken_counter(model) if model is not None else None) or heuristic_count
        with _lock:
            fn = _auto.setdefault(model, fn)
    return fn


def _tiktoken_counter(model: str | None, default_encoding: str | None = None) -> Tokenizer | None:
    try:
        import tiktoken
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return None
    try:
        encoding = encoding_name_for_model(model) if model else default_encoding
    except KeyError:
        encoding = default_encoding
    if encoding is None or not _tiktoken_file_cached(encoding):
        return None
    try:
        enc = tiktoken.get_encoding(encoding)
    except Exception:  # a broken install must not break routing; the heuristic still answers
        return None
    return lambda text: len(enc.encode_ordinary(text))


def _tiktoken_cache_dir() -> str | None:
    # Mirrors tiktoken.load.read_file_cached; an empty setting disables its cache (always download).
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return os.environ["TIKTOKEN_CACHE_DIR"] or None
    if "DATA_GYM_CACHE_DIR" in os.environ:
        return os.environ["DATA_GYM_CACHE_DIR"] or None
    try:
        from tiktoken.load import _default_cache_dir  # tiktoken >= 0.10
    except ImportError:
        return os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return _default_cache_dir()


def _tiktoken_file_cached(encoding: str) -> bool:
    """True when tiktoken can load ``encoding`` from its cache, without a download."""
    known = _TIKTOKEN_FILES.get(encoding)
    cache_dir = _tiktoken_cache_dir()
    if known is None or cache_dir is None:
        return False
    url, sha256 = known
    path = os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest() == sha256
    except OSError:
        return False
