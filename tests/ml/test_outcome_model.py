"""The outcome model: it learns what decides an outcome, round-trips without pickle, and says
clearly when a file or its encoder is unusable."""

from __future__ import annotations

import json
import random
import zipfile

import numpy as np
import pytest

from dmr.errors import InputError, NotAvailableError
from dmr.ml.outcomes import OutcomeModel, OutcomeModelError, order_by_price

_WORDS = ["river", "stone", "paper", "cloud", "window", "garden", "letter", "market", "silver", "engine", "forest",
          "candle", "bridge", "orange", "pencil", "harbor", "meadow", "violin", "ladder", "basket"]


def _data(n=240, seed=0):
    """The weak model fails exactly when the prompt mentions "quantum"; the strong one never does."""
    rng = random.Random(seed)
    prompts, scores = [], []
    for i in range(n):
        words = rng.sample(_WORDS, 6)
        hard = i % 3 == 0
        if hard:
            words.insert(rng.randrange(len(words)), "quantum")
        prompts.append(" ".join(words))
        scores.append({"weak": 0.0 if hard else 1.0, "strong": 1.0})
    return prompts, scores


@pytest.fixture(scope="module")
def fitted():
    prompts, scores = _data()
    return OutcomeModel(encoder=None).fit(prompts, scores, models=["weak", "strong"]), prompts


def test_learns_the_keyword_that_decides_the_outcome(fitted):
    model, _ = fitted
    test, _ = _data(60, seed=7)
    hard = np.array(["quantum" in p for p in test])
    p = model.predict(test)
    assert p.shape == (60, 2) and model.models == ("weak", "strong")
    assert p[~hard, 0].min() > p[hard, 0].max()      # separates every prompt
    assert p[hard, 0].mean() < 0.35 and p[~hard, 0].mean() > 0.65
    assert p[:, 1].min() > 0.8                        # the strong model always reaches the best
    d = model.difficulty(test)
    assert ((d >= 0) & (d <= 1)).all()
    assert np.allclose(d, (1 + p[:, 1] - p[:, 0]) / 2)


def test_save_load_round_trip_gives_identical_predictions(fitted, tmp_path):
    model, prompts = fitted
    path = model.save(tmp_path / "outcome.npz", note="test")
    again = OutcomeModel.load(path)
    assert again.models == model.models
    assert np.array_equal(again.predict(prompts[:40]), model.predict(prompts[:40]))
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["format"] == "dmr-outcome-model/1" and meta["encoder"] is None and meta["note"] == "test"
    assert len(meta["dense"]) == again.dense_weights_.shape[0]


def test_the_npz_holds_plain_arrays_only(fitted, tmp_path):
    model, _ = fitted
    path = model.save(tmp_path / "outcome.npz")
    with np.load(path, allow_pickle=False) as arrays:
        for name in arrays.files:
            assert arrays[name].dtype != object
    # Every member's .npy header declares a plain numeric dtype (an object array would say '|O').
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            with archive.open(name) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                _, _, dtype = read_header(member)
                assert dtype.kind in "fiub", (name, dtype)


def test_load_refuses_an_encoder_that_is_not_available(fitted, tmp_path):
    model, _ = fitted
    path = model.save(tmp_path / "outcome.npz")
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["encoder"] = "no-such-encoder-v9"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(NotAvailableError, match="no-such-encoder-v9"):
        OutcomeModel.load(path)


def test_load_warns_when_the_head_it_was_fitted_on_has_changed(fitted, tmp_path, caplog):
    model, prompts = fitted
    path = model.save(tmp_path / "outcome.npz")
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    assert meta["head"] is True and len(meta["head_digest"]) == 16  # the shipped head's digest
    with caplog.at_level("WARNING", logger="dmr.ml"):
        assert OutcomeModel.load(path).stale_head_ is False
    assert not caplog.records
    meta["head_digest"] = "0123456789abcdef"  # fitted on another head (an older dmr)
    meta_path.write_text(json.dumps(meta))
    with caplog.at_level("WARNING", logger="dmr.ml"):
        stale = OutcomeModel.load(path)
    assert stale.stale_head_ is True and "another Layer 3 head" in caplog.text
    assert np.array_equal(stale.predict(prompts[:5]), model.predict(prompts[:5]))  # it still works
    del meta["head_digest"]  # a file from before the digest existed cannot be checked
    meta_path.write_text(json.dumps(meta))
    assert OutcomeModel.load(path).stale_head_ is False


