"""The Layer 3 head: fit/predict, temperature calibration, save/load without pickle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dmr.ml.features import NgramFeaturizer
from dmr.ml.head import FORMAT, HeadFormatError, NgramHead, lbfgs
from dmr.types import TaskComplexity, TaskType

TYPES = [str(t) for t in TaskType]
LEVELS = [str(c) for c in TaskComplexity]


def _fit(rows, **kw):
    head = NgramHead(NgramFeaturizer(bits=14), max_iter=60, **kw)
    return head.fit([r["task"] for r in rows], [r["task_type"] for r in rows], [r["complexity"] for r in rows],
                    type_labels=TYPES, complexity_labels=LEVELS)


def test_init_only_stores_parameters_and_fit_returns_self(small_rows):
    head = NgramHead(l2=0.01, max_iter=5)
    assert (head.l2, head.max_iter) == (0.01, 5)
    assert not [k for k in vars(head) if k.endswith("_")]
    fitted = head.fit([r["task"] for r in small_rows], [r["task_type"] for r in small_rows],
                      [r["complexity"] for r in small_rows], type_labels=TYPES, complexity_labels=LEVELS)
    assert fitted is head
    assert {"sparse_weights_", "dense_weights_", "bias_", "temperatures_"} <= set(vars(head))


def test_fit_learns_the_training_rows(small_rows):
    head = _fit(small_rows)
    p_type, p_cx = head.predict_proba([r["task"] for r in small_rows])
    assert np.allclose(p_type.sum(axis=1), 1) and np.allclose(p_cx.sum(axis=1), 1)
    predicted = [head.type_labels_[i] for i in p_type.argmax(axis=1)]
    assert np.mean([p == r["task_type"] for p, r in zip(predicted, small_rows)]) > 0.9


def test_training_is_deterministic(small_rows):
    a, b = _fit(small_rows), _fit(small_rows)
    assert np.array_equal(a.sparse_weights_, b.sparse_weights_)
    assert np.array_equal(a.logits(["translate hello"]), b.logits(["translate hello"]))


def test_batch_logits_do_not_depend_on_how_long_texts_are_chunked(small_rows):
    """Batches are cut by count and by characters (a batch of long pastes would otherwise hold
    millions of n-gram hashes at once); each text's logits are the same however it is cut, and the
    same as scored alone."""
    head = _fit(small_rows)
    paste = "Minutes of the board meeting. " * 150
    texts = [r["task"] for r in small_rows[:20]] + [paste + "Summarise this.", "hi", paste]
    whole = head.sparse_logits(texts, chunk=64, chunk_chars=10**9)
    assert np.array_equal(head.sparse_logits(texts, chunk=64, chunk_chars=500), whole)
    assert np.array_equal(head.sparse_logits(texts, chunk=3), whole)
    assert np.allclose(head.logits(texts), np.stack([head.logits([t])[0] for t in texts]))


def test_save_and_load_round_trip_without_pickle(small_rows, tmp_path):
    head = _fit(small_rows)
    head.temperatures_ = (1.5, 0.8)
    path = head.save(tmp_path / "h", note="test")
    assert path.suffix == ".npz" and path.with_suffix(".json").is_file()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["format"] == FORMAT and meta["note"] == "test"
    with np.load(path, allow_pickle=False) as arrays:  # plain arrays only
        assert all(arrays[name].dtype != object for name in arrays.files)
    loaded = NgramHead.load(path)
    texts = ["write a haiku", "prove the theorem", "日本語に翻訳して"]
    # Weights are stored as float16: predictions agree to that precision.
    assert np.allclose(loaded.logits(texts), head.logits(texts), atol=0.05)
    assert loaded.temperatures_ == (1.5, 0.8)
    pa, pb = loaded.predict_proba(texts), head.predict_proba(texts)
    assert (pa[0].argmax(1) == pb[0].argmax(1)).all()


def test_an_object_array_is_refused(small_rows, tmp_path):
    head = _fit(small_rows)
    path = head.save(tmp_path / "h")
    with np.load(path) as stored:
        arrays = dict(stored)
    arrays["bias"] = np.array([object()] * len(arrays["bias"]), dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(HeadFormatError, match="cannot read head"):
        NgramHead.load(path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "no_json", "bad_json", "wrong_format", "wrong_shape", "nan"])
def test_damaged_heads_raise_a_clear_error(small_rows, tmp_path, damage):
    path = _fit(small_rows).save(tmp_path / "h")
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    elif damage == "no_json":
        meta_path.unlink()
    elif damage == "bad_json":
        meta_path.write_text("{")
    elif damage == "wrong_format":
        meta_path.write_text(json.dumps({**meta, "format": "other/9"}))
    elif damage == "wrong_shape":
        meta_path.write_text(json.dumps({**meta, "featurizer": {**meta["featurizer"], "bits": 10}}))
    elif damage == "nan":
        with np.load(path) as stored:
            arrays = dict(stored)
        arrays["dense_weights"][0, 0] = np.nan
        np.savez(path, **arrays)
    with pytest.raises(HeadFormatError):
        NgramHead.load(path)


def test_calibration_fits_a_temperature_that_lowers_log_loss(small_rows):
    head = _fit(small_rows)
    rng = np.random.default_rng(0)
    # Overconfident held-out logits: a temperature above 1 fixes them.
    n = 400
    y = rng.integers(0, len(TYPES), n)
    logits = rng.normal(size=(n, len(TYPES) + len(LEVELS)))
    logits[np.arange(n), y] += 2.0
    logits *= 4.0
    head.calibrate(logits, [TYPES[i] for i in y], [LEVELS[i % len(LEVELS)] for i in y])
    assert head.temperatures_[0] > 1.5


def test_lbfgs_minimises_a_quadratic():
    target = np.array([1.0, -2.0, 3.0])
    x = lbfgs(lambda v: (float(((v - target) ** 2).sum()), 2 * (v - target)), np.zeros(3), max_iter=50)
    assert np.allclose(x, target, atol=1e-4)


def test_training_works_with_numpy_alone(small_rows, monkeypatch):
    import sys

    with_scipy = _fit(small_rows)
    for name in ("scipy", "scipy.sparse", "scipy.optimize"):
        monkeypatch.setitem(sys.modules, name, None)  # `import scipy...` now raises ImportError
    numpy_only = _fit(small_rows)
    texts = [r["task"] for r in small_rows]
    a, b = with_scipy.predict_proba(texts)[0], numpy_only.predict_proba(texts)[0]
    assert (a.argmax(axis=1) == b.argmax(axis=1)).mean() > 0.95
