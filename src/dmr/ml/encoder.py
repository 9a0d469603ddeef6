"""Sentence encoders for Layer 3, all running offline with no torch.

Three kinds, chosen by what a directory holds (``load_encoder``):

- **static** (the default, shipped in the package): one vector per token of a WordPiece
  vocabulary, distilled from all-MiniLM-L6-v2 (``scripts/build_encoder.py static``). Encoding is a
  tokenizer pass and a mean over rows of a table: about a tenth of a millisecond for a short task.
  Files: ``encoder.json``, ``embeddings.npz`` (array ``embeddings``), ``tokenizer.json``.
- **onnx**: a transformer exported to ONNX (``scripts/build_encoder.py onnx``), run by
  onnxruntime with mean pooling over the attention mask. Files: ``tokenizer.json`` and
  ``model.onnx`` (or ``onnx/model*.onnx``).
- **sentence-transformers**: a sentence-transformers directory without an ONNX export, run by
  the ``sentence_transformers`` package when the user has it installed (it brings torch).

``encode`` returns L2-normalised float32 rows (for similarity); ``features`` is what a Layer 3
head is trained on (the static encoder's plain token mean, which lets a head fold its weights into
the token table, see :meth:`StaticEncoder.token_ids`). Every encoder has a ``fingerprint`` that a
head records when it is trained, so a head is never applied to embeddings it was not trained on.
Tokenisation uses the ``tokenizers`` package (``pip install 'dynamic-model-router[ml]'``).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import threading
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dmr.layers.base import valid_unicode
from dmr.ml.wordpiece import Pieces

__all__ = ["DEFAULT_ENCODER", "Encoder", "EncoderUnavailable", "OnnxEncoder", "SentenceTransformersEncoder",
           "StaticEncoder", "default_encoder", "load_encoder"]

DEFAULT_ENCODER = Path(__file__).resolve().parents[1] / "data" / "l3" / "encoder"
# Longer texts are encoded from their head and tail: the cost stays bounded and the start (the
# ask) and the end (often the question about a pasted document) are what matter. The static
# encoder reads less (its tokenizer pass is most of its cost; encoder.json can set max_chars).
MAX_CHARS = 6000
STATIC_MAX_CHARS = 1200
_WORD_CACHE = 100_000
_BATCH = 128  # texts tokenized in one call by mean_rows
FORMAT = "dmr-static-encoder/1"


class EncoderUnavailable(RuntimeError):
    """The encoder cannot run here (missing package, file or bad artefact); the message says why."""


def _clip(text: str, limit: int = MAX_CHARS) -> str:
    """At most ``limit`` characters of ``text`` (its opening and its end), valid for a tokenizer."""
    if len(text) > limit:
        head = limit * 2 // 3
        text = text[:head] + " " + text[-(limit - head):]
    return valid_unicode(text)


def _tokenizer(path: Path, max_tokens: int) -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise EncoderUnavailable("the 'tokenizers' package is not installed "
                                 "(pip install 'dynamic-model-router[ml]')") from None
    if not path.is_file():
        raise EncoderUnavailable(f"tokenizer file missing: {path}")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers package raises plain Exception subclasses
        raise EncoderUnavailable(f"cannot read tokenizer {path}: {exc}") from None
    tok.no_padding()
    tok.enable_truncation(max_tokens)
    return tok


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return (x / norms).astype(np.float32, copy=False)


class Encoder:
    """Base class: ``encode(texts) -> (n, dim)`` float32, L2-normalised rows."""

    kind = "base"
    name = ""
    dim = 0
    fingerprint = ""

    def encode(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors a Layer 3 head is trained on (by default the normalised embeddings)."""
        return self.encode(texts)

    def describe(self) -> dict[str, Any]:
        """What a head records about the encoder it was trained on."""
        return {"kind": self.kind, "name": self.name, "dim": self.dim, "fingerprint": self.fingerprint}


