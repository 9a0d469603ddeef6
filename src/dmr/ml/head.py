"""Layer 3's head: multinomial logistic regression over hashed n-grams and dense signals, with one
softmax for the task type and one for the complexity, each temperature-scaled; optionally one more
output, a logistic regression of how strong a model the task needs (``needs``, 0..1, from
``datasets/capability/``), fitted afterwards on the same features (:meth:`NgramHead.fit_needs`).

Inference is numpy only. A head is saved as plain arrays (``.npz``) and JSON metadata; loading
never unpickles anything (``allow_pickle=False``), so a head file cannot run code.

Estimator conventions: ``__init__`` stores parameters, :meth:`fit` returns ``self``, learned state
ends in ``_``.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from dmr.ml.features import DENSE_NAMES, NgramFeaturizer, SparseRows, condense_data, dense_features

__all__ = ["FORMAT", "HeadFormatError", "NgramHead", "lbfgs", "sigmoid", "sparse_products"]

FORMAT = "dmr-l3-head/1"
_FOLD_ROWS = 4096  # rows of an encoder's table folded into the head's weights at a time


class HeadFormatError(ValueError):
    """A head file is missing, unreadable or not a head this version understands."""


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def lbfgs(fun: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, *, max_iter: int = 200,
          memory: int = 10, tol: float = 1e-6, callback: Callable[[int, float], None] | None = None) -> np.ndarray:
    """Minimise a smooth function with limited-memory BFGS and a backtracking line search."""
    x = x0.copy()
    f, g = fun(x)
    s_list: list[np.ndarray] = []
    y_list: list[np.ndarray] = []
    for it in range(max_iter):
        q = g.copy()
        alphas = []
        for s, y in zip(reversed(s_list), reversed(y_list)):
            a = (s @ q) / (y @ s)
            alphas.append(a)
            q -= a * y
        if y_list:
            q *= (s_list[-1] @ y_list[-1]) / (y_list[-1] @ y_list[-1])
        for (s, y), a in zip(zip(s_list, y_list), reversed(alphas)):
            q += s * (a - (y @ q) / (y @ s))
        d = -q
        slope = g @ d
        if slope >= 0:
            d, slope = -g, -(g @ g)
        step = 1.0
        while True:
            x_new = x + step * d
            f_new, g_new = fun(x_new)
            if f_new <= f + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s, y = x_new - x, g_new - g
        if s @ y > 1e-12:
            s_list.append(s)
            y_list.append(y)
            if len(s_list) > memory:
                s_list.pop(0)
                y_list.pop(0)
        done = abs(f - f_new) <= tol * max(1.0, abs(f))
        x, f, g = x_new, f_new, g_new
        if callback is not None:
            callback(it, f)
        if done:
            break
    return x


def _minimise(fun: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, max_iter: int,
              progress: Callable[[int, float], None] | None) -> np.ndarray:
    """scipy's L-BFGS-B when scipy is installed (the ``train`` extra), else :func:`lbfgs`."""
    try:
        from scipy.optimize import minimize
    except ImportError:
        return lbfgs(fun, x0, max_iter=max_iter, callback=progress)
    count = [0]

    def step(xk: np.ndarray) -> None:
        count[0] += 1
        if progress is not None:
            progress(count[0] - 1, float("nan"))

    result = minimize(fun, x0, jac=True, method="L-BFGS-B", callback=step,
                      options={"maxiter": max_iter, "ftol": 1e-7, "gtol": 1e-6})
    return np.asarray(result.x)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow for large ``|z|``."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises held-out log loss (a 1-D search on a log grid)."""
    best, best_t = math.inf, 1.0
    for t in np.exp(np.linspace(math.log(0.2), math.log(5.0), 81)):
        p = _softmax(logits / t)
        loss = -np.mean(np.log(p[np.arange(len(y)), y] + 1e-12))
        if loss < best:
            best, best_t = loss, float(t)
    return best_t


