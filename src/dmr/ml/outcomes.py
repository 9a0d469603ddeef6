"""The outcome model: how likely each cheaper model (or tier) is to answer as well as the best one.

It learns from outcome data — prompts with a quality score per model, such as a user's own logs —
one logistic regression per model over four kinds of features of the prompt:

- hashed word and character n-grams (:class:`~dmr.ml.features.NgramFeaturizer`, tf-idf);
- surface and Layer 1 signals (:func:`~dmr.ml.features.dense_features`) plus a few counts of
  numbers and sentences, which track how many steps a problem takes;
- the Layer 3 head's task-type and complexity probabilities (the bundled head by default), and its
  difficulty output (the zero-shot estimate) when it has one;
- what the sentence encoder of ``dmr.ml.encoder.default_encoder()`` says about the prompt, in one
  of two forms, when inner cross-validation on the training rows says it helps (``encoder="auto"``,
  the default): the embedding itself (128 columns), or how close the prompt lies to each of a few
  dozen *prototypes* (k-means centres of the training prompts' embeddings, as a softmax of cosine
  similarities). The prototypes let a linear model give each region of the prompt space its own
  level — "problems like these trip the cheap model" — with few weights. On some data the raw
  embedding only gives the fit more directions to overfit along (in-domain 5-fold on RouteLLM's
  GSM8K and MMLU outcomes it cost 7 and 2 points of CS@95 against no encoder), on other data it
  helps (MT-Bench: 7 points), so the fit tries both forms and keeps the lower held-out log loss
  (there the prototypes won on GSM8K and MMLU, and raised GSM8K's CS@95 from 37 % to 40–44 %).
  ``"always"`` forces the raw embedding, ``"prototypes"`` the prototypes, ``None`` no encoder.

On top of the logistic regressions, each model's probability may be blended with what the most
similar training prompts say (:mod:`dmr.ml.neighbours`): ``(1 − α) · logistic + α · neighbours``,
with the neighbour count and ``α`` chosen by inner cross-validation (``neighbours="auto"``, the
default), ``α = 0`` unless the blend ranks the held-out rows better on most inner folds. Logged
traffic repeats itself (templates, near-duplicate questions) in ways a linear model of the features
sums away; on MT-Bench (72 prompts, in-domain 5-fold, mean over five fold splits) the blend raised
CS@95 from 76 % to 79 %; on MMLU it is never chosen, and on GSM8K and AlpacaEval it moves CS@95 by
less than the spread between fold splits. A model that blends keeps the training prompts'
embeddings (half precision) and targets in its file, so treat the file as you treat the logs it came
from.

The target of model ``m`` on a prompt is 1 when its score reaches the best score of that prompt
(within ``eps``) and falls linearly to 0 as it trails by the whole range of scores. For 0/1
outcomes that is exactly "``m`` matched the best model", so :meth:`OutcomeModel.predict` is the
probability of it; for graded scores (a judge's 0–10) it is the expected closeness to the best.
:meth:`OutcomeModel.difficulty` ranks by the expected *signed* gap between the top model and the
cheapest, ``P(top reaches best) − P(cheapest reaches best)``: for 0/1 outcomes that is
``E[score_top − score_cheapest]``, which also counts the prompts where the cheap model wins. On the
same MMLU folds it saves 5 points more at 95% quality than ``1 − P(cheapest reaches best)``.

The ridge penalty is picked by inner cross-validation on the training rows (log loss), unless
given. It applies to every weight but one: the head's difficulty output is the zero-shot prior, and
its weight gets only a light fixed penalty (:data:`PRIOR_L2`), so where the rows are too few to
support the other weights (a team's first few dozen logged outcomes; inner cross-validation then
shrinks everything else) the model falls back on the zero-shot estimate instead of on the base
rate, and as rows accumulate the other features take over. In-domain 5-fold on the public outcome
data (``benchmarks/quality.py``) this raised MT-Bench's CS@95 (72 prompts) from 69 % to 77 % and
AlpacaEval's from 30.5 % to 32 %, and moved MMLU's (55.5 → 55.2 %) and GSM8K's (42.4 → 41.6 %) by
less than their noise. A model is saved as plain arrays (``.npz``, loaded with ``allow_pickle=False``) and JSON
metadata that names the features it was built with; loading refuses a model whose encoder is not
available here, or whose weights are not finite or features not the ones it computes here (an
edited file, a head with other labels), and warns (``stale_head_``) when the Layer 3 head it read
features from has changed since it was fitted (a dmr upgrade ships a retrained head): it still
works, on shifted features.

Estimator conventions: ``__init__`` stores parameters, :meth:`OutcomeModel.fit` returns ``self``,
learned state ends in ``_``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import re
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from dmr.datafiles import fold_of, text_hash
from dmr.errors import InputError, NotAvailableError
from dmr.ml.features import DENSE_NAMES, NgramFeaturizer, SparseRows, dense_features
from dmr.ml.head import lbfgs, sigmoid, sparse_products
from dmr.ml.neighbours import NEIGHBOUR_GRID, NEIGHBOUR_ROWS, choose_blend, neighbour_estimate
from dmr.types import ModelTier

__all__ = ["FORMAT", "OutcomeModel", "OutcomeModelError", "check_order", "order_by_price"]

FORMAT = "dmr-outcome-model/1"
log = logging.getLogger("dmr.ml")
_EXTRA_NAMES = ("log_numbers", "log_distinct_numbers", "log_sentences", "decimals", "big_numbers",
                "choices", "log_max_word")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SENTENCE_END = re.compile(r"[.!?。！？]+(?:\s|$)")
_CHOICE = re.compile(r"(?m)^\s*[A-Ha-h][.)]\s")
# (n-gram penalty, dense penalty) pairs tried by inner cross-validation when l2 is 'auto'. The
# smallest suits ~10^4 rows (MMLU-sized logs), the largest a few hundred.
L2_GRID = ((3e-5, 0.01), (1e-4, 0.01), (1e-3, 0.01), (1e-3, 0.1), (1e-2, 0.1))
# The penalty of the zero-shot prior's weight (the head's difficulty output), whatever the grid picks
# for the other dense weights: light enough to keep the prior when they are shrunk, enough to keep
# its weight finite when a handful of rows happens to be separable by it.
PRIOR_L2 = 1e-3
# Prototype features: softmax(temperature * cosine) over k-means centres of the training embeddings.
PROTOTYPE_TEMPERATURE = 10.0
_KMEANS_ITER = 25


class OutcomeModelError(InputError):
    """An outcome model file is missing, unreadable or not one this version understands."""


def _extra_features(text: str) -> np.ndarray:
    numbers = _NUMBER.findall(text)
    words = text.split()
    out = np.zeros(len(_EXTRA_NAMES))
    out[0] = math.log1p(len(numbers))
    out[1] = math.log1p(len(set(numbers)))
    out[2] = math.log1p(len(_SENTENCE_END.findall(text)))
    out[3] = min(sum(1 for x in numbers if "." in x), 5) / 2.0
    out[4] = min(sum(1 for x in numbers if len(x.replace(",", "").split(".")[0]) >= 4), 5) / 2.0
    out[5] = min(len(_CHOICE.findall(text)), 8) / 4.0
    out[6] = math.log1p(max((len(w) for w in words), default=0))
    return out


def prototypes_for(n_rows: int) -> int:
    """How many prototypes ``prototypes="auto"`` fits on ``n_rows`` prompts: about one per twenty
    rows, between 8 and 64."""
    return int(min(64, max(8, n_rows // 20)))


def kmeans_centres(X: np.ndarray, k: int, iterations: int = _KMEANS_ITER) -> np.ndarray:
    """``k`` unit-length centres of the unit rows ``X`` by spherical k-means, deterministic
    (started from rows spread over a fixed permutation). An empty cluster keeps its centre."""
    k = max(1, min(k, len(X)))
    order = np.random.default_rng(0).permutation(len(X))
    centres = X[order[np.linspace(0, len(X) - 1, k).astype(int)]].copy()
    for _ in range(iterations):
        nearest = np.argmax(X @ centres.T, axis=1)
        sums = np.zeros_like(centres)
        np.add.at(sums, nearest, X)
        norms = np.linalg.norm(sums, axis=1)
        filled = norms > 1e-12
        centres[filled] = sums[filled] / norms[filled, None]
    return centres


def prototype_features(embedded: np.ndarray, centres: np.ndarray,
                       temperature: float = PROTOTYPE_TEMPERATURE) -> np.ndarray:
    """Soft assignment of each embedded row to the centres: softmax of temperature × cosine."""
    z = temperature * (embedded @ centres.T)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def order_by_price(models: Sequence[str], prices: Mapping[str, float] | None = None) -> tuple[str, ...]:
    """``models`` from cheapest to most expensive. Names that are all tiers in force (``low``,
    ``medium``, ``high``, or :func:`~dmr.types.set_tier_levels`'s), as a decision log's outcomes
    are, go in tier order; other names by ``prices`` (None: the model registry's), where a model
    without a price is an error."""
    ranks = {str(t): i for i, t in enumerate(ModelTier.levels())}
    if models and all(m in ranks for m in models):
        return tuple(sorted(models, key=ranks.__getitem__))
    if prices is None:
        from dmr.evaluate.outcomes import registry_prices

        prices = registry_prices(models)
    missing = [m for m in models if m not in prices]
    if missing:
        raise InputError(f"no price for {', '.join(missing)}: name the models cheapest first (--models A,B) "
                         "or give prices (--prices FILE)")
    return tuple(sorted(models, key=lambda m: (prices[m], m)))


def check_order(models: tuple[str, ...], seen: Sequence[str]) -> None:
    """An explicit order names each model once, only models the rows score, and tiers in tier order."""
    repeated = sorted({m for m in models if models.count(m) > 1})
    if repeated:
        raise InputError(f"the models, cheapest first, name {', '.join(repeated)} more than once")
    absent = [m for m in models if m not in seen]
    if absent:
        raise InputError(f"no row scores {', '.join(absent)} (the rows score {', '.join(seen) or 'no model'})")
    ranks = {str(t): i for i, t in enumerate(ModelTier.levels())}
    if models and all(m in ranks for m in models) and list(models) != sorted(models, key=ranks.__getitem__):
        raise InputError(f"the models go cheapest first, but {', '.join(models)} are tiers out of their order "
                         f"({', '.join(sorted(models, key=ranks.__getitem__))})")


def _default_encoder() -> tuple[Any, str] | None:
    """The optional sentence encoder and the name it is recorded under, or None."""
    try:
        from dmr.ml.encoder import default_encoder  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        encoder = default_encoder()
    except (RuntimeError, OSError, ValueError, ImportError):  # an encoder that cannot start here is not used
        return None
    if encoder is None:
        return None
    name = str(getattr(encoder, "name", None) or type(encoder).__qualname__)
    fingerprint = getattr(encoder, "fingerprint", "")
    return encoder, f"{name}@{fingerprint}" if fingerprint else name


class OutcomeModel:
    """P(each model reaches the best model's score | prompt), from outcome data.

    Parameters:

    - ``l2``: ridge penalty of the n-gram weights, or ``"auto"`` to choose it and ``dense_l2``
      together by inner cross-validation over :data:`L2_GRID`;
    - ``dense_l2``: penalty of the dense block (standardised columns), used when ``l2`` is a number;
    - ``eps``: a score within ``eps`` of the best counts as reaching it;
    - ``bits``, ``char_ngrams``: the n-gram featurizer (``None``: word unigrams and bigrams only,
      several times faster to train than with character n-grams);
    - ``use_head``: the Layer 3 head's probabilities as features (left out when it does not load);
    - ``encoder``: ``"auto"`` (the default) tries the sentence encoder's prototype features and
      its raw embedding when the encoder is available and keeps the one inner cross-validation
      prefers; ``"prototypes"`` and ``"always"`` use one form (``"always"``: the raw embedding)
      whenever the encoder is available, ``None`` never uses the encoder;
    - ``prototypes``: how many prototypes to fit (``"auto"``: :func:`prototypes_for` the number
      of rows; 0: none, and ``"auto"`` then weighs the raw embedding against no encoder);
    - ``neighbours``: the neighbour blend (:mod:`dmr.ml.neighbours`): ``"auto"`` tries the counts
      of :data:`~dmr.ml.neighbours.NEIGHBOUR_GRID`, a number tries that one, ``None`` or 0 turns it
      off; inner cross-validation keeps a blend only when it helps;
    - ``neighbour_rows``: at most this many training prompts are searched and stored for the blend
      (a fixed sample, by a hash of the text, when there are more): each decision compares the
      prompt with every stored row, about 0.25 ms and 6 MB per 10,000 rows
      (``benchmarks/outcome_model.py``);
    - ``inner_folds``, ``max_iter``: the penalty search and the optimiser's budget.
    """

    def __init__(self, *, l2: float | str = "auto", dense_l2: float = 0.01, eps: float = 0.0, bits: int = 18,
                 char_ngrams: tuple[int, int] | None = None, use_head: bool = True, encoder: str | None = "auto",
                 prototypes: int | str = "auto", neighbours: int | str | None = "auto",
                 neighbour_rows: int = NEIGHBOUR_ROWS, inner_folds: int = 3, max_iter: int = 150) -> None:
        self.l2 = l2
        self.dense_l2 = dense_l2
        self.eps = eps
        self.bits = bits
        self.char_ngrams = tuple(char_ngrams) if char_ngrams else None
        self.use_head = use_head
        self.encoder = encoder
        self.prototypes = prototypes
        self.neighbours = neighbours
        self.neighbour_rows = neighbour_rows
        self.inner_folds = inner_folds
        self.max_iter = max_iter

    # -- features --------------------------------------------------------------------------------
    def _l1_layer(self) -> Any:
        layer = getattr(self, "_l1", None)
        if layer is None:
            from dmr.layers.keywords import KeywordLayer
            from dmr.packs import bundled_packs

            layer = self._l1 = KeywordLayer(bundled_packs())
        return layer

    def _head(self) -> Any:
        head = getattr(self, "_head_obj", None)
        if head is None:
            from dmr.layers.base import LayerUnavailable
            from dmr.layers.embedding import DEFAULT_HEAD, load_head

            try:
                head = self._head_obj = load_head(DEFAULT_HEAD)
            except LayerUnavailable as exc:
                raise NotAvailableError(f"the outcome model uses the Layer 3 head, which is unusable: {exc}") from None
        return head

    def _head_digest(self) -> str:
        """A digest of the Layer 3 head file the features come from: a model fitted against one
        head and used with another (dmr upgraded, head retrained) gets shifted features."""
        from dmr.layers.embedding import DEFAULT_HEAD

        return hashlib.sha256(Path(DEFAULT_HEAD).read_bytes()).hexdigest()[:16]

    def _head_usable(self) -> bool:
        """Whether the Layer 3 head loads here; a model fitted without it records ``head: false``."""
        try:
            self._head()
        except NotAvailableError:
            return False
        return True

    def _dense(self, texts: Sequence[str], embedded: np.ndarray | None = None) -> np.ndarray:
        """The dense block; ``embedded`` is the texts' sentence embedding when the model reads it."""
        from dmr.ml.train import l1_signals

        signals = l1_signals(texts, self._l1_layer())
        blocks = [np.stack([dense_features(t, s) for t, s in zip(texts, signals)]),
                  np.stack([_extra_features(t) for t in texts])]
        if self.head_:
            head = self._head()
            z = head.batch_logits(texts, signals)
            blocks.extend(head.proba_from_logits(z))
            if self.needs_:
                blocks.append(head.needs_from_logits(z)[:, None])
        if self.encoder_ is not None:
            blocks.append(embedded if self.prototypes_ is None else prototype_features(embedded, self.prototypes_))
        return np.concatenate(blocks, axis=1)

    def _features(self, texts: Sequence[str]) -> tuple[SparseRows, np.ndarray, np.ndarray | None]:
        """The n-gram rows, the standardised dense block and the sentence embedding (None when
        neither the features nor the neighbour blend read it), the texts encoded once for both."""
        encoder = self._encoder_obj if self.encoder_ is not None else self._neighbour_encoder
        embedded = None if encoder is None else np.asarray(encoder.encode(list(texts)), dtype=np.float64)
        X = self.featurizer_.transform(texts)
        D = (self._dense(texts, embedded) - self.dense_mean_) / self.dense_scale_
        return X, D, embedded

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, prompts: Sequence[str], scores: Sequence[Mapping[str, float]], *,
            models: Sequence[str] | None = None, prices: Mapping[str, float] | None = None,
            progress: Callable[[str, int, int], None] | None = None) -> OutcomeModel:
        """Fit on ``prompts`` and, for each, a mapping model → quality score. ``models`` orders the
        models from cheapest to best; None orders them as :func:`order_by_price` does (tiers by
        level, models by ``prices``, model → cost of a call, or else the model registry's).
        ``progress(stage, step, total)`` is called as the fit goes."""
        prompts = list(prompts)
        if len(prompts) != len(scores):
            raise InputError(f"{len(prompts)} prompts but {len(scores)} score rows")
        if len(prompts) < 4:
            raise InputError("an outcome model needs at least four scored prompts")
        seen = list(dict.fromkeys(m for row in scores for m in row))
        models = order_by_price(seen, prices) if models is None else tuple(models)
        check_order(models, seen)
        if len(models) < 2:
            raise InputError("an outcome model needs scores of at least two models")
        Y, M = self._targets(scores, models)
        self.models_ = models
        self.head_ = bool(self.use_head) and self._head_usable()
        self.head_digest_ = self._head_digest() if self.head_ else None
        self.stale_head_ = False
        # The head's difficulty output, when it has one: the zero-shot estimate as one more feature.
        self.needs_ = self.head_ and bool(getattr(self._head(), "needs_", False))
        if self.encoder not in (None, "auto", "always", "prototypes"):
            raise InputError(f"encoder must be 'auto', 'always', 'prototypes' or None, not {self.encoder!r}")
        k = prototypes_for(len(prompts)) if self.prototypes == "auto" else self.prototypes
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InputError(f"prototypes must be 'auto' or a count >= 0, not {self.prototypes!r}")
        found = _default_encoder() if self.encoder is not None else None
        self.encoder_, self._encoder_obj, self.prototypes_ = None, None, None
        self.featurizer_ = NgramFeaturizer(self.bits, self.char_ngrams or (1, 0)).fit(prompts)
        X = self.featurizer_.transform(prompts)
        raw = self._dense(prompts)
        # The forms the encoder may take. Prototype features are few columns that only add to the
        # plain ones, so with the encoder here they stand in for "no encoder"; without prototypes
        # (k = 0) "no encoder" is tried instead.
        forms = {"auto": ("prototypes", "embedding"), "prototypes": ("prototypes",),
                 "always": ("embedding",)}.get(self.encoder, ()) if found else ()
        forms = tuple("plain" if f == "prototypes" and not k else f for f in forms) or ("plain",)
        embedded = np.asarray(found[0].encode(prompts), dtype=np.float64) if found else None
        # (label, dense block, encoder, prototype centres)
        candidates: list[tuple[str, np.ndarray, Any, np.ndarray | None]] = []
        for form in forms:
            if form == "plain":
                candidates.append(("without encoder", raw, None, None))
            elif form == "prototypes":
                centres = kmeans_centres(embedded, k)
                candidates.append((f"{len(centres)} prototypes",
                                   np.concatenate([raw, prototype_features(embedded, centres)], axis=1), found, centres))
            else:
                candidates.append(("embedding", np.concatenate([raw, embedded], axis=1), found, None))
        grid = L2_GRID if self.l2 == "auto" else ((float(self.l2), float(self.dense_l2)),)
        neighbour_grid = self._neighbour_grid() if found else ()
        best: tuple[float, Any] | None = None
        self.cv_losses_: dict[str, float] = {}
        for label, raw_c, enc, centres in candidates:
            mean, scale = raw_c.mean(axis=0), raw_c.std(axis=0)
            scale = np.where(scale > 1e-9, scale, 1.0)
            D_c = (raw_c - mean) / scale
            if len(candidates) > 1 or len(grid) > 1 or neighbour_grid:
                lam, lam_dense, loss, oof = self._choose_l2(prompts, X, D_c, Y, M, progress, grid)
            else:
                (lam, lam_dense), loss, oof = grid[0], 0.0, None
            self.cv_losses_[label] = loss
            if best is None or loss < best[0]:
                best = (loss, (D_c, mean, scale, enc, centres, lam, lam_dense), oof)
        assert best is not None
        D, self.dense_mean_, self.dense_scale_, enc, self.prototypes_, self.l2_, self.dense_l2_ = best[1]
        if enc is not None:
            self._encoder_obj, self.encoder_ = enc
        self._fit_neighbours(prompts, embedded, Y, M, best[2], neighbour_grid, found)
        if progress is not None:
            progress("fit", 0, 1)
        self.sparse_weights_, self.dense_weights_, self.bias_ = _fit_logistic(
            X, D, Y, M, self.l2_, self.dense_l2_, self.max_iter, free=self._prior_columns())
        if progress is not None:
            progress("fit", 1, 1)
        return self

    def _targets(self, scores: Sequence[Mapping[str, float]], models: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Soft targets and a mask of the scores present. A row that scores every model is measured
        against its own best; a row that scores only some (feedback from logs usually scores the
        one tier that answered) against the best score seen anywhere."""
        S = np.full((len(scores), len(models)), np.nan)
        for i, row in enumerate(scores):
            for j, m in enumerate(models):
                value = row.get(m)
                if value is not None:
                    S[i, j] = float(value)
        present = ~np.isnan(S)
        if not present.any(axis=1).all():
            i = int(np.flatnonzero(~present.any(axis=1))[0])
            raise InputError(f"row {i} scores none of the models {', '.join(models)}")
        span = float(np.nanmax(S) - np.nanmin(S)) or 1.0
        self.span_ = span
        best = np.where(present.all(axis=1), np.nanmax(S, axis=1), np.nanmax(S))[:, None]
        behind = np.maximum(best - np.nan_to_num(S, nan=0.0) - self.eps, 0.0)
        return np.where(present, 1.0 - np.minimum(behind / span, 1.0), 0.0), present.astype(np.float64)

    def _choose_l2(self, prompts: Sequence[str], X: SparseRows, D: np.ndarray, Y: np.ndarray, M: np.ndarray,
                   progress: Callable[[str, int, int], None] | None,
                   grid: Sequence[tuple[float, float]] = L2_GRID) -> tuple[float, float, float, np.ndarray]:
        """The penalties with the lowest inner cross-validated log loss (folds by a hash of the
        text), that loss, and the held-out predictions it was measured on."""
        k = self.inner_folds
        fold = self._inner_folds(prompts)
        losses = np.zeros(len(grid))
        oof = np.full((len(grid), *Y.shape), 0.5)
        total = k * len(grid)
        step = 0
        for f in range(k):
            train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
            if not len(test) or len(train) < 2:
                continue
            Xtr, Xte = X.take(train), X.take(test)
            for g, (lam, lam_dense) in enumerate(grid):
                ws, wd, b = _fit_logistic(Xtr, D[train], Y[train], M[train], lam, lam_dense, self.max_iter,
                                          free=self._prior_columns())
                p = np.clip(sigmoid(Xte.dot(ws) + D[test] @ wd + b), 1e-6, 1 - 1e-6)
                oof[g, test] = p
                y = Y[test]
                losses[g] -= float((M[test] * (y * np.log(p) + (1 - y) * np.log(1 - p))).sum())
                step += 1
                if progress is not None:
                    progress("select", step, total)
        best = int(np.argmin(losses))
        lam, lam_dense = grid[best]
        return float(lam), float(lam_dense), float(losses[best]), oof[best]

    def _neighbour_grid(self) -> tuple[int, ...]:
        """The neighbour counts inner cross-validation tries (none: neighbours are off)."""
        k = self.neighbours
        if k == "auto":
            return NEIGHBOUR_GRID
        if k is None or k == 0:
            return ()
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InputError(f"neighbours must be 'auto', None or a count >= 0, not {k!r}")
        return (k,)

    def _fit_neighbours(self, prompts: Sequence[str], embedded: np.ndarray | None, Y: np.ndarray, M: np.ndarray,
                        oof: np.ndarray | None, grid: Sequence[int], found: tuple[Any, str] | None) -> None:
        """Choose the neighbour count and the blend weight by inner cross-validation, and keep the
        training embeddings and targets when the blend uses them."""
        self._clear_neighbours()
        self.neighbour_grid_ = tuple(grid) if embedded is not None and oof is not None and found else ()
        if not self.neighbour_grid_:
            return
        base = np.clip((Y * M).sum(axis=0) / np.maximum(M.sum(axis=0), 1.0), 1e-3, 1 - 1e-3)
        rows = self._neighbour_sample(prompts)
        if rows is not None:
            prompts, embedded, Y, M, oof = [prompts[i] for i in rows], embedded[rows], Y[rows], M[rows], oof[rows]
        k, alpha, _ = choose_blend(embedded, Y, M, self._inner_folds(prompts), oof, base, ks=grid)
        if not alpha:
            return
        self._set_neighbours(k, alpha, embedded, np.where(M > 0, Y, np.nan), base, found)

    def _neighbour_sample(self, prompts: Sequence[str]) -> np.ndarray | None:
        """The rows the blend is chosen on and stores when there are more than ``neighbour_rows``
        (those whose text hashes lowest: the same rows whatever their order), else None."""
        cap = self.neighbour_rows
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise InputError(f"neighbour_rows must be a count >= 1, not {cap!r}")
        if len(prompts) <= cap:
            return None
        lowest = sorted(range(len(prompts)), key=lambda i: text_hash("rows:" + prompts[i]))[:cap]
        return np.sort(np.array(lowest, dtype=np.int64))

    def _clear_neighbours(self) -> None:
        self.neighbour_k_, self.blend_ = 0, 0.0
        self.neighbour_embeddings_ = self.neighbour_targets_ = self.neighbour_base_ = None
        self.neighbour_encoder_, self._neighbour_encoder = None, None
        self._neighbour_scores = self._neighbour_present = None

    def _set_neighbours(self, k: int, blend: float, E: np.ndarray, T: np.ndarray, base: np.ndarray,
                        found: tuple[Any, str]) -> None:
        """Keep a blend's state, with the arrays :meth:`predict` reads derived once here: with a
        large log, converting them on every call would cost more than the search itself."""
        self.neighbour_k_, self.blend_ = int(k), float(blend)
        self._neighbour_encoder, self.neighbour_encoder_ = found
        self.neighbour_embeddings_ = np.ascontiguousarray(E, dtype=np.float32)
        self.neighbour_targets_ = np.asarray(T, dtype=np.float32)
        self.neighbour_base_ = np.asarray(base, dtype=np.float64)
        present = ~np.isnan(self.neighbour_targets_)
        self._neighbour_present = present.astype(np.float64)
        self._neighbour_scores = np.where(present, self.neighbour_targets_, 0.0).astype(np.float64)

    def _inner_folds(self, prompts: Sequence[str]) -> np.ndarray:
        """The inner fold of each training prompt (by a hash of its text)."""
        return np.array([fold_of("inner:" + p, self.inner_folds) for p in prompts])

    # -- inference -------------------------------------------------------------------------------
    @property
    def models(self) -> tuple[str, ...]:
        return self.models_

    def predict(self, prompts: Sequence[str]) -> np.ndarray:
        """``(n, n_models)``: the probability that each model reaches the best score on each prompt."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts:
            return np.zeros((0, len(self.models_)))
        X, D, embedded = self._features(prompts)
        p = sigmoid(X.dot(self.sparse_weights_) + D @ self.dense_weights_ + self.bias_)
        if self.blend_:
            near = neighbour_estimate(embedded, self.neighbour_embeddings_,
                                      self._neighbour_scores, self._neighbour_present, self.neighbour_k_,
                                      self.neighbour_base_)
            p = (1 - self.blend_) * p + self.blend_ * near
        return p

    def difficulty(self, prompts: Sequence[str]) -> np.ndarray:
        """In [0, 1]: ``(1 + P(top reaches best) − P(cheapest reaches best)) / 2``, the expected
        shortfall of the cheapest model against the most expensive one rescaled from [−1, 1];
        higher needs a stronger model."""
        p = self.predict(prompts)
        return (1.0 + p[:, -1] - p[:, 0]) / 2.0

    # -- persistence -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """What tells this fitted model apart from another: its format, models and a digest of its
        learned arrays and settings. A Router's fingerprint records it (so a decision cache shared
        by Routers with different outcome models never serves one model's tier for the other's)."""
        digest = hashlib.sha256(json.dumps([FORMAT, list(self.models_), self.head_, self.encoder_, self.eps,
                                            self.neighbour_k_, self.blend_]).encode())
        arrays = [self.sparse_weights_, self.dense_weights_, self.bias_, self.featurizer_.idf_, self.dense_mean_,
                  self.dense_scale_, self.prototypes_, *self._neighbour_arrays().values()]
        for array in arrays:
            if array is not None:
                digest.update(np.ascontiguousarray(array).tobytes())
        return {"format": FORMAT, "models": list(self.models_), "digest": digest.hexdigest()[:16]}

    def save(self, path: str | Path, **metadata: Any) -> Path:
        """Write ``path`` (``.npz``: arrays only) and the same name with ``.json`` (metadata)."""
        path = Path(path).expanduser()
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, sparse_weights=self.sparse_weights_, dense_weights=self.dense_weights_,
                            bias=self.bias_, idf=self.featurizer_.idf_, dense_mean=self.dense_mean_,
                            dense_scale=self.dense_scale_,
                            prototypes=self.prototypes_ if self.prototypes_ is not None else np.zeros((0, 0)),
                            **self._neighbour_arrays())
        meta = {"format": FORMAT, "models": list(self.models_), "featurizer": self.featurizer_.params(),
                "dense": self._dense_names(), "head": self.head_, "head_digest": self.head_digest_,
                "encoder": self.encoder_, "prototypes": 0 if self.prototypes_ is None else len(self.prototypes_),
                "l2": self.l2_, "dense_l2": self.dense_l2_, "eps": self.eps, "span": self.span_,
                "neighbours": {"k": self.neighbour_k_, "blend": self.blend_, "encoder": self.neighbour_encoder_,
                               "rows": 0 if self.neighbour_embeddings_ is None else len(self.neighbour_embeddings_)},
                **metadata}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    def _neighbour_arrays(self) -> dict[str, np.ndarray]:
        if not self.blend_:
            return {}
        # Half precision on disk: cosine similarities need no more, and the file is half the size.
        return {"neighbour_embeddings": self.neighbour_embeddings_.astype(np.float16),
                "neighbour_targets": self.neighbour_targets_,
                "neighbour_base": self.neighbour_base_}

    def _load_neighbours(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], path: Path) -> None:
        """The neighbour blend of a saved model (files written before it have none)."""
        self._clear_neighbours()
        info = meta.get("neighbours") or {}
        if not isinstance(info, dict):
            raise OutcomeModelError(f"{path}: bad neighbour metadata: expected an object, got {info!r}")
        if not info.get("blend"):
            if arrays:  # arrays written for a blend that the metadata no longer names
                raise OutcomeModelError(f"{path}: it holds neighbour arrays but its metadata names no blend")
            return
        try:
            k, blend, name = info["k"], float(info["blend"]), str(info["encoder"])
            E, T, base = arrays["neighbour_embeddings"], arrays["neighbour_targets"], arrays["neighbour_base"]
        except (KeyError, TypeError, ValueError) as exc:
            raise OutcomeModelError(f"{path}: bad neighbour data: {type(exc).__name__}: {exc}") from None
        n_models = len(self.models_)
        if not all(np.issubdtype(a.dtype, np.number) for a in (E, T, base)) \
                or not (np.isfinite(E).all() and np.isfinite(base).all()):
            raise OutcomeModelError(f"{path}: its neighbour arrays hold values that are not finite numbers")
        if not (isinstance(k, int) and not isinstance(k, bool) and k >= 1 and 0 < blend <= 1
                and E.ndim == 2 and T.shape == (len(E), n_models) and base.shape == (n_models,)
                and info.get("rows", len(E)) == len(E)):
            raise OutcomeModelError(f"{path}: its neighbour arrays do not match the metadata")
        found = _default_encoder()
        if found is None or found[1] != name:
            raise NotAvailableError(f"{path} blends in neighbours found by the sentence encoder {name!r}, which is "
                                    f"not available here (available: {found[1] if found else 'none'})")
        dim = getattr(found[0], "dim", None)
        if dim is not None and E.shape[1] != dim:
            raise OutcomeModelError(f"{path}: its neighbour embeddings do not match the encoder's dimension")
        self._set_neighbours(k, blend, E, T, base, found)

    def _prior_columns(self) -> tuple[int, ...]:
        """The dense columns penalised by :data:`PRIOR_L2` only: the head's difficulty output, when it is
        a feature."""
        return (len(DENSE_NAMES) + len(_EXTRA_NAMES) + len(self._head().type_labels_)
                + len(self._head().complexity_labels_),) if self.needs_ else ()

    def _fixed_names(self) -> list[str]:
        """The dense columns before the encoder's: surface signals, then the head's outputs."""
        names = list(DENSE_NAMES) + list(_EXTRA_NAMES)
        if self.head_:
            head = self._head()
            names += [f"l3_type_{x}" for x in head.type_labels_] + [f"l3_cx_{x}" for x in head.complexity_labels_]
            names += ["l3_needs"] if self.needs_ else []
        return names

    def _dense_names(self) -> list[str]:
        names = self._fixed_names()
        if self.encoder_ is not None:
            kind = "prototype" if self.prototypes_ is not None else self.encoder_
            names += [f"{kind}_{i}" for i in range(len(self.dense_mean_) - len(names))]
        return names

    def _check_dense_layout(self, saved: Any, path: Path) -> None:
        """The dense columns a loaded model computes are the ones its weights were fitted on: same
        names (the head's labels, in order) and, with the encoder, as many of its columns. A file
        whose ``head`` or ``encoder`` entry was edited, or fitted on a head with other labels, would
        otherwise fail (or read the wrong columns) on every prediction."""
        names = self._fixed_names()
        width: int | None = len(names)
        if self.encoder_ is not None:
            dim = len(self.prototypes_) if self.prototypes_ is not None else getattr(self._encoder_obj, "dim", None)
            width = None if dim is None else len(names) + int(dim)
        saved = list(saved) if isinstance(saved, list) else []
        if saved[:len(names)] != names or (width is not None and len(saved) != width):
            expected = width if width is not None else f"at least {len(names)}"
            raise OutcomeModelError(f"{path}: its features ({len(saved)} dense columns) are not the ones this model "
                                    f"computes here ({expected}, from its head and encoder settings): the file was "
                                    "edited or fitted on another Layer 3 head; retrain it")

    @classmethod
    def load(cls, path: str | Path) -> OutcomeModel:
        """Load a model saved by :meth:`save`. Raises :class:`OutcomeModelError` (bad file) or
        :class:`~dmr.errors.NotAvailableError` (its encoder or head is not available here)."""
        path = Path(path).expanduser()
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        names = ("sparse_weights", "dense_weights", "bias", "idf", "dense_mean", "dense_scale")
        try:
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as arrays:
                data = {name: arrays[name] for name in names}
                # Files written before prototype features have none.
                data["prototypes"] = arrays["prototypes"] if "prototypes" in arrays.files else np.zeros((0, 0))
                extra = {name: arrays[name] for name in arrays.files if name.startswith("neighbour_")}
        except FileNotFoundError as exc:
            raise OutcomeModelError(f"outcome model file missing: {exc.filename}") from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise OutcomeModelError(f"cannot read outcome model {path}: {type(exc).__name__}: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise OutcomeModelError(f"{path}: format {found!r}, expected {FORMAT!r}")
        models = meta.get("models")
        if (not isinstance(models, list) or not all(isinstance(m, str) and m.strip() for m in models)
                or len(set(models)) != len(models) or len(models) < 2):
            raise OutcomeModelError(f"{path}: bad metadata: 'models' must name two or more distinct models "
                                    f"or tiers, cheapest first, not {models!r}")
        # Weights that are not finite numbers would make every prediction NaN (or fail): a damaged
        # file is refused here rather than failing, or routing every task to the top tier, later.
        broken = [name for name, array in data.items()
                  if not (np.issubdtype(array.dtype, np.number) and np.isfinite(array).all())
                  or name == "dense_scale" and not (array > 0).all()]
        if broken:
            raise OutcomeModelError(f"{path}: {', '.join(broken)} hold values no fitted model has (not finite "
                                    "numbers, or a scale that is not positive)")
        try:
            self = cls(l2=float(meta["l2"]), dense_l2=float(meta["dense_l2"]), eps=float(meta["eps"]),
                       bits=int(meta["featurizer"]["bits"]), char_ngrams=tuple(meta["featurizer"]["char_ngrams"]),
                       use_head=bool(meta["head"]), encoder="auto" if meta["encoder"] else None)
            self.models_ = tuple(meta["models"])
            self.l2_, self.dense_l2_, self.span_ = float(meta["l2"]), float(meta["dense_l2"]), float(meta["span"])
            self.head_ = bool(meta["head"])
            self.needs_ = self.head_ and "l3_needs" in meta["dense"]
            self.featurizer_ = NgramFeaturizer.from_params(meta["featurizer"], data["idf"])
            self.sparse_weights_, self.dense_weights_, self.bias_ = (
                data["sparse_weights"], data["dense_weights"], data["bias"])
            self.dense_mean_, self.dense_scale_ = data["dense_mean"], data["dense_scale"]
            k, d = len(self.models_), len(meta["dense"])
            n_proto = int(meta.get("prototypes", 0))
            self.prototypes_ = data["prototypes"].astype(np.float64) if n_proto else None
            ok = (n_proto == len(data["prototypes"]) and (not n_proto or bool(meta["encoder"]))
                  and self.sparse_weights_.shape == (self.featurizer_.n_features, k)
                  and self.dense_weights_.shape == (d, k) and self.bias_.shape == (k,)
                  and self.dense_mean_.shape == (d,) and self.dense_scale_.shape == (d,))
        except (KeyError, TypeError, ValueError) as exc:
            raise OutcomeModelError(f"{path}: bad metadata: {type(exc).__name__}: {exc}") from None
        if not ok:
            raise OutcomeModelError(f"{path}: array shapes do not match the metadata")
        self.encoder_ = None
        self._encoder_obj = None
        if meta["encoder"]:
            found = _default_encoder()
            if found is None or found[1] != meta["encoder"]:
                here = found[1] if found else "none"
                raise NotAvailableError(f"{path} was trained with the sentence encoder {meta['encoder']!r}, "
                                        f"which is not available here (available: {here})")
            self._encoder_obj, self.encoder_ = found
            dim = getattr(found[0], "dim", None)
            if self.prototypes_ is not None and dim is not None and self.prototypes_.shape[1] != dim:
                raise OutcomeModelError(f"{path}: its prototypes do not match the encoder's dimension")
        self._load_neighbours(meta, extra, path)
        self._check_dense_layout(meta["dense"], path)
        self.head_digest_ = meta.get("head_digest")
        self.stale_head_ = False
        if self.head_:
            head = self._head()
            if self.needs_ and not getattr(head, "needs_", False):
                raise NotAvailableError(f"{path} uses the Layer 3 head's difficulty output, which the head here "
                                        "does not have: retrain the outcome model")
            # A file older than the digest cannot be checked; one with a different digest still works,
            # on features that have moved since it was fitted.
            self.stale_head_ = self.head_digest_ is not None and self.head_digest_ != self._head_digest()
            if self.stale_head_:
                log.warning("dmr: %s was fitted on another Layer 3 head than this one (dmr was upgraded or the "
                            "head retrained), so the head's features it reads have moved; retrain it (dmr train "
                            "--outcomes F or --from-log) for the predictions it was validated with", path)
        self.metadata_ = meta
        return self


# -- the regression ------------------------------------------------------------------------------
def _fit_logistic(X: SparseRows, D: np.ndarray, Y: np.ndarray, M: np.ndarray, l2: float, l2_dense: float,
                  max_iter: int, min_df: int = 2, free: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Independent logistic regressions (one per column of the soft targets ``Y``) over the sparse
    rows ``X`` and the dense block ``D``, by L-BFGS on the mean log loss over the targets present
    (``M`` is 1 where a target exists) plus ridge penalties; the dense columns in ``free`` get
    :data:`PRIOR_L2` instead of ``l2_dense``."""
    n, k = Y.shape
    cols, matmul, matmul_t = sparse_products(X, min_df)
    m, d = len(cols), D.shape[1]
    dense_penalty = np.full((d, 1), float(l2_dense))
    dense_penalty[list(free)] = PRIOR_L2

    # The bias starts at each column's base rate, so a column that is (nearly) constant is done.
    base = np.clip((Y * M).sum(axis=0) / np.maximum(M.sum(axis=0), 1.0), 1e-3, 1 - 1e-3)
    b0 = np.log(base / (1 - base))

    def unpack(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return w[:m * k].reshape(m, k), w[m * k:(m + d) * k].reshape(d, k), w[(m + d) * k:]

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        ws, wd, b = unpack(w)
        z = matmul(ws) + D @ wd + b
        # log(1 + e^z) - y z, stably
        loss = float((M * (np.logaddexp(0.0, z) - Y * z)).sum()) / n
        g = M * (sigmoid(z) - Y) / n
        loss += 0.5 * (l2 * float((ws * ws).sum()) + float((dense_penalty * wd * wd).sum()) + 1e-6 * float(b @ b))
        grad = np.concatenate([(matmul_t(g) + l2 * ws).ravel(), (D.T @ g + dense_penalty * wd).ravel(),
                               g.sum(axis=0) + 1e-6 * b])
        return loss, grad

    x0 = np.zeros((m + d) * k + k)
    x0[(m + d) * k:] = b0
    # head.lbfgs rather than scipy's L-BFGS-B: with ~10^5 weights, scipy's bookkeeping costs ~0.1 s
    # a step here, ten times the function itself.
    w = lbfgs(fun, x0, max_iter=max_iter, tol=1e-7)
    ws, wd, b = unpack(w)
    full = np.zeros((X.n_cols, k), dtype=np.float32)
    full[cols] = ws
    return full, wd.astype(np.float64), b.astype(np.float64)