class StaticEncoder(Encoder):
    """Mean of per-token vectors (model2vec-style static embeddings); numpy and tokenizers only."""

    kind = "static"

    def __init__(self, directory: str | Path) -> None:
        directory = Path(directory)
        try:
            meta = json.loads((directory / "encoder.json").read_text(encoding="utf-8"))
            raw = (directory / "embeddings.npz").read_bytes()
            with np.load(io.BytesIO(raw), allow_pickle=False) as arrays:
                table = arrays["embeddings"]
        except FileNotFoundError as exc:
            raise EncoderUnavailable(f"static encoder file missing: {exc.filename}") from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise EncoderUnavailable(f"cannot read static encoder in {directory}: {type(exc).__name__}: {exc}") from None
        if meta.get("format") != FORMAT:
            raise EncoderUnavailable(f"{directory}: format {meta.get('format')!r}, expected {FORMAT!r}")
        if table.ndim != 2 or not np.issubdtype(table.dtype, np.floating) or not np.isfinite(table).all():
            raise EncoderUnavailable(f"{directory}: embeddings must be a finite 2-D float array")
        # Kept in the precision it is stored in (float16 halves its memory); rows are widened when
        # read, and means are summed in float64, so the features are the same.
        self.table = table if table.dtype in (np.float16, np.float32) else table.astype(np.float32)
        self.dim = int(self.table.shape[1])
        self.name = str(meta.get("name") or directory.name)
        self.max_tokens = int(meta.get("max_tokens", 512))
        self.max_chars = int(meta.get("max_chars", STATIC_MAX_CHARS))
        self.tokenizer = _tokenizer(directory / "tokenizer.json", self.max_tokens)
        if self.tokenizer.get_vocab_size() > len(self.table):
            raise EncoderUnavailable(f"{directory}: the tokenizer has {self.tokenizer.get_vocab_size()} tokens "
                                     f"but the table only {len(self.table)} rows")
        # The unknown token carries no meaning: a zero row.
        unk = meta.get("unk_token")
        unk_id = self.tokenizer.token_to_id(unk) if unk else None
        if unk_id is not None:
            self.table[unk_id] = 0.0
        self.fingerprint = hashlib.sha256(raw).hexdigest()[:16]
        # Tokens of each whitespace-separated word, memoised: the tokenizer splits words on their
        # own anyway (punctuation, CJK characters), so this gives exactly its ids, and common
        # words then cost one dict lookup. Cleared when a new word finds it full (_WORD_CACHE entries).
        self._words: dict[str, list[int]] = {}
        # Batches of a BERT tokenizer's text skip its per-text bookkeeping (dmr.ml.wordpiece).
        self._pieces = Pieces(self.tokenizer, self.max_tokens) if Pieces.fits(self.tokenizer) else None

    def token_ids(self, text: str) -> list[int]:
        """The token ids of ``text`` (clipped), as the tokenizer gives them, at most max_tokens."""
        words = self._words
        out: list[int] = []
        encode = self.tokenizer.encode
        for word in _clip(text, self.max_chars).split():
            ids = words.get(word)
            if ids is None:
                if len(words) >= _WORD_CACHE:
                    words.clear()
                ids = words[word] = encode(word, add_special_tokens=False).ids
            out += ids
            if len(out) >= self.max_tokens:
                return out[:self.max_tokens]
        return out

    def batch_token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The tokenizer's ids of many texts (clipped, at most max_tokens each), without the word
        memo: a large batch of varied text has more distinct words than the memo holds. A BERT
        tokenizer's are found by :class:`~dmr.ml.wordpiece.Pieces`, the rest in one parallel
        tokenizer call."""
        clipped = [_clip(text, self.max_chars) for text in texts]
        rows: list[Any] = list(map(self._pieces.ids, clipped)) if self._pieces is not None else [None] * len(clipped)
        rest = [i for i, row in enumerate(rows) if row is None]
        if rest:
            encoded = self.tokenizer.encode_batch_fast([clipped[i] for i in rest], add_special_tokens=False)
            for i, enc in zip(rest, encoded):
                rows[i] = enc.ids
        return rows

    def mean_rows(self, texts: Sequence[str], table: np.ndarray | None = None) -> np.ndarray:
        """For each text, the mean of the rows of ``table`` (default: the embeddings; any array
        with one row per token, such as a head's weights folded into it) at its token ids;
        zeros for a text with no tokens. One text goes through the word memo, many through
        :meth:`batch_token_ids`; both sum in float64, so they give the same rows."""
        table = self.table if table is None else table
        out = np.zeros((len(texts), table.shape[1]), dtype=np.result_type(table.dtype, np.float32))
        if len(texts) == 1:
            ids = self.token_ids(texts[0])
            if ids:
                out[0] = table[ids].astype(np.float64).sum(axis=0) / len(ids)
            return out
        for start in range(0, len(texts), _BATCH):
            rows = self.batch_token_ids(texts[start:start + _BATCH])
            lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
            filled = np.flatnonzero(lengths)
            if not len(filled):
                continue
            flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
            offsets = np.cumsum(lengths) - lengths
            sums = np.add.reduceat(table[flat].astype(np.float64), offsets[filled], axis=0)
            out[start + filled] = sums / lengths[filled, None]
        return out

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """The mean of each text's token rows (zeros for a text with no tokens)."""
        return self.mean_rows(texts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return _normalise(self.features(texts))


def _onnx_file(directory: Path) -> Path | None:
    for candidate in [directory / "model.onnx", *sorted((directory / "onnx").glob("model*.onnx"))]:
        if candidate.is_file():
            return candidate
    return None


class OnnxEncoder(Encoder):
    """A transformer exported to ONNX, run by onnxruntime (one thread), mean-pooled."""

    kind = "onnx"

    def __init__(self, directory: str | Path, max_tokens: int = 256, threads: int = 1) -> None:
        directory = Path(directory)
        model = _onnx_file(directory)
        if model is None:
            raise EncoderUnavailable(f"no model.onnx (or onnx/model*.onnx) in {directory}")
        try:
            import onnxruntime as ort
        except ImportError:
            raise EncoderUnavailable("onnxruntime is not installed (pip install onnxruntime)") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EncoderUnavailable(f"onnxruntime cannot load {model}: {exc}") from None
        self.inputs = {i.name for i in self.session.get_inputs()}
        if "input_ids" not in self.inputs:
            raise EncoderUnavailable(f"{model}: expected an 'input_ids' input, found {sorted(self.inputs)}")
        self.tokenizer = _tokenizer(directory / "tokenizer.json", max_tokens)
        self.name = directory.name
        raw = model.read_bytes()
        self.fingerprint = hashlib.sha256(raw).hexdigest()[:16]
        self.dim = int(self.encode(["dimension probe"]).shape[1])

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids}
        if "attention_mask" in self.inputs:
            feed["attention_mask"] = mask
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feed)[0]
        if hidden.ndim == 2:  # the export already pooled
            return hidden.astype(np.float32)
        weights = mask[..., None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)

    def encode(self, texts: Sequence[str], batch: int = 16) -> np.ndarray:
        rows = []
        for start in range(0, len(texts), batch):
            encodings = self.tokenizer.encode_batch([_clip(t) for t in texts[start:start + batch]])
            width = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(encodings), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for i, e in enumerate(encodings):
                ids[i, :len(e.ids)] = e.ids
                mask[i, :len(e.ids)] = 1
            rows.append(self._run(ids, mask))
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(np.concatenate(rows))


