"""Similarity-weighted neighbours in the outcome model: the estimate is the weighted, shrunk mean
of the nearest rows; the blend is kept only when held-out rows say it ranks better; a model that
uses it round-trips without pickle and refuses arrays that disagree with its metadata."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from dmr.errors import InputError
from dmr.ml.neighbours import PSEUDO_ROWS, choose_blend, neighbour_estimate
from dmr.ml.outcomes import OutcomeModel, OutcomeModelError


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_the_estimate_is_the_similarity_weighted_mean_shrunk_to_the_base_rate():
    ref = _unit([[1, 0], [0.8, 0.6], [0, 1], [-1, 0]])
    Y = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    M = np.ones_like(Y)
    base = np.array([0.5, 0.5])
    query = _unit([[1, 0]])
    got = neighbour_estimate(query, ref, Y, M, k=2, base=base)
    w = np.array([1.0, 0.8]) + 1e-6  # the two nearest rows, by cosine
    want = (w @ Y[:2] + PSEUDO_ROWS * base) / (w.sum() + PSEUDO_ROWS)
    assert np.allclose(got, want)
    # A target no neighbour has is the base rate; a row pointing away weighs (almost) nothing.
    M[:2, 0] = 0
    assert np.isclose(neighbour_estimate(query, ref, Y, M, k=2, base=base)[0, 0], 0.5)
    far = neighbour_estimate(_unit([[-1, 0]]), ref[:1], Y[:1], np.ones((1, 2)), k=1, base=base)
    assert np.allclose(far, (1e-6 * Y[0] + base) / (1e-6 + 1), atol=1e-5)
    # No reference rows at all: the base rate.
    assert np.allclose(neighbour_estimate(query, ref[:0], Y[:0], M[:0], k=3, base=base), base)


def _clustered(n_clusters=30, per=6, seed=0):
    """Unit embeddings in tight clusters; the cheap model fails on a random half of the clusters."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((n_clusters, 16)))
    E = _unit(np.repeat(centres, per, axis=0) + 0.05 * rng.standard_normal((n_clusters * per, 16)))
    fails = np.repeat(rng.random(n_clusters) < 0.5, per)
    Y = np.stack([np.where(fails, 0.0, 1.0), np.ones(len(E))], axis=1)
    fold = np.arange(len(E)) % 3
    return E, Y, fold


def test_the_blend_is_kept_when_neighbours_rank_held_out_rows_better():
    E, Y, fold = _clustered()
    M = np.ones_like(Y)
    base = Y.mean(axis=0)
    uninformed = np.full_like(Y, 0.5)  # a logistic model that learned nothing
    k, alpha, _ = choose_blend(E, Y, M, fold, uninformed, base)
    assert k > 0 and alpha > 0
    # Held-out predictions that are already right are not blended with anything.
    assert choose_blend(E, Y, M, fold, Y.copy(), base)[:2] == (0, 0.0)
    # Neighbours that say nothing (outcomes unrelated to the clusters) are not blended in.
    shuffled = Y[np.random.default_rng(1).permutation(len(Y))]
    rng = np.random.default_rng(2)
    informed = np.clip(shuffled + 0.2 * rng.standard_normal(shuffled.shape), 0, 1)
    assert choose_blend(E, shuffled, M, fold, informed, shuffled.mean(axis=0))[:2] == (0, 0.0)


def test_with_few_rows_scoring_both_models_the_blend_is_chosen_by_log_loss():
    E, Y, fold = _clustered(n_clusters=8, per=6)
    M = np.ones_like(Y)
    M[::2, 0] = 0  # half the rows score the strong model only: 24 rank, fewer than the 30 needed
    M[1::2, 1] = 0
    k, alpha, loss = choose_blend(E, Y, M, fold, np.full_like(Y, 0.5), (Y * M).sum(0) / M.sum(0))
    assert alpha > 0 and loss > 0  # a log loss is positive; the ranking criterion is not


_TOPICS = ["tax law", "chess openings", "sourdough", "orbital mechanics", "violin repair", "tide tables",
           "beekeeping", "kanji strokes", "wind turbines", "jazz chords", "glacier melt", "sushi rice"]
_FRAMES = ["Tell me about {}.", "What should I know about {}?", "Explain {} briefly.", "Give me a note on {}.",
           "Summarise {} for me.", "A few words on {}, please."]


def _near_duplicates():
    """Outcomes decided by the topic of the prompt, which the phrasing repeats."""
    rng = random.Random(5)
    hard = set(rng.sample(_TOPICS, 6))
    prompts, scores = [], []
    for topic in _TOPICS:
        for frame in _FRAMES:
            prompts.append(frame.format(topic))
            scores.append({"weak": 0.0 if topic in hard else 1.0, "strong": 1.0})
    return prompts, scores, hard