def sparse_products(X: SparseRows, min_df: int = 1) -> tuple[np.ndarray, Any, Any]:
    """For fitting weights on ``X``: the columns seen in at least ``min_df`` rows (the others keep
    weight 0), and ``X @ W`` and ``X.T @ G`` over those columns only — scipy's sparse kernels when
    scipy is installed (the ``train`` extra; ~30x faster), plain numpy otherwise."""
    n = X.n_rows
    if min_df > 1:
        df = np.bincount(X.indices, minlength=X.n_cols)
        keep = df[X.indices] >= min_df
        counts = np.add.reduceat(keep.astype(np.int64), np.minimum(X.indptr[:-1], max(len(keep) - 1, 0))) \
            if len(keep) else np.zeros(n, dtype=np.int64)
        counts[np.diff(X.indptr) == 0] = 0
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        X = SparseRows(indptr, X.indices[keep], X.values[keep], X.n_cols)
    cols, inverse = np.unique(X.indices, return_inverse=True)
    m, vals = len(cols), X.values
    if not m:
        return cols, (lambda w: np.zeros((n, w.shape[1]))), (lambda g: np.zeros((0, g.shape[1])))
    try:
        from scipy import sparse
    except ImportError:
        rows = X.row_ids()
        order = np.argsort(inverse, kind="stable")
        starts = np.searchsorted(inverse[order], np.arange(m))
        empty = np.diff(X.indptr) == 0
        row_starts = np.minimum(X.indptr[:-1], max(len(vals) - 1, 0))

        def matmul(w: np.ndarray) -> np.ndarray:
            z = np.add.reduceat(w[inverse] * vals[:, None], row_starts, axis=0)
            z[empty] = 0.0
            return z

        def matmul_t(g: np.ndarray) -> np.ndarray:
            return np.add.reduceat(g[rows[order]] * vals[order, None], starts, axis=0)

        return cols, matmul, matmul_t
    A = sparse.csr_matrix((vals, inverse, X.indptr), shape=(n, m))
    At = A.T.tocsr()
    return cols, (lambda w: A @ w), (lambda g: At @ g)


def _condensed(texts: Sequence[str], signals: Sequence[Any] | None) -> tuple[list[str], Sequence[Any] | None]:
    """``texts`` through :func:`condense_data`, and Layer 1's word count in ``signals`` scaled to
    what is left of each cut text: the head reads the cut text, so the count must describe it too
    (left whole, 60 rows of numbers counted as 60 words made a sum over them read as standard)."""
    short = [condense_data(t) for t in texts]
    if signals is None or all(len(a) == len(b) for a, b in zip(short, texts)):
        return short, signals
    out = list(signals)
    for i, (cut, whole) in enumerate(zip(short, texts)):
        sig = out[i]
        if len(cut) != len(whole) and hasattr(sig, "_replace"):
            out[i] = sig._replace(words=sig.words * len(cut.split()) / max(1, len(whole.split())))
    return short, out


