"""Keyword packs: the builder, from_dict/to_dict, YAML files and the bundled packs."""

from __future__ import annotations

import dataclasses

import pytest

from dmr.errors import ConfigError
from dmr.packs import KeywordPack, bundled_packs, load_pack_file
from dmr.types import TaskType


def biotech_pack() -> KeywordPack:
    return (KeywordPack.builder("biotech")
            .add(TaskType.REASONING, ["protein", "CRISPR", "in-vitro"])
            .escalator("genome-wide", weight=2)
            .build())


# -- builder ---------------------------------------------------------------------------------

def test_seed_builder_example():
    pack = biotech_pack()
    assert pack.name == "biotech"
    assert pack.primary == {TaskType.REASONING: ("protein", "crispr", "in-vitro")}
    assert pack.escalators == {"genome-wide": 2.0}
    assert pack.secondary == {} and pack.deescalators == {} and pack.negations == ()


def test_builder_covers_every_kind_of_term():
    pack = (KeywordPack.builder("legal").language("en")
            .add("reasoning", "tort")
            .add(TaskType.DOC_CREATION, ["brief"], kind="secondary")
            .escalator("multi-jurisdiction", weight=1.5)
            .deescalator("quick look", weight=0.5)
            .constraint(["within 30 days"]).multistep("then").negation(["no need"])
            .negation_after("not needed").trivial("noted")
            .build())
    assert pack.language == "en"
    assert pack.primary == {TaskType.REASONING: ("tort",)}
    assert pack.secondary == {TaskType.DOC_CREATION: ("brief",)}
    assert pack.deescalators == {"quick look": 0.5}
    assert (pack.constraints, pack.multistep, pack.negations, pack.negations_after, pack.trivial) == (
        ("within 30 days",), ("then",), ("no need",), ("not needed",), ("noted",))


def test_terms_are_lower_cased_whitespace_collapsed_and_deduplicated():
    pack = KeywordPack.builder("p").add("math", ["  Sum   Of ", "sum of", "NPV"]).add("math", ["npv"]).build()
    assert pack.primary[TaskType.MATH] == ("sum of", "npv")


def test_packs_are_immutable():
    pack = biotech_pack()
    with pytest.raises(dataclasses.FrozenInstanceError):
        pack.name = "other"  # type: ignore[misc]


def test_a_built_pack_does_not_change_when_the_builder_goes_on():
    builder = KeywordPack.builder("p").add("math", ["npv"])
    first = builder.build()
    builder.add("math", ["irr"])
    assert first.primary[TaskType.MATH] == ("npv",)
    assert builder.build().primary[TaskType.MATH] == ("npv", "irr")


@pytest.mark.parametrize("call, message", [
    (lambda b: b.add("astrology", ["stars"]), "not a valid TaskType"),
    (lambda b: b.add("math", ["x"], kind="tertiary"), "'primary' or 'secondary'"),
    (lambda b: b.add("math", ["ok", ""]), "non-empty strings"),
    (lambda b: b.add("math", ["ok", 3]), "non-empty strings"),
    (lambda b: b.add("math", 5), "expected a list"),
    (lambda b: b.escalator("x", weight=0), r"in \(0, 10\]"),
    (lambda b: b.escalator("x", weight=-1), r"in \(0, 10\]"),
    (lambda b: b.escalator("x", weight=10.5), r"in \(0, 10\]"),
    (lambda b: b.escalator("x", weight="heavy"), "must be a number"),
    (lambda b: b.escalator("x", weight=None), "must be a number"),
    (lambda b: b.escalator("x", weight=True), "must be a number"),
    (lambda b: b.deescalator("x", weight=float("nan")), r"in \(0, 10\]"),
], ids=["unknown-type", "bad-kind", "empty-term", "non-string-term", "not-a-list", "zero-weight",
        "negative-weight", "too-heavy", "string-weight", "none-weight", "bool-weight", "nan-weight"])
def test_builder_rejects_bad_input_with_a_config_error(call, message):
    with pytest.raises(ConfigError, match=message):
        call(KeywordPack.builder("p"))


def test_weight_at_the_upper_bound_is_accepted():
    assert KeywordPack.builder("p").escalator("x", weight=10).build().escalators == {"x": 10.0}


@pytest.mark.parametrize("name", ["", "   ", None])
def test_a_pack_needs_a_name(name):
    with pytest.raises(ConfigError, match="non-empty name"):
        KeywordPack.builder(name)  # type: ignore[arg-type]


# -- from_dict / to_dict -----------------------------------------------------------------------

def test_from_dict_accepts_lists_and_primary_secondary_mappings():
    pack = KeywordPack.from_dict({
        "name": "bio", "language": "en", "note": "free text",
        "task_types": {"reasoning": ["protein"], "analyzing": {"primary": ["assay"], "secondary": ["plate"]}},
        "escalators": {"genome-wide": 2}, "deescalators": {"sanity check": 0.5},
        "constraints": ["within"], "multistep": ["then"], "negations": ["no"], "trivial": ["yo"],
    })
    assert pack.primary == {TaskType.REASONING: ("protein",), TaskType.ANALYZING: ("assay",)}
    assert pack.secondary[TaskType.ANALYZING] == ("plate",)
    assert pack.escalators == {"genome-wide": 2.0} and pack.deescalators == {"sanity check": 0.5}


