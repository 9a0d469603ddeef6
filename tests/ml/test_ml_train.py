"""Training from JSONL: the hash split, loading errors, calibration on held-out folds."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from dmr.errors import InputError
from dmr.layers.embedding import DEFAULT_HEAD
from dmr.ml.evaluate import confusion, ece, evaluate_head, macro_f1
from dmr.ml.train import Example, is_heldout, load_examples, train_head, trained_on

ROOT = Path(__file__).resolve().parents[2]


def test_heldout_split_is_the_datasets_test_split():
    spec = importlib.util.spec_from_file_location("check_datasets", ROOT / "scripts" / "check_datasets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for task in ["a", "What is 2+2?", "日本語", "x" * 1000] + [f"task {i}" for i in range(200)]:
        assert is_heldout(task) == module.is_test(task)


@pytest.mark.parametrize("folder", ["datasets", "datasets/capability", "datasets/held_back"])
def test_the_shipped_datasets_are_valid_and_free_of_duplicates(folder, capsys):
    spec = importlib.util.spec_from_file_location("check_datasets", ROOT / "scripts" / "check_datasets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["check_datasets", str(ROOT / folder)]) == 0, capsys.readouterr().out[-2000:]


def test_the_shipped_head_was_trained_on_the_datasets_as_they_are():
    # A file added to datasets/ (or a row edited across the split) without rebuilding the head
    # would leave the shipped arrays, and every figure measured with them, behind the data.
    examples = load_examples(ROOT / "datasets")
    typed = load_examples(ROOT / "datasets" / "capability", types_only=True)
    train = sum(not is_heldout(e.task) for e in examples)
    meta = json.loads(DEFAULT_HEAD.with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["trained_on"] == trained_on(train, len(examples) - train, sum(not is_heldout(e.task) for e in typed))


def test_load_examples_reads_files_and_folders(tmp_path, small_rows):
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in small_rows[:5]) + "\n\n")
    (tmp_path / "b.jsonl").write_text(json.dumps(small_rows[5]) + "\n")
    assert len(load_examples(tmp_path)) == 6
    assert load_examples(tmp_path / "b.jsonl")[0] == Example(**{k: small_rows[5][k] for k in
                                                               ("task", "task_type", "complexity", "language")})


@pytest.mark.parametrize("line", ['{"task": "x"}', "not json",
                                  '{"task": "", "task_type": "math", "complexity": "simple"}',
                                  '{"task": "x", "task_type": "math", "complexity": "huge"}', "[1, 2]"])
def test_bad_lines_name_the_file_and_line(tmp_path, line):
    path = tmp_path / "d.jsonl"
    path.write_text('{"task": "ok", "task_type": "math", "complexity": "simple"}\n' + line + "\n")
    with pytest.raises(InputError, match="d.jsonl:2"):
        load_examples(path)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_examples(tmp_path / "missing.jsonl")


def test_train_head_calibrates_on_held_out_folds(small_rows):
    examples = [Example(r["task"], r["task_type"], r["complexity"], "en") for r in small_rows]
    head, oof = train_head(examples, max_iter=40, calibration_folds=3, calibration_rounds=1,
                           featurizer_params={"bits": 14})
    logits, rows = oof
    assert len(logits) == len(rows) > 0
    assert all(t > 0 for t in head.temperatures_)
    report = evaluate_head(head, examples)
    assert report["type_accuracy"] > 0.8
    assert 0 <= report["ece"] <= 1


def test_rows_without_a_complexity_teach_the_task_type_only(small_rows, tmp_path):
    rated = [Example(r["task"], r["task_type"], r["complexity"], "en") for r in small_rows]
    # "zorblat" appears only in rows labelled with a task type and no complexity.
    extra = [Example(f"zorblat request number {i}", "translation", None) for i in range(15)]
    head, _ = train_head(rated + extra, max_iter=60, calibration_folds=3, featurizer_params={"bits": 14})
    p_type, _ = head.predict_proba(["zorblat request"])
    assert head.type_labels_[int(p_type[0].argmax())] == "translation"
    ids, _ = head.featurizer.transform_one("zorblat")
    elsewhere = set(head.featurizer.transform([e.task for e in rated]).indices.tolist())
    own = [i for i in ids.tolist() if i not in elsewhere]
    assert own  # n-grams seen only in the type-only rows
    nt = len(head.type_labels_)
    weights = head.sparse_weights_[own]
    assert np.abs(weights[:, :nt]).max() > 0  # they moved the type output
    assert np.all(weights[:, nt:] == 0)  # and nothing else: no complexity gradient came from them

    # Through train_and_save: the extra rows train (less their held-out split) but are not scored.
    from dmr.ml.train import train_and_save

    data, types = tmp_path / "data.jsonl", tmp_path / "types.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in small_rows), encoding="utf-8")
    typed = [{"task": f"zorblat ticket {i}", "task_type": "translation", "needs": 1} for i in range(40)]
    types.write_text("".join(json.dumps(r) + "\n" for r in typed), encoding="utf-8")
    report = train_and_save(data, tmp_path / "head", max_iter=30, encoder="none", type_data=types)
    assert report["type_rows"] == sum(not is_heldout(r["task"]) for r in typed) > 0
    assert report["heldout_rows"] == sum(is_heldout(r["task"]) for r in small_rows) == report["heldout"]["n"]


def test_training_needs_rows():
    with pytest.raises(InputError):
        train_head([Example("x", "math", "simple")])


def test_metrics():
    assert macro_f1(["a", "a", "b"], ["a", "a", "b"]) == 1.0
    assert macro_f1(["a", "b"], ["b", "a"]) == 0.0
    assert confusion(["a", "b", "b"], ["a", "a", "b"], ["a", "b"]) == [[1, 0], [1, 1]]
    # Perfectly calibrated: 80 % confident and 80 % right.
    assert ece([0.8] * 10, [True] * 8 + [False] * 2) == pytest.approx(0.0)
    assert ece([0.9] * 10, [False] * 10) == pytest.approx(0.9)
    assert ece([], []) == 0.0
    assert np.isfinite(ece([0.0, 1.0], [True, False]))


def test_the_packs_a_head_learns_from_can_be_chosen(small_rows, tmp_path):
    """``l1_languages`` picks the bundled Layer 1 packs whose signals the head learns from (the
    shipped head learns from the seven first): Russian rows give the head Layer 1 signals only when
    the Russian pack is among them."""
    from dmr.ml.train import train_and_save

    russian = [{"task": f"Докажи строго теорему номер {i} о распределённых системах", "task_type": "math",
                "complexity": "research"} for i in range(30)]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in small_rows + russian), encoding="utf-8")
    heads = {}
    for name, languages in (("en", ["en"]), ("en_ru", ["en", "ru"])):
        train_and_save(data, tmp_path / name, max_iter=30, encoder="none", l1_languages=languages)
        with np.load(tmp_path / f"{name}.npz", allow_pickle=False) as arrays:
            heads[name] = {key: arrays[key] for key in arrays.files}
    assert heads["en"].keys() == heads["en_ru"].keys()
    assert any(not np.array_equal(heads["en"][k], heads["en_ru"][k]) for k in heads["en"])
    with pytest.raises(InputError, match="no bundled Layer 1 pack for xx"):
        train_and_save(data, tmp_path / "bad", max_iter=30, encoder="none", l1_languages=["en", "xx"])