class SentenceTransformersEncoder(Encoder):
    """A sentence-transformers model run by the ``sentence_transformers`` package (torch): a local
    directory, or a model name already in the local Hugging Face cache (never downloaded here)."""

    kind = "sentence-transformers"

    def __init__(self, directory: str | Path) -> None:
        directory = Path(directory)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EncoderUnavailable(
                f"{directory} is a sentence-transformers model without an ONNX export: install "
                "sentence-transformers (it brings torch), or export it once with "
                f"`python scripts/build_encoder.py onnx --model {directory} --out DIR` and use DIR") from None
        try:
            self.model = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
        except Exception as exc:  # whatever the hub client raises for a model that is not local
            raise EncoderUnavailable(f"cannot load sentence-transformers model {directory}: {exc}") from None
        self.name = directory.name
        weights = next((p for p in sorted(directory.glob("*.safetensors")) + sorted(directory.glob("*.bin"))), None)
        digest = hashlib.sha256(weights.read_bytes() if weights else str(directory).encode()).hexdigest()
        self.fingerprint = digest[:16]
        self.dim = int(self.model.get_sentence_embedding_dimension() or len(self.encode(["probe"])[0]))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode([_clip(t) for t in texts], convert_to_numpy=True, show_progress_bar=False)
        return _normalise(np.asarray(vectors, dtype=np.float32))


_CACHE: dict[tuple[str, float], Encoder] = {}
_LOCK = threading.Lock()


def load_encoder(spec: str | Path | None = None) -> Encoder:
    """The encoder at ``spec`` (a directory; None or ``"default"`` is the bundled static one),
    loaded once per directory and modification time. Raises :class:`EncoderUnavailable`."""
    directory = DEFAULT_ENCODER if spec in (None, "default", "static") else Path(spec).expanduser()
    if not directory.is_dir():
        return _named_model(str(spec))
    key = (str(directory.resolve()), directory.stat().st_mtime)
    with _LOCK:
        found = _CACHE.get(key)
        if found is not None:
            return found
        if (directory / "encoder.json").is_file():
            encoder: Encoder = StaticEncoder(directory)
        elif _onnx_file(directory) is not None:
            encoder = OnnxEncoder(directory)
        elif (directory / "modules.json").is_file() or (directory / "config.json").is_file():
            encoder = SentenceTransformersEncoder(directory)
        else:
            raise EncoderUnavailable(f"{directory} holds no encoder (expected encoder.json, model.onnx or a "
                                     "sentence-transformers model)")
        _CACHE[key] = encoder
        return encoder


def _named_model(name: str) -> Encoder:
    """A model given by name rather than directory: dmr downloads nothing, so it must already be
    in the local Hugging Face cache and sentence-transformers must be installed."""
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        raise EncoderUnavailable(
            f"{name!r} is not a local directory. dmr never downloads models: put the model in a directory "
            "(a sentence-transformers folder, or an ONNX export made with `python scripts/build_encoder.py "
            "onnx --model SRC --out DIR`) and pass that directory") from None
    return SentenceTransformersEncoder(name)


def default_encoder() -> Encoder:
    """The static encoder shipped in the package."""
    return load_encoder(None)