def test_to_dict_round_trips():
    pack = biotech_pack()
    assert KeywordPack.from_dict(pack.to_dict()) == pack


def test_from_dict_takes_the_name_from_the_source_when_missing():
    assert KeywordPack.from_dict({}, source="packs/oncology.yaml").name == "oncology"


def test_from_dict_lists_every_bad_key_at_once():
    with pytest.raises(ConfigError) as caught:
        KeywordPack.from_dict({
            "name": "bad",
            "bogus": 1,
            "escalatorz": {},
            "task_types": {"astrology": ["stars"], "math": {"tertiary": ["x"]}, "reasoning": 5},
            "escalators": {"ok": 1, "zero": 0, "word": "heavy"},
            "deescalators": ["not", "a", "mapping"],
        }, source="bad.yaml")
    paths = [path for path, _ in caught.value.problems]
    assert paths == [
        "bad.yaml.bogus",
        "bad.yaml.escalatorz",
        "bad.yaml.task_types.astrology",
        "bad.yaml.task_types.math.tertiary",
        "bad.yaml.task_types.reasoning",
        "bad.yaml.escalators.zero",
        "bad.yaml.escalators.word",
        "bad.yaml.deescalators",
    ]
    for path in paths:
        assert path in str(caught.value)


def test_from_dict_needs_a_mapping():
    with pytest.raises(ConfigError, match="must be a mapping"):
        KeywordPack.from_dict(["protein"], source="list.yaml")  # type: ignore[arg-type]


# -- YAML files --------------------------------------------------------------------------------

def test_yaml_words_like_no_and_yes_stay_strings(tmp_path):
    path = tmp_path / "words.yaml"
    path.write_text(
        "name: words\n"
        "negations: [no, not, off]\n"
        "trivial: [yes, on, 'ok', true]\n"
        "task_types:\n"
        "  conversation: [y, n]\n",
        encoding="utf-8",
    )
    pack = load_pack_file(path)
    assert pack.negations == ("no", "not", "off")
    assert pack.trivial == ("yes", "on", "ok", "true")
    assert pack.primary[TaskType.CONVERSATION] == ("y", "n")


def test_load_pack_file_reports_the_file_name_in_problems(tmp_path):
    path = tmp_path / "oncology.yaml"
    path.write_text("name: onc\nescalators: {rare: 11}\nunknown: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_pack_file(path)
    assert [p for p, _ in caught.value.problems] == ["oncology.yaml.unknown", "oncology.yaml.escalators.rare"]


def test_load_pack_file_missing_or_invalid(tmp_path):
    with pytest.raises(ConfigError, match="cannot read keyword pack"):
        load_pack_file(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read keyword pack"):
        load_pack_file(broken)


def test_bundled_packs_include_english_and_are_cached():
    packs = bundled_packs()
    english = next(p for p in packs if p.name == "en")
    assert english.language == "en"
    assert "translate" in english.primary[TaskType.TRANSLATION]
    assert "no" in english.negations and "yes" in english.trivial  # read as words, not booleans
    assert all(english.primary.get(t) for t in TaskType if str(t) in (
        "reasoning", "thinking", "analyzing", "code_creation", "doc_creation", "translation", "math",
        "conversation", "multimodal"))
    assert bundled_packs() is packs


# -- the bundled snapshot ------------------------------------------------------------------------

def test_the_bundled_snapshot_is_current():
    """``dmr/data/keywords/bundled.json`` holds every bundled pack exactly as its YAML reads; after
    editing a pack, run ``python scripts/build_packs.py``."""
    import json
    from importlib import resources

    from dmr.packs import SNAPSHOT, snapshot

    shipped = json.loads((resources.files("dmr") / "data" / "keywords" / SNAPSHOT).read_text(encoding="utf-8"))
    assert shipped == snapshot(), "bundled.json is stale: run python scripts/build_packs.py"


def test_a_pack_is_taken_from_the_snapshot_only_while_its_yaml_is_unchanged():
    import hashlib

    from dmr.packs import read_packs

    text = "name: tiny\nlanguage: xx\nescalators: {prove: 2}\nnegations_after: [not needed]\n"
    saved_pack = {**KeywordPack.from_dict({"name": "tiny", "language": "xx"}).to_dict(), "name": "from-snapshot"}
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    (pack,) = read_packs({"xx": text}, {"packs": [{"language": "xx", "sha256": digest, "pack": saved_pack}]})
    assert pack.name == "from-snapshot"
    for saved in ({"packs": [{"language": "xx", "sha256": "0" * 64, "pack": saved_pack}]},  # YAML edited since
                  {"packs": [{"language": "xx", "sha256": digest, "pack": {"name": "damaged"}}]},
                  {"packs": "nonsense"}, {}):
        (pack,) = read_packs({"xx": text}, saved)
        assert pack.name == "tiny" and pack.escalators == {"prove": 2.0} and pack.negations_after == ("not needed",)
