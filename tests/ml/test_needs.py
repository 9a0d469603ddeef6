"""The Layer 3 head's difficulty output (``needs``): fitted on capability rows, saved with the head,
read by Layer 3 and by quality targets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import dmr.cli.ml  # noqa: F401  # attaches `train` to `cli`
from dmr.cli.main import cli
from dmr.errors import InputError
from dmr.layers.embedding import DEFAULT_HEAD
from dmr.ml.head import HeadFormatError, NgramHead
from dmr.ml.needs import NEEDS_L2_GRID, fit_and_score, load_capability, needs_report, predict_needs, train_needs
from dmr.router import Router
from dmr.tiers import band_difficulty

# A made-up word the bundled head has never seen marks the tasks that need the strongest model.
HARD = ["qorvath the lattice of {}", "find every qorvath cycle in {}", "qorvath proof about {}"]
EASY = ["say hello to {}", "write a friendly note to {}", "thank {} for the flowers"]
NAMES = ["anna", "bo", "chen", "dara", "eli", "femi", "gus", "hana", "ivo", "jun", "kai", "lea"]


def capability_rows() -> list[tuple[str, int]]:
    return [(t.format(n), 3) for t in HARD for n in NAMES] + [(t.format(n), 0) for t in EASY for n in NAMES]


@pytest.fixture
def head():
    return NgramHead.load(DEFAULT_HEAD)  # a private copy: fitting it leaves the shared one alone


@pytest.fixture
def capability_file(tmp_path):
    path = tmp_path / "capability.jsonl"
    path.write_text("".join(json.dumps({"task": t, "needs": n}) + "\n" for t, n in capability_rows()), encoding="utf-8")
    return path


def test_fit_needs_learns_what_the_labels_say_and_leaves_type_and_complexity_alone(head):
    texts = ["qorvath puzzle for zed", "a note for zed", "hi"]
    before = head.predict_proba(texts)
    train_needs(head, capability_rows(), l2=1e-4)
    after = head.predict_proba(texts)
    assert np.allclose(before[0], after[0]) and np.allclose(before[1], after[1])
    needs = predict_needs(head, texts)
    assert needs[0] > 0.6 > 0.3 > needs[1]
    assert all(0.0 <= x <= 1.0 for x in needs)


def test_fitting_again_replaces_the_output_instead_of_adding_one(head):
    k = len(head.type_labels_) + len(head.complexity_labels_)
    train_needs(head, capability_rows(), l2=1e-3)
    train_needs(head, capability_rows(), l2=1e-3)
    assert head.bias_.shape[0] == head.sparse_weights_.shape[1] == head.dense_weights_.shape[1] == k + 1


def test_the_penalty_is_chosen_by_cross_validation(head):
    report = train_needs(head, capability_rows())
    assert set(report["cv_spearman"]) == {f"{lam:g}" for lam in NEEDS_L2_GRID}
    assert {"1e-06", "3e-05", "0.01"} <= set(report["cv_spearman"])
    assert report["cv_spearman"][f"{report['l2']:g}"] == max(report["cv_spearman"].values())


def test_needs_labels_outside_the_scale_are_refused(head):
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        head.fit_needs(["a", "b"], [0.5, 1.5])
    with pytest.raises(ValueError, match="one label per text"):
        head.fit_needs(["a", "b"], [0.5])


def test_a_head_saved_with_needs_loads_with_it(head, tmp_path):
    train_needs(head, capability_rows(), l2=1e-4)
    path = head.save(tmp_path / "h.npz")
    loaded = NgramHead.load(path)
    text = ["qorvath riddle for olu"]
    assert loaded.needs_ and predict_needs(loaded, text) == pytest.approx(predict_needs(head, text), abs=1e-3)


def test_a_head_trained_without_capability_rows_has_no_needs_output(small_rows):
    from dmr.ml.train import Example, train_head

    plain, _ = train_head([Example(r["task"], r["task_type"], r["complexity"]) for r in small_rows], max_iter=20,
                          calibration_folds=0)
    assert plain.needs_ is False
    assert plain.needs_from_logits(plain.logits(["hi"])) is None


def test_metadata_claiming_an_output_the_arrays_lack_is_refused(head, tmp_path):
    path = NgramHead.load(DEFAULT_HEAD).save(tmp_path / "plain.npz")
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["needs"] = not meta["needs"]
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(HeadFormatError, match="shapes"):
        NgramHead.load(path)


def test_report_scores_rank_agreement_separation_and_error():
    perfect = needs_report([0.0, 1 / 3, 2 / 3, 1.0], [0, 1, 2, 3])
    assert perfect == {"rows": 4, "spearman": 1.0, "auc_needs_2": 1.0, "mae": 0.0}
    reversed_ = needs_report([1.0, 2 / 3, 1 / 3, 0.0], [0, 1, 2, 3])
    assert reversed_["spearman"] == -1.0 and reversed_["auc_needs_2"] == 0.0 and reversed_["mae"] == 2.0
    assert needs_report([0.1, 0.2], [1, 1])["auc_needs_2"] is None  # one class: no AUC


@pytest.mark.parametrize("line, why", [('{"task": "x", "needs": 4}', "needs must be"),
                                       ('{"task": "x", "needs": true}', "needs must be"),
                                       ('{"task": "x", "needs": "2"}', "needs must be"),
                                       ('{"task": "  ", "needs": 1}', "non-empty"),
                                       ('{"needs": 1}', "'task' must be a non-empty string"),
                                       ("not json", "not valid JSON")])
def test_bad_capability_lines_name_the_file_and_line(tmp_path, line, why):
    path = tmp_path / "c.jsonl"
    path.write_text('{"task": "fine", "needs": 0}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"c.jsonl:2: .*{why}"):
        load_capability(path)


def test_no_capability_rows_is_an_error(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="no capability rows"):
        load_capability(tmp_path)


def test_fit_and_score_holds_out_the_hash_split(head, capability_file):
    report = fit_and_score(head, capability_file)
    assert report["train_rows"] + report["heldout"]["rows"] == len(capability_rows())
    assert report["heldout"]["auc_needs_2"] == 1.0


def test_layer3_and_quality_targets_read_the_head_s_needs(head, tmp_path):
    train_needs(head, capability_rows(), l2=1e-4)
    path = head.save(tmp_path / "needs.npz")
    task = "qorvath cycles of the word graph"
    expected = float(predict_needs(head, [task])[0])
    # Layer 3 decides: its verdict's difficulty is the needs output, banded in the tier.
    router = Router(layer3_head=str(path), escalation_threshold=1.0, layer3_threshold=0.0)
    decision = router.classify(task)
    assert decision.layer == "layer3"
    assert decision.difficulty == pytest.approx(band_difficulty(decision.tier, expected), abs=1e-3)
    # Layer 1 decides, yet with a quality target Layer 3's head supplies the difficulty...
    targeted = Router(layer3_head=str(path), quality_target=0.95)
    sum_ = targeted.classify("What is 2+2?")
    assert sum_.layer == "layer1"
    want = float(predict_needs(head, ["What is 2+2?"])[0])
    assert sum_.difficulty == pytest.approx(band_difficulty(sum_.tier, want), abs=1e-3)
    # ...unless Layer 1 found nothing to do at all.
    assert targeted.classify("hi").difficulty == 0.0
    assert targeted.classify(task).tier == "high"


def test_dmr_train_with_capability_writes_a_head_with_the_output(capability_file, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"task": f"{t} #{k}", "task_type": ty, "complexity": c}) + "\n"
                            for k in range(6) for t, ty, c in [("hi there", "conversation", "simple"),
                                                               ("prove the lemma", "math", "complex"),
                                                               ("write a poem", "doc_creation", "simple")]))
    out = tmp_path / "h.npz"
    result = CliRunner().invoke(cli, ["train", "--data", str(data), "--capability", str(capability_file),
                                      "-o", str(out), "--max-iter", "30"])
    assert result.exit_code == 0, result.output
    assert "difficulty (needs) output" in result.stdout
    assert NgramHead.load(out).needs_
    assert json.loads(out.with_suffix(".json").read_text())["needs_report"]["train_rows"] > 0


def test_a_unicode_line_separator_inside_a_task_is_part_of_the_task(tmp_path):
    # U+2028 is a line break to str.splitlines but legal, unescaped, inside a JSON string.
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"task": "first part\u2028second part", "needs": 1}, ensure_ascii=False) + "\n"
                    + json.dumps({"task": "next", "needs": 0}) + "\n", encoding="utf-8")
    assert load_capability(path) == [("first part\u2028second part", 1), ("next", 0)]
