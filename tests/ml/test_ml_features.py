"""Hashed n-gram features: deterministic across processes, every script, bounded cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dmr.ml.features import DENSE_NAMES, NgramFeaturizer, dense_features


def test_buckets_do_not_depend_on_the_process_hash_seed():
    code = ("import json; from dmr.ml.features import NgramFeaturizer; "
            "print(json.dumps(NgramFeaturizer(bits=16).buckets('Prove that √2 is irrational, 証明して').tolist()))")
    runs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        runs.append(json.loads(out.stdout))
    assert runs[0] == runs[1]
    assert runs[0] == NgramFeaturizer(bits=16).buckets("Prove that √2 is irrational, 証明して").tolist()


@pytest.mark.parametrize("text", ["hi", "x", "日本語の文章を英語に翻訳してください", "Übersetze: «Grüß Gott»", "🙂🙂"])
def test_every_script_yields_features_in_range(text):
    f = NgramFeaturizer(bits=12)
    ids = f.buckets(text)
    assert len(ids) > 0
    assert ids.min() >= 0 and ids.max() < 2**12


def test_word_and_character_ngrams_are_counted():
    f = NgramFeaturizer(bits=20, char_ngrams=(3, 3), word_ngrams=2)
    # " ab ab " has char 3-grams " ab", "ab ", "b a", " ab", "ab " plus 2 words and 1 bigram.
    assert len(f.buckets("ab ab")) == 5 + 2 + 1
    assert len(set(f.buckets("ab ab").tolist())) == 3 + 1 + 1


def test_case_and_whitespace_are_normalised():
    f = NgramFeaturizer(bits=16)
    assert f.buckets("Hello   World").tolist() == f.buckets("hello world").tolist()


def test_long_text_is_cut_to_head_and_tail():
    f = NgramFeaturizer(bits=16, max_chars=1000)
    long = "a" * 500 + "MIDDLE" + "b" * 5000 + "tail end"
    assert len(f.buckets(long)) == len(f.buckets(long[:750] + " " + long[-249:]))
    assert len(f.buckets("İ" * 5000)) > 0  # lower() lengthens this letter; still in range


def test_transform_rows_are_unit_length_after_fit():
    texts = ["write a function", "translate this sentence", "what is 2+2"]
    f = NgramFeaturizer(bits=14).fit(texts)
    X = f.transform(texts)
    assert X.n_rows == 3
    for i in range(3):
        vals = X.values[X.indptr[i]:X.indptr[i + 1]]
        assert np.isclose(np.sqrt((vals ** 2).sum()), 1.0)
    assert f.idf_.shape == (2**14,)


def test_the_ask_view_keeps_the_request_of_a_long_paste_at_full_weight():
    """With an ask view, the opening and the end of a text get ids of their own, normalised apart
    from the rest: the request under 4,000 characters of pasted material weighs as much there as the
    same request alone, and the single-text and batch paths agree."""
    ask = "Write a polite reply declining the meeting."
    paste = "Quarterly figures: revenue grew, churn fell, the new office opens in May. " * 50
    texts = [ask, paste + "\n\n" + ask, "short one", ""]
    f = NgramFeaturizer(bits=14, ask_chars=60, ask_bits=12).fit(texts)
    assert f.n_features == 2**14 + 2**12 and f.idf_.shape == (f.n_features,)
    X = f.transform_batch(texts)
    views = []
    for i, text in enumerate(texts):
        ids, vals = f.transform_one(text)
        row = slice(X.indptr[i], X.indptr[i + 1])
        assert ids.tolist() == X.indices[row].tolist() and np.allclose(vals, X.values[row])
        ask_part = ids >= 2**14
        if len(ids):
            assert np.isclose((vals[ask_part] ** 2).sum(), 1.0) and np.isclose((vals[~ask_part] ** 2).sum(), 1.0)
        views.append(dict(zip(ids[ask_part].tolist(), vals[ask_part].tolist())))
    # The request's own word bigrams are in the long text's ask view, with weight of the same order.
    alone, pasted = views[0], views[1]
    shared = set(alone) & set(pasted)
    assert len(shared) >= len(alone) // 3
    assert sum(pasted[k] for k in shared) > 0.5 * sum(alone[k] for k in shared)
    # Without an ask view, nothing changes: the ids stay in the main range and the params omit it.
    plain = NgramFeaturizer(bits=14).fit(texts)
    assert "ask_chars" not in plain.params() and plain.n_features == 2**14
    assert NgramFeaturizer.from_params(f.params(), f.idf_).params() == f.params()


def test_dense_features_have_fixed_length_and_are_finite():
    for text in ["a", "x" * 100_000, "```py\nprint(1);\n```;;{{"]:
        d = dense_features(text)
        assert d.shape == (len(DENSE_NAMES),)
        assert np.isfinite(d).all()


def test_a_lone_surrogate_is_featurized_as_a_replacement_character():
    fz = NgramFeaturizer(bits=12, ask_chars=20).fit(["a b c", "hello there"])
    bad, clean = fz.transform(["caf\udce9 au lait"]), fz.transform(["caf\ufffd au lait"])
    ids, vals = fz.transform_one("caf\udce9 au lait")
    assert np.array_equal(bad.indices, clean.indices) and np.allclose(bad.values, clean.values)
    assert np.array_equal(np.sort(ids), np.sort(clean.indices))


# -- pasted numbers ----------------------------------------------------------------------------

def _rows(n: int) -> str:
    return "\n".join(f"{i},{20 + i % 7}.4,{1 + i % 3}.2,{70 + i}.5" for i in range(n))


def test_a_long_run_of_numbers_is_cut_to_its_first_few():
    from dmr.ml.features import DATA_RUN_KEEP, condense_data

    text = "Fit a regression of the last column on the others:\n" + _rows(60) + "\nThen explain the coefficients."
    short = condense_data(text)
    assert short.startswith("Fit a regression of the last column on the others:\n" + _rows(DATA_RUN_KEEP))
    assert short.endswith("…\nThen explain the coefficients.")
    assert len(short) < len(text) // 3
    assert condense_data(short) == short  # reading it twice changes nothing
    assert condense_data("Sum: " + " ".join(str(i) for i in range(17))).endswith(" 11 …")  # 17 values are cut
    # a list of values on one line, separators and numbers of other scripts count too
    one_line = "Sum: " + " ".join(str(i) for i in range(40)) + " please"
    assert condense_data(one_line) == "Sum: " + " ".join(str(i) for i in range(DATA_RUN_KEEP)) + " … please"
    bengali = "যোগ করো: " + " ".join("১২৩" for _ in range(30))
    assert condense_data(bengali).endswith(" ".join("১২৩" for _ in range(DATA_RUN_KEEP)) + " …")
    table = "| " + " | ".join(str(i) for i in range(30)) + " |"
    assert condense_data(table).count("|") < table.count("|")


@pytest.mark.parametrize("text", [
    "What is 15% of 240?",
    "Sum: " + " ".join(str(i) for i in range(16)),  # a short list stays whole
    "Jan 4210, Feb 4480, Mar 4730, Apr 4890, May 5010, Jun 5100, Jul 5230, Aug 5400, Sep 5520, Oct 5700",
    "def f(x):\n    return [x * i for i in range(10)]  # code has words between its numbers\n" * 5,
    "日本語の文章 123 456 789 を英語に翻訳してください",
    "",
])
def test_text_without_a_long_run_of_numbers_is_left_as_it_is(text):
    from dmr.ml.features import condense_data

    assert condense_data(text) == text