def test_load_reports_bad_files(fitted, tmp_path):
    model, _ = fitted
    with pytest.raises(OutcomeModelError, match="missing"):
        OutcomeModel.load(tmp_path / "nothing.npz")
    path = model.save(tmp_path / "outcome.npz")
    path.write_bytes(b"not a zip")
    with pytest.raises(OutcomeModelError, match="cannot read"):
        OutcomeModel.load(path)
    path = model.save(tmp_path / "outcome.npz")
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["format"] = "something-else/2"
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(OutcomeModelError, match="format"):
        OutcomeModel.load(path)


def _edited(model, path, meta_edit=None, **arrays):
    """``model`` saved at ``path`` with its metadata and arrays edited, as a damaged file would be."""
    path = model.save(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    if meta_edit:
        meta_edit(meta)
    path.with_suffix(".json").write_text(json.dumps(meta))
    if arrays:
        with np.load(path, allow_pickle=False) as saved:
            data = {name: saved[name] for name in saved.files}
        np.savez(path, **{**data, **arrays})
    return path


def test_load_refuses_files_whose_weights_or_features_were_damaged(fitted, tmp_path):
    # Each of these loaded before and then failed, or predicted NaN (which sent every task to the
    # top tier), on every call: a file no fit writes is refused when it is loaded.
    model, prompts = fitted
    k = len(model.models)
    damaged = {
        "not finite numbers": [{"bias": np.full(k, np.nan)}, {"bias": np.array(["a", "b"])},
                               {"dense_weights": np.full_like(model.dense_weights_, np.inf)},
                               {"dense_scale": np.zeros_like(model.dense_scale_)}],
        "'models' must name two or more": [{"meta": lambda m: m.update(models=[])},
                                           {"meta": lambda m: m.update(models=["weak", "weak"])},
                                           {"meta": lambda m: m.update(models="ws")},
                                           {"meta": lambda m: m.update(models=[["weak"], "strong"])}],
        # the head's probabilities named in the file but not computed (or the other way round)
        "features": [{"meta": lambda m: m.update(head=False)},
                     {"meta": lambda m: m.update(dense=[n.replace("l3_type_", "l3_kind_") for n in m["dense"]])}],
    }
    for match, edits in damaged.items():
        for edit in edits:
            edit = dict(edit)
            path = _edited(model, tmp_path / "damaged.npz", edit.pop("meta", None), **edit)
            with pytest.raises(OutcomeModelError, match=match):
                OutcomeModel.load(path)
    assert np.array_equal(OutcomeModel.load(_edited(model, tmp_path / "fine.npz")).predict(prompts[:3]),
                          model.predict(prompts[:3]))


def test_paths_may_start_with_the_home_directory(fitted, tmp_path, monkeypatch):
    model, prompts = fitted
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # where a "~" taken literally would land
    path = model.save("~/models/outcome.npz")
    assert path == tmp_path / "models" / "outcome.npz"
    assert np.array_equal(OutcomeModel.load("~/models/outcome.npz").predict(prompts[:3]), model.predict(prompts[:3]))


def test_graded_scores_and_three_models():
    rng = random.Random(3)
    prompts, scores = [], []
    for i in range(90):
        hard = i % 2 == 0
        prompts.append(("prove the theorem " if hard else "say hello ") + rng.choice(_WORDS))
        scores.append({"small": 2.0 if hard else 9.0, "medium": 7.0 if hard else 9.0, "large": 9.5})
    model = OutcomeModel(encoder=None, l2=1e-3).fit(prompts, scores, prices={"small": 1, "medium": 3, "large": 9})
    assert model.models == ("small", "medium", "large")
    p = model.predict(["prove the theorem river", "say hello river"])
    assert p[0, 0] < p[1, 0] and p[0, 0] < p[0, 1] < p[0, 2]


def test_rows_that_score_one_model_count_against_the_best_score_seen():
    # Feedback from logs scores only the tier that answered.
    prompts = [f"{'quantum ' if i % 2 else ''}{w} task" for i, w in enumerate(_WORDS * 4)]
    scores = [{"low": 0.0} if "quantum" in p else {"low": 1.0} for p in prompts]
    scores += [{"high": 1.0}] * 8
    prompts += [f"anything {w}" for w in _WORDS[:8]]
    model = OutcomeModel(encoder=None, l2=1e-3).fit(prompts, scores, models=["low", "high"])
    p = model.predict(["quantum river task", "river task"])
    assert p[0, 0] < 0.5 < p[1, 0]


def test_fit_rejects_unusable_input():
    with pytest.raises(InputError, match="scores none"):
        OutcomeModel(encoder=None).fit(["a b", "c d", "e f", "g h"], [{"w": 1, "s": 1}] * 3 + [{"x": 1}],
                                       models=["w", "s"])
    with pytest.raises(InputError, match="no price"):
        order_by_price(["w", "s"], {"w": 1.0})
    # Tiers named most expensive first would make the top tier's column the "cheap" one: every
    # difficulty would read backwards.
    with pytest.raises(InputError, match="tiers out of their order"):
        OutcomeModel(encoder=None).fit(["a b", "c d", "e f", "g h"], [{"low": 1, "high": 1}] * 4,
                                       models=["high", "low"])


def _three_way(n, seed):
    """"alpha": only the cheap model is right; "beta": both are; "quantum": only the top model is."""
    rng = random.Random(seed)
    prompts, scores, keys = [], [], []
    for i in range(n):
        key = ("alpha", "beta", "quantum")[i % 3]
        words = rng.sample(_WORDS, 5)
        words.insert(rng.randrange(len(words)), key)
        prompts.append(" ".join(words))
        scores.append({"alpha": {"weak": 1.0, "strong": 0.0}, "beta": {"weak": 1.0, "strong": 1.0},
                       "quantum": {"weak": 0.0, "strong": 1.0}}[key])
        keys.append(key)
    return prompts, scores, np.array(keys)


def test_difficulty_ranks_by_the_signed_gap_so_cheap_model_wins_count():
    prompts, scores, _ = _three_way(240, 5)
    model = OutcomeModel(l2=1e-3).fit(prompts, scores, models=["weak", "strong"])
    test, _, keys = _three_way(60, 11)
    d = model.difficulty(test)
    alpha, beta, quantum = (d[keys == k] for k in ("alpha", "beta", "quantum"))
    assert alpha.max() < beta.min() and beta.max() < quantum.min()
    assert alpha.mean() < 0.2 and abs(beta.mean() - 0.5) < 0.1 and quantum.mean() > 0.8


def test_inner_cross_validation_decides_how_the_sentence_encoder_is_used():
    prompts, scores = _data(40)
    fit = dict(models=["weak", "strong"])
    off = OutcomeModel(l2=1e-3, encoder=None).fit(prompts, scores, **fit)
    assert off.encoder_ is None and off.prototypes_ is None
    always = OutcomeModel(l2=1e-3, encoder="always").fit(prompts, scores, **fit)
    assert always.encoder_ and "@" in always.encoder_ and always.prototypes_ is None
    auto = OutcomeModel(l2=1e-3).fit(prompts, scores, **fit)
    losses = auto.cv_losses_
    assert set(losses) == {"8 prototypes", "embedding"}  # 40 rows: the minimum of 8 prototypes
    assert auto.encoder_ is not None
    assert (auto.prototypes_ is not None) == (losses["8 prototypes"] < losses["embedding"])
    # Without prototypes, "auto" weighs the raw embedding against no encoder at all.
    plain = OutcomeModel(l2=1e-3, prototypes=0).fit(prompts, scores, **fit)
    assert set(plain.cv_losses_) == {"without encoder", "embedding"} and plain.prototypes_ is None
    with pytest.raises(InputError, match="encoder"):
        OutcomeModel(encoder="sometimes").fit(prompts, scores, **fit)
    with pytest.raises(InputError, match="prototypes"):
        OutcomeModel(prototypes=-1).fit(prompts, scores, **fit)


def test_prototypes_are_kmeans_centres_and_round_trip(tmp_path):
    from dmr.ml.outcomes import kmeans_centres, prototype_features, prototypes_for

    rng = np.random.default_rng(3)
    axes = np.eye(4)
    X = np.concatenate([axes[i] + 0.05 * rng.standard_normal((30, 4)) for i in range(3)])
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    centres = kmeans_centres(X, 3)
    assert np.allclose(np.linalg.norm(centres, axis=1), 1.0)
    assert sorted(int(np.argmax(np.abs(c))) for c in centres) == [0, 1, 2]  # one centre per cluster
    assert np.array_equal(centres, kmeans_centres(X, 3))                   # deterministic
    soft = prototype_features(X, centres)
    assert np.allclose(soft.sum(axis=1), 1.0)
    nearest = soft.argmax(axis=1)
    assert np.array_equal(nearest, np.argmax(X @ centres.T, axis=1))
    assert all(len(set(nearest[i * 30:(i + 1) * 30])) == 1 for i in range(3))  # a cluster, one prototype
    assert [prototypes_for(n) for n in (10, 400, 100_000)] == [8, 20, 64]

    prompts, scores = _data(120)
    model = OutcomeModel(l2=1e-3, encoder="prototypes").fit(prompts, scores, models=["weak", "strong"])
    assert model.prototypes_.shape == (8, model._encoder_obj.dim)
    path = model.save(tmp_path / "proto.npz")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["prototypes"] == 8 and meta["dense"][-1] == "prototype_7"
    again = OutcomeModel.load(path)
    assert np.array_equal(again.prototypes_, model.prototypes_)
    assert np.allclose(again.predict(prompts[:30]), model.predict(prompts[:30]))
    # Metadata that disagrees with the arrays is refused, not half-loaded.
    meta["prototypes"] = 5
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(OutcomeModelError, match="shapes"):
        OutcomeModel.load(path)


def test_the_head_s_difficulty_output_is_a_feature_and_must_be_there_at_load(fitted, tmp_path, monkeypatch):
    model, _ = fitted
    assert "l3_needs" in model._dense_names()
    path = model.save(tmp_path / "m.npz")
    # The same head without its difficulty output (as a head trained without capability rows is).
    from dmr.layers import embedding
    from dmr.ml.head import NgramHead

    plain = NgramHead.load(embedding.DEFAULT_HEAD)
    k = len(plain.type_labels_) + len(plain.complexity_labels_)
    plain.sparse_weights_, plain.dense_weights_, plain.bias_ = (
        plain.sparse_weights_[:, :k], plain.dense_weights_[:, :k], plain.bias_[:k])
    plain.needs_ = False
    monkeypatch.setattr(embedding, "DEFAULT_HEAD", plain.save(tmp_path / "plain.npz"))
    with pytest.raises(NotAvailableError, match="difficulty output"):
        OutcomeModel.load(path)


_EASY = ["hi there", "thanks a lot!", "what is the capital of France?", "say good morning in Spanish",
         "fix the typo in 'recieve'", "hello, how are you today?"]
_HARD = ["Prove that every finite group of order p^2 with p prime is abelian.",
         "How many integer solutions does x^2 + y^2 = 5^10 have? Show every step of the count.",
         "Find all functions f: R -> R with f(x + f(y)) = f(x) + y for all real x, y, and prove there are no others.",
         "Three dice are thrown; what is the probability that the largest shows exactly 5 and the smallest exactly 2?",
         "Prove that the sum of 1/p over primes p diverges.",
         "A 6x6 board is tiled by 1x2 dominoes; show that some straight line cuts the board without cutting a domino."]


def test_with_few_rows_the_model_falls_back_on_the_zero_shot_difficulty():
    """The head's difficulty output is the one unpenalised weight: fitted on a dozen rows under a
    penalty that flattens every other weight, the model still ranks unseen hard tasks above easy ones
    by a wide margin, where a fully penalised fit would be left with the base rate."""
    prompts = _EASY + _HARD
    scores = [{"weak": 1.0, "strong": 1.0}] * len(_EASY) + [{"weak": 0.0, "strong": 1.0}] * len(_HARD)
    model = OutcomeModel(encoder=None, l2=1.0, dense_l2=100.0).fit(prompts, scores, models=["weak", "strong"])
    assert [model._dense_names()[i] for i in model._prior_columns()] == ["l3_needs"]
    easy = model.difficulty(["good night!", "what colour is the sky?", "translate 'dog' into German"])
    hard = model.difficulty(["Prove that there are infinitely many primes of the form 4k + 3.",
                             "How many ways can 8 non-attacking rooks be placed on a chessboard with the main "
                             "diagonal removed? Justify the count."])
    assert hard.min() - easy.max() > 0.15, (easy, hard)