class NgramHead:
    """Predicts task type and complexity from a task's text (and Layer 1's signals).

    ``l2`` is the ridge penalty on the averaged log loss; ``max_iter`` bounds L-BFGS. With an
    ``encoder`` (:mod:`dmr.ml.encoder`), the text's sentence embedding times ``embedding_scale``
    joins the dense signals; the head then records the encoder's fingerprint and only runs on it.
    Every text is read through :func:`~dmr.ml.features.condense_data` (a long run of numbers cut
    to its first few, and Layer 1's word count scaled to match), in training and in prediction alike.
    """

    def __init__(self, featurizer: NgramFeaturizer | None = None, l2: float = 1e-5, max_iter: int = 300,
                 min_df: int = 2, encoder: Any = None, embedding_scale: float = 0.3) -> None:
        self.featurizer = featurizer if featurizer is not None else NgramFeaturizer()
        self.l2 = l2
        self.max_iter = max_iter
        self.min_df = min_df
        self.encoder = encoder
        self.embedding_scale = embedding_scale

    def embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """The scaled encoder features of ``texts`` (zero columns without an encoder)."""
        if self.encoder is None:
            return np.zeros((len(texts), 0))
        return self.encoder.features(list(texts)).astype(np.float64) * self.embedding_scale

    def embedding_logits(self, texts: Sequence[str]) -> np.ndarray:
        """The encoder's part of the logits. A static encoder's feature is a mean of token rows,
        so the head's weights fold into its table once (vocabulary x labels) and a text costs a
        tokenizer pass and a mean over a few numbers per token."""
        weights = self.dense_weights_[len(DENSE_NAMES):]
        mean_rows = getattr(self.encoder, "mean_rows", None)
        if mean_rows is None:
            return self.embeddings(texts) @ weights
        folded = getattr(self, "folded_", None)
        if folded is None:
            # A block of rows at a time: a half-precision table is not widened whole at once.
            table = self.encoder.table
            folded = self.folded_ = np.concatenate(
                [table[i:i + _FOLD_ROWS].astype(np.float32) @ weights for i in range(0, len(table), _FOLD_ROWS)]
                or [np.zeros((0, weights.shape[1]), dtype=np.float32)]) * self.embedding_scale
        return mean_rows(list(texts), folded).astype(np.float64)

    def _dense(self, texts: Sequence[str], signals: Sequence[Any] | None) -> np.ndarray:
        sigs = signals if signals is not None else [None] * len(texts)
        D = np.stack([dense_features(t, s) for t, s in zip(texts, sigs)]) if len(texts) else \
            np.zeros((0, len(DENSE_NAMES)))
        return np.hstack([D, self.embeddings(texts)])

    # -- training --------------------------------------------------------------------------------
    def fit(self, texts: Sequence[str], types: Sequence[str], complexities: Sequence[str],
            signals: Sequence[Any] | None = None, *, type_labels: Sequence[str], complexity_labels: Sequence[str],
            temperatures: tuple[float, float] = (1.0, 1.0),
            progress: Callable[[int, float], None] | None = None) -> NgramHead:
        """Fit on labelled texts. ``signals`` are Layer 1's per-text signals (or None). A text whose
        complexity is None trains the type output only."""
        texts, signals = _condensed(texts, signals)
        self.folded_ = None
        self.needs_ = False
        self.type_labels_ = tuple(type_labels)
        self.complexity_labels_ = tuple(complexity_labels)
        if not hasattr(self.featurizer, "idf_"):
            self.featurizer.fit(texts)
        X = self.featurizer.transform(texts)
        D = self._dense(texts, signals)
        yt = np.array([self.type_labels_.index(t) for t in types])
        yc = np.array([-1 if c is None else self.complexity_labels_.index(c) for c in complexities])
        rated = np.flatnonzero(yc >= 0)
        unrated = np.flatnonzero(yc < 0)
        nt, nc = len(self.type_labels_), len(self.complexity_labels_)
        k = nt + nc
        # Train on the columns seen in at least `min_df` texts; everything else keeps weight 0.
        cols, matmul, matmul_t = sparse_products(X, self.min_df)
        n, m, d = X.n_rows, len(cols), D.shape[1]

        def unpack(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            return w[:m * k].reshape(m, k), w[m * k:(m + d) * k].reshape(d, k), w[(m + d) * k:]

        def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
            ws, wd, b = unpack(w)
            z = matmul(ws)
            z += D @ wd + b
            pt, pc = _softmax(z[:, :nt].copy()), _softmax(z[:, nt:].copy())
            loss = -(np.log(pt[np.arange(n), yt] + 1e-12).sum() + np.log(pc[rated, yc[rated]] + 1e-12).sum()) / n
            pt[np.arange(n), yt] -= 1.0
            pc[rated, yc[rated]] -= 1.0
            pc[unrated] = 0.0
            gz = np.concatenate([pt, pc], axis=1) / n
            gs = matmul_t(gz)
            gd = D.T @ gz
            gb = gz.sum(axis=0)
            loss += 0.5 * self.l2 * (ws.ravel() @ ws.ravel() + wd.ravel() @ wd.ravel())
            grad = np.concatenate([(gs + self.l2 * ws).ravel(), (gd + self.l2 * wd).ravel(), gb])
            return float(loss), grad

        w = _minimise(fun, np.zeros((m + d) * k + k), self.max_iter, progress)
        ws, wd, b = unpack(w)
        full = np.zeros((X.n_cols, k), dtype=np.float32)
        full[cols] = ws
        self.sparse_weights_ = full
        self.dense_weights_ = wd.astype(np.float32)
        self.bias_ = b.astype(np.float32)
        self.temperatures_ = (float(temperatures[0]), float(temperatures[1]))
        return self

    def calibrate(self, logits: np.ndarray, types: Sequence[str], complexities: Sequence[str]) -> NgramHead:
        """Fit the two temperatures on held-out logits (from :meth:`logits`); rows whose complexity
        is None count for the type temperature only."""
        nt, nc = len(self.type_labels_), len(self.complexity_labels_)
        yt = np.array([self.type_labels_.index(t) for t in types])
        rated = [i for i, c in enumerate(complexities) if c is not None]
        yc = np.array([self.complexity_labels_.index(complexities[i]) for i in rated])
        self.temperatures_ = (_temperature(logits[:, :nt], yt), _temperature(logits[rated, nt:nt + nc], yc))
        return self

    def fit_needs(self, texts: Sequence[str], needs: Sequence[float], signals: Sequence[Any] | None = None, *,
                  l2: float = 1e-4, progress: Callable[[int, float], None] | None = None) -> NgramHead:
        """Add (or replace) the ``needs`` output: a logistic regression of the share of the scale
        (0..1; capability labels 0..3 divided by 3) on this head's features, as a soft target. The
        type and complexity outputs are left as they are."""
        y = np.asarray(needs, dtype=np.float64)
        if len(y) != len(texts) or not len(y):
            raise ValueError("fit_needs needs one label per text, and at least one text")
        if not (np.isfinite(y).all() and (y >= 0).all() and (y <= 1).all()):
            raise ValueError("needs labels must be numbers in [0, 1]")
        texts, signals = _condensed(texts, signals)
        k = len(self.type_labels_) + len(self.complexity_labels_)
        self.sparse_weights_, self.dense_weights_, self.bias_ = (
            self.sparse_weights_[:, :k], self.dense_weights_[:, :k], self.bias_[:k])
        X = self.featurizer.transform(texts)
        D = self._dense(texts, signals)
        cols, matmul, matmul_t = sparse_products(X, self.min_df)
        n, m, d = X.n_rows, len(cols), D.shape[1]

        def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
            ws, wd, b = w[:m, None], w[m:m + d, None], w[-1]
            z = (matmul(ws) + D @ wd)[:, 0] + b
            p = sigmoid(z)
            loss = -(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)).mean()
            g = ((p - y) / n)[:, None]
            loss += 0.5 * l2 * (w[:-1] @ w[:-1])
            grad = np.concatenate([matmul_t(g)[:, 0] + l2 * w[:m], (D.T @ g)[:, 0] + l2 * w[m:m + d], [g.sum()]])
            return float(loss), grad

        w = _minimise(fun, np.zeros(m + d + 1), self.max_iter, progress)
        column = np.zeros((X.n_cols, 1), dtype=np.float32)
        column[cols, 0] = w[:m]
        self.sparse_weights_ = np.hstack([self.sparse_weights_, column])
        self.dense_weights_ = np.hstack([self.dense_weights_, w[m:m + d, None].astype(np.float32)])
        self.bias_ = np.append(self.bias_, np.float32(w[-1]))
        self.needs_ = True
        self.needs_l2_ = l2
        self.folded_ = None
        return self

    # -- inference -------------------------------------------------------------------------------
    def logits_one(self, text: str, signals: Any = None, sparse: np.ndarray | None = None) -> np.ndarray:
        """Logits of one text; ``sparse`` is its text part (n-grams and embedding) when already
        computed (:meth:`sparse_logits`)."""
        (text,), (signals,) = _condensed([text], [signals])
        return self._logits(text, signals, sparse)

    def _logits(self, text: str, signals: Any, sparse: np.ndarray | None) -> np.ndarray:
        # ``text`` and ``signals`` as _condensed gives them
        n_dense = len(DENSE_NAMES)
        if sparse is None:
            ids, vals = self.featurizer.transform_one(text)
            sparse = vals @ np.take(self.sparse_weights_, ids, axis=0)
            if self.encoder is not None:
                sparse = sparse + self.embedding_logits([text])[0]
        z = dense_features(text, signals) @ self.dense_weights_[:n_dense]
        z += sparse
        z += self.bias_
        return z

    def sparse_logits(self, texts: Sequence[str], chunk: int = 64, chunk_chars: int = 16_000) -> np.ndarray:
        """The text part of the logits of many texts (n-grams and embedding; not Layer 1's
        signals), in one vectorised pass."""
        return self._sparse_logits([condense_data(t) for t in texts], chunk, chunk_chars)

    def _sparse_logits(self, texts: list[str], chunk: int = 64, chunk_chars: int = 16_000) -> np.ndarray:
        # ``texts`` as condense_data gives them
        out = np.zeros((len(texts), self.sparse_weights_.shape[1]), dtype=np.float64)
        if self.encoder is not None and len(texts):
            out += self.embedding_logits(texts)
        # Small chunks keep the gathered weight rows in cache, and a cap on their characters keeps
        # a batch of long pastes from holding millions of n-gram hashes at once.
        cap = self.featurizer.max_chars
        start = 0
        while start < len(texts):
            end, size = start, 0
            while end < len(texts) and end - start < chunk and (end == start or size < chunk_chars):
                size += min(len(texts[end]), cap)
                end += 1
            out[start:end] += self.featurizer.transform_batch(texts[start:end]).dot(self.sparse_weights_, np.float32)
            start = end
        return out

    def parts_and_logits(self, texts: Sequence[str], signals: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """The text parts of many texts (as :meth:`sparse_logits` gives them) and their logits (as
        :meth:`logits_one` with those parts gives them), each text read through
        :func:`~dmr.ml.features.condense_data` once."""
        short, sigs = _condensed(list(texts), list(signals))
        parts = self._sparse_logits(short)
        z = np.stack([self._logits(t, s, part) for t, s, part in zip(short, sigs, parts)]) if short else \
            np.zeros((0, len(self.bias_)))
        return parts, z

    def batch_logits(self, texts: Sequence[str], signals: Sequence[Any]) -> np.ndarray:
        """Logits of many texts: their text parts in one vectorised pass (:meth:`sparse_logits`),
        then each text's Layer 1 signals."""
        texts = list(texts)
        if len(texts) > 1:
            return self.parts_and_logits(texts, signals)[1]
        return np.stack([self.logits_one(t, s) for t, s in zip(texts, signals)]) if texts else \
            np.zeros((0, len(self.bias_)))

    def logits(self, texts: Sequence[str], signals: Sequence[Any] | None = None) -> np.ndarray:
        sigs = signals if signals is not None else [None] * len(texts)
        return np.stack([self.logits_one(t, s) for t, s in zip(texts, sigs)]) if len(texts) else \
            np.zeros((0, len(self.bias_)))

    def proba_from_logits(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nt, nc = len(self.type_labels_), len(self.complexity_labels_)
        tt, tc = self.temperatures_
        z = np.atleast_2d(z)
        return _softmax(z[:, :nt] / tt), _softmax(z[:, nt:nt + nc] / tc)

    def needs_from_logits(self, z: np.ndarray) -> np.ndarray | None:
        """The ``needs`` output (0..1) per row, or None when this head has none."""
        if not getattr(self, "needs_", False):
            return None
        return sigmoid(np.atleast_2d(z)[:, -1])

    def predict_proba(self, texts: Sequence[str],
                      signals: Sequence[Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self.proba_from_logits(self.logits(texts, signals))

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path: str | Path, **metadata: Any) -> Path:
        """Write ``path`` (``.npz``: arrays only) and ``path`` with ``.json`` (metadata)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, sparse_weights=self.sparse_weights_.astype(np.float16),
                            dense_weights=self.dense_weights_, bias=self.bias_,
                            idf=self.featurizer.idf_.astype(np.float16))
        meta = {"format": FORMAT, "featurizer": self.featurizer.params(), "dense": list(DENSE_NAMES),
                "type_labels": list(self.type_labels_), "complexity_labels": list(self.complexity_labels_),
                "temperatures": list(self.temperatures_), "l2": self.l2,
                "encoder": self.encoder.describe() if self.encoder is not None else None,
                "embedding_scale": self.embedding_scale, "needs": bool(getattr(self, "needs_", False)),
                "needs_l2": getattr(self, "needs_l2_", None), **metadata}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path, encoder: Any = None) -> NgramHead:
        """Load a head saved by :meth:`save`. Raises :class:`HeadFormatError` with the reason.

        A head trained with an encoder runs on ``encoder`` (default: the package's static one),
        which must be the very encoder it was trained on (same fingerprint)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        try:
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            # Read the bytes first: a damaged archive then leaves no file handle open.
            with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as arrays:
                data = {name: arrays[name] for name in ("sparse_weights", "dense_weights", "bias", "idf")}
        except FileNotFoundError as exc:
            raise HeadFormatError(f"head file missing: {exc.filename}") from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise HeadFormatError(f"cannot read head {path}: {type(exc).__name__}: {exc}") from None
        try:
            if meta.get("format") != FORMAT:
                raise HeadFormatError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
            featurizer = NgramFeaturizer.from_params(meta["featurizer"], data["idf"])
            encoder = _matching_encoder(path, meta.get("encoder"), encoder)
            self = cls(featurizer, float(meta.get("l2", 1e-5)), encoder=encoder,
                       embedding_scale=float(meta.get("embedding_scale", 0.3)))
            self.type_labels_ = tuple(meta["type_labels"])
            self.complexity_labels_ = tuple(meta["complexity_labels"])
            self.needs_ = bool(meta.get("needs", False))
            self.needs_l2_ = meta.get("needs_l2")
            k = len(self.type_labels_) + len(self.complexity_labels_) + int(self.needs_)
            self.sparse_weights_ = data["sparse_weights"].astype(np.float32)
            self.dense_weights_ = data["dense_weights"].astype(np.float32)
            self.bias_ = data["bias"].astype(np.float32)
            self.temperatures_ = tuple(float(t) for t in meta["temperatures"])
            shapes_ok = (self.sparse_weights_.shape == (featurizer.n_features, k)
                         and self.dense_weights_.shape == (len(DENSE_NAMES) + (encoder.dim if encoder else 0), k)
                         and self.bias_.shape == (k,)
                         and len(self.temperatures_) == 2 and all(t > 0 for t in self.temperatures_))
            if not shapes_ok:
                raise HeadFormatError(f"{path}: array shapes do not match the metadata")
            if not (np.isfinite(self.sparse_weights_).all() and np.isfinite(self.dense_weights_).all()):
                raise HeadFormatError(f"{path}: weights contain NaN or infinity")
        except HeadFormatError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise HeadFormatError(f"{path}: bad metadata: {type(exc).__name__}: {exc}") from None
        self.metadata_ = meta
        return self


def _matching_encoder(path: Path, recorded: Any, given: Any) -> Any:
    """The encoder a head needs: None for an n-gram-only head, else ``given`` (or the package's
    default) after checking it is the one the head was trained on."""
    if recorded is None:
        if given is not None:
            raise HeadFormatError(f"{path} was trained without a sentence encoder, so it cannot use {given.name!r}: "
                                  "train a head for it (dmr train --data F --encoder DIR)")
        return None
    from dmr.ml.encoder import EncoderUnavailable, default_encoder

    try:
        encoder = given if given is not None else default_encoder()
    except EncoderUnavailable as exc:
        raise HeadFormatError(f"{path}: needs its sentence encoder {recorded.get('name')!r}: {exc}") from None
    if encoder.fingerprint != recorded.get("fingerprint") or encoder.dim != recorded.get("dim"):
        raise HeadFormatError(
            f"{path} was trained on encoder {recorded.get('name')!r} ({recorded.get('fingerprint')}), not on "
            f"{encoder.name!r} ({encoder.fingerprint}): train a head for it (dmr train --data F --encoder DIR)")
    return encoder
