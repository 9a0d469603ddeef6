"""dmr.yaml problems found by QA: each one is reported with the path of its key, all at once."""

from __future__ import annotations

import sqlite3
import textwrap

import pytest

from dmr.config import load_yaml_options, validate_options
from dmr.errors import ConfigError
from dmr.router import Router


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_yaml_options(path)
    return dict(caught.value.problems)


# -- hooks that do not import ------------------------------------------------------------------

@pytest.mark.parametrize("source", ['raise RuntimeError("boom")\n', "def f(:\n"])
def test_a_hook_module_failing_on_import_is_a_problem_with_its_path(tmp_path, monkeypatch, source):
    name = f"dmr_qa_bad_{'runtime' if 'boom' in source else 'syntax'}"
    write(tmp_path / f"{name}.py", source)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = write(tmp_path / "dmr.yaml", f'post_classify_hooks: ["{name}:x"]\n')
    problems = problems_of(config)
    assert list(problems) == ["post_classify_hooks.0"]
    assert f"cannot import '{name}:x'" in problems["post_classify_hooks.0"]


def test_each_hook_problem_names_its_own_index(tmp_path):
    config = write(tmp_path / "dmr.yaml", 'post_classify_hooks: ["dmr_qa_nomod:x", 5]\n')
    problems = problems_of(config)
    assert "post_classify_hooks.0" in problems
    assert {path.split(".")[1] for path in problems if path != "post_classify_hooks.0"} == {"1"}


def test_a_hook_module_beside_the_yaml_is_found_from_any_folder_and_sys_path_is_left_as_it_was(tmp_path, monkeypatch):
    import sys

    from click.testing import CliRunner

    from dmr.cli.main import cli

    write(tmp_path / "conf" / "dmr_qa_beside_hooks.py", """
        import dataclasses

        def mark(decision, ctx):
            return dataclasses.replace(decision, reasoning="marked by the hook beside dmr.yaml")
        """)
    config = write(tmp_path / "conf" / "dmr.yaml", 'post_classify_hooks: ["dmr_qa_beside_hooks:mark"]\n')
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    path_before = list(sys.path)
    result = CliRunner().invoke(cli, ["classify", "--config", str(config), "--json", "What is 2+2?"])
    assert result.exit_code == 0, result.output
    assert "marked by the hook beside dmr.yaml" in result.stdout
    assert sys.path == path_before
    # A module that is neither importable nor beside the file is still a problem with its path.
    missing = write(tmp_path / "other" / "dmr.yaml", 'post_classify_hooks: ["dmr_qa_nowhere:x"]\n')
    assert "cannot import 'dmr_qa_nowhere:x'" in problems_of(missing)["post_classify_hooks.0"]


# -- relative paths ----------------------------------------------------------------------------

def test_budget_store_and_encoder_are_found_from_the_files_folder(tmp_path, monkeypatch):
    (tmp_path / "conf" / "enc").mkdir(parents=True)
    config = write(tmp_path / "conf" / "dmr.yaml", "budget_store: spend.sqlite3\nlayer3_embedding_model: enc\n")
    monkeypatch.chdir(tmp_path)
    options = load_yaml_options(config)
    assert options["budget_store"] == str(tmp_path / "conf" / "spend.sqlite3")
    assert options["layer3_embedding_model"] == str(tmp_path / "conf" / "enc")