@pytest.fixture(scope="module")
def blended():
    prompts, scores, hard = _near_duplicates()
    model = OutcomeModel(l2=1.0, dense_l2=10.0, encoder="prototypes", prototypes=0).fit(
        prompts, scores, models=["weak", "strong"])
    return model, prompts, hard


def test_the_outcome_model_blends_in_neighbours_when_they_help(blended):
    model, prompts, hard = blended
    assert model.blend_ > 0 and model.neighbour_k_ in (5, 10, 20, 40)
    assert model.neighbour_embeddings_.shape == (len(prompts), model._neighbour_encoder.dim)
    fresh = ["Could you tell me about {}?".format(t) for t in _TOPICS]
    d = model.difficulty(fresh)
    is_hard = np.array([t in hard for t in _TOPICS])
    assert d[is_hard].min() > d[~is_hard].max()


def test_neighbours_are_off_without_an_encoder_or_when_asked():
    prompts, scores, _ = _near_duplicates()
    for params in ({"encoder": None}, {"neighbours": None}, {"neighbours": 0}):
        model = OutcomeModel(l2=1.0, dense_l2=10.0, **params).fit(prompts, scores, models=["weak", "strong"])
        assert model.blend_ == 0 and model.neighbour_embeddings_ is None
    with pytest.raises(InputError, match="neighbours"):
        OutcomeModel(neighbours="many").fit(prompts, scores, models=["weak", "strong"])


def test_a_blended_model_round_trips_and_refuses_inconsistent_files(blended, tmp_path):
    model, prompts, _ = blended
    path = model.save(tmp_path / "blend.npz")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["neighbours"]["k"] == model.neighbour_k_ and meta["neighbours"]["rows"] == len(prompts)
    with np.load(path, allow_pickle=False) as arrays:
        assert arrays["neighbour_embeddings"].dtype == np.float16
        assert arrays["neighbour_targets"].shape == (len(prompts), 2)
    again = OutcomeModel.load(path)
    assert again.blend_ == model.blend_
    assert np.allclose(again.predict(prompts), model.predict(prompts), atol=2e-3)  # float16 embeddings on disk
    meta["neighbours"]["blend"] = 1.5
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(OutcomeModelError, match="neighbour"):
        OutcomeModel.load(path)
    # Metadata edited away from the arrays it describes: refused, never a blend silently dropped
    # or a raw AttributeError.
    for edit, match in (([1], "expected an object"), (None, "names no blend"), ({"blend": 0}, "names no blend"),
                        ({**meta["neighbours"], "blend": model.blend_, "k": 2.7}, "do not match"),
                        ({**meta["neighbours"], "blend": model.blend_, "rows": 3}, "do not match")):
        path.with_suffix(".json").write_text(json.dumps({**meta, "neighbours": edit}))
        with pytest.raises(OutcomeModelError, match=match):
            OutcomeModel.load(path)
    meta["neighbours"]["blend"] = model.blend_
    path.with_suffix(".json").write_text(json.dumps(meta))
    with np.load(path, allow_pickle=False) as saved:
        arrays = {name: saved[name] for name in saved.files}
    finite = arrays["neighbour_embeddings"].copy()
    arrays["neighbour_embeddings"][0, 0] = np.nan  # a damaged file: every prediction would be NaN
    np.savez(path, **arrays)
    with pytest.raises(OutcomeModelError, match="neighbour arrays hold values that are not finite"):
        OutcomeModel.load(path)
    np.savez(path, **{**arrays, "neighbour_embeddings": finite})
    meta["neighbours"]["encoder"] = "no-such-encoder-v9"
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match="no-such-encoder-v9"):
        OutcomeModel.load(path)


def test_the_blend_stores_at_most_neighbour_rows_and_the_same_ones_in_any_order():
    prompts, scores, hard = _near_duplicates()
    cap = 48  # of 72: still enough near-duplicates of every topic for the blend to pay

    def fit(order):
        return OutcomeModel(l2=1.0, dense_l2=10.0, encoder="prototypes", prototypes=0, neighbour_rows=cap).fit(
            [prompts[i] for i in order], [scores[i] for i in order], models=["weak", "strong"])

    model = fit(range(len(prompts)))
    assert model.blend_ > 0 and model.neighbour_embeddings_.shape[0] == cap
    backwards = fit(range(len(prompts) - 1, -1, -1))
    stored = {tuple(np.round(row, 5)) for row in model.neighbour_embeddings_}
    assert stored == {tuple(np.round(row, 5)) for row in backwards.neighbour_embeddings_}
    fresh = ["Could you tell me about {}?".format(t) for t in _TOPICS]
    is_hard = np.array([t in hard for t in _TOPICS])
    d = model.difficulty(fresh)
    assert d[is_hard].min() > d[~is_hard].max()
    with pytest.raises(InputError, match="neighbour_rows"):
        OutcomeModel(neighbour_rows=0).fit(prompts, scores, models=["weak", "strong"])