def test_a_budget_store_path_is_used_from_any_folder(tmp_path, monkeypatch):
    config = write(tmp_path / "conf" / "dmr.yaml", "budget_usd: 5\nbudget_store: spend.sqlite3\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    router = Router.from_yaml(config)
    router.budget.fraction  # opens the store
    assert (tmp_path / "conf" / "spend.sqlite3").is_file()
    assert not (tmp_path / "elsewhere" / "spend.sqlite3").exists()
    sqlite3.connect(tmp_path / "conf" / "spend.sqlite3").close()


@pytest.mark.parametrize("key, value", [("budget_store", "redis://localhost:6379/0"),
                                        ("budget_store", ":memory:"),
                                        ("layer3_embedding_model", "default"),
                                        ("layer3_embedding_model", "sentence-transformers/all-MiniLM-L6-v2")])
def test_values_that_are_not_paths_are_kept(tmp_path, key, value):
    config = write(tmp_path / "dmr.yaml", f"{key}: '{value}'\n")
    assert load_yaml_options(config)[key] == value


# -- booleans and infinities are not numbers ---------------------------------------------------

@pytest.mark.parametrize("line, path", [
    ("layer3_threshold: off", "layer3_threshold"),
    ("budget_usd: yes", "budget_usd"),
    ("escalation_threshold: on", "escalation_threshold"),
    ("layer2_timeout: yes", "layer2_timeout"),
    ("latency_budget_ms: true", "latency_budget_ms"),
    ("l1_weights: {primary: yes}", "l1_weights.primary"),
    ("version: true", "version"),
    ("budget_usd: .inf", "budget_usd"),
    ("latency_budget_ms: .inf", "latency_budget_ms"),
])
def test_booleans_and_infinities_are_refused_where_a_number_is_meant(tmp_path, line, path):
    config = write(tmp_path / "dmr.yaml", line + "\n")
    assert list(problems_of(config)) == [path]


def test_numbers_still_load(tmp_path):
    config = write(tmp_path / "dmr.yaml", "budget_usd: 2\nlayer3_threshold: 0.5\nl1_weights: {primary: 2}\nversion: 1\n")
    assert load_yaml_options(config)["budget_usd"] == 2


# -- yes/no/on/off: words in dmr's YAML (1.2), booleans where an option is a switch -----------------

def test_residency_no_is_norway_while_switches_still_take_yes_no_on_off(tmp_path):
    config = write(tmp_path / "dmr.yaml", """\
        residency: NO
        layer3_enabled: no
        cache_enabled: Off
        follow_up_floor: N
        strict: YES
        metrics: on
        pii_policy: {block: y}
        """)
    options = load_yaml_options(config)
    assert options == {"residency": "NO", "layer3_enabled": False, "cache_enabled": False, "follow_up_floor": False,
                       "strict": True, "metrics": True, "pii_policy": {"block": True}}
    router = Router.from_yaml(config)
    assert (router.config.residency, router.config.layer3_enabled, router.layers) == ("NO", False, ("layer1",))
    assert router.metrics is not None


def test_a_decision_log_can_be_switched_off_and_its_backend_take_switches(tmp_path):
    off = write(tmp_path / "off.yaml", "decision_logger: off\n")
    assert load_yaml_options(off)["decision_logger"] is False  # not a log file named "off"
    jsonl = write(tmp_path / "jsonl.yaml", "decision_logger: {type: jsonl, path: log.jsonl, fsync: no}\n")
    assert load_yaml_options(jsonl)["decision_logger"]["fsync"] is False


# -- providers ---------------------------------------------------------------------------------

def test_every_listed_provider_must_be_known():
    with pytest.raises(ConfigError) as caught:
        Router(providers=["google", "dmr_qa_nosuch"])
    assert [path for path, _ in caught.value.problems] == ["providers.1"]


def test_the_preferred_provider_must_be_among_the_allowed_ones():
    with pytest.raises(ConfigError) as caught:
        Router(provider="google", providers=["openai"])
    assert [path for path, _ in caught.value.problems] == ["provider"]
    assert Router(provider="openai", providers=["google", "openai"]).classify("hi").provider == "openai"


# -- every problem at once ---------------------------------------------------------------------

def test_semantic_problems_are_reported_at_once_with_their_paths(tmp_path):
    config = write(tmp_path / "dmr.yaml", """\
        preset: nosuch
        l1_weights: {nosuch: 1}
        budget_policy: {nosuch: 1}
        default_tier: huge
        provider: nosuch
        tokenizer: nosuch
        pii_policy: {min_tier: top}
        escalation_threshold: 5
        """)
    assert set(problems_of(config)) == {"preset", "l1_weights.nosuch", "budget_policy.nosuch", "default_tier",
                                        "provider", "tokenizer", "pii_policy.min_tier", "escalation_threshold"}


def test_validate_options_reports_semantic_problems_too():
    with pytest.raises(ConfigError) as caught:
        validate_options({"preset": "nosuch", "default_tier": "huge"})
    assert [path for path, _ in caught.value.problems] == ["preset", "default_tier"]


def test_paths_starting_with_the_home_directory_are_read_there_not_made_in_the_working_folder(tmp_path, monkeypatch):
    import shutil

    from dmr.layers.embedding import DEFAULT_HEAD

    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    shutil.copy(DEFAULT_HEAD, home / "head.npz")
    shutil.copy(str(DEFAULT_HEAD).replace(".npz", ".json"), home / "head.json")
    write(home / "pack.yaml", "name: home-pack\ntrivial: [howdy]\n")
    write(home / "registry.yaml", "version: '1'\nproviders: {p: {tiers: {low: m, medium: m, high: m}}}\n")
    router = Router(layer3_head="~/head.npz", budget_usd=5, budget_store="~/spend.sqlite3",
                    extra_keyword_packs=["~/pack.yaml"], registry="~/registry.yaml")
    router.classify("Explain recursion")
    router.close()
    assert (home / "spend.sqlite3").is_file() and list(work.iterdir()) == []
    assert router.packs[-1].name == "home-pack" and router.registry.providers() == ["p"]
    # dmr init writes a quoted ~/ path in the home directory, where Router.from_yaml reads it.
    from click.testing import CliRunner

    from dmr.cli.main import cli

    assert CliRunner().invoke(cli, ["init", "--path", "~/dmr.yaml"]).exit_code == 0
    assert (home / "dmr.yaml").is_file() and list(work.iterdir()) == []
    assert Router.from_yaml("~/dmr.yaml").config.preset is None
