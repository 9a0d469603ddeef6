"""One typed configuration: Router options, dmr.yaml, its JSON schema and the environment."""

from __future__ import annotations

import sys
import textwrap

import jsonschema
import pydantic
import pytest
import yaml
from click.testing import CliRunner

import dmr.cli.misc  # noqa: F401  # attaches `init` to `cli`
from dmr.cli.main import cli
from dmr.config import (
    ENV_VARS,
    RouterConfig,
    env,
    load_yaml_options,
    validate_options,
    yaml_schema,
)
from dmr.errors import ConfigError, NotAvailableError
from dmr.router import Router
from dmr.types import ModelTier, TaskType

def write(path, text: str):
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def hooks_module(tmp_path, monkeypatch):
    """A tiny importable module of hooks and a classifier, as dmr.yaml names them."""
    name = "dmr_yaml_hooks"
    write(tmp_path / f"{name}.py", """\
        import dataclasses

        from dmr.types import TaskComplexity, TaskType, Verdict

        def make_hard(task):
            return task + " Design a fault-tolerant distributed architecture."

        def tag(decision, ctx):
            return dataclasses.replace(decision, policies_applied=(*decision.policies_applied, "audited"))

        def remember(exc, ctx):
            ctx.notes.append("on_error saw " + type(exc).__name__)

        def always_math(task, ctx):
            return Verdict(TaskType.MATH, TaskComplexity.SIMPLE, 0.99, 0.1, "yaml-custom", "from yaml")
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


# -- Router options ----------------------------------------------------------------------------

def test_all_problems_are_reported_at_once_with_paths():
    with pytest.raises(ConfigError) as caught:
        Router(bogus=1, escalation_threshold=2, default_tier=3, l1_weights={"escalator": "heavy"},
               pii_policy={"block": True, "when": "always"})
    problems = dict(caught.value.problems)
    assert set(problems) == {"bogus", "escalation_threshold", "default_tier", "l1_weights.escalator", "pii_policy"}
    assert problems["bogus"] == "unknown option"
    assert "less than or equal to 1" in problems["escalation_threshold"]
    assert "unknown keys ['when']" in problems["pii_policy"]
    message = str(caught.value)
    assert message.startswith("invalid Router configuration (5 problems):")
    for path in problems:
        assert f"  {path}: " in message


def test_an_unknown_option_is_named():
    with pytest.raises(ConfigError) as caught:
        Router(escalation_treshold=0.5)
    assert caught.value.problems == [("escalation_treshold", "unknown option")]
    assert not isinstance(caught.value, NotAvailableError)


# Options that once raised "not available yet", each with a valid value.
ONCE_NOT_YET = {
    "layer3_threshold": 0.8,
    "layer2_provider": "openai",
    "layer2_model": "gpt-4o-mini",
    "layer2_prompt_template": "Classify: {task}",
    "l2_retry_policy": {"max_attempts": 2},
    "l2_circuit_breaker": {"failure_threshold": 5},
    "cache_backend": {"type": "memory"},
    "quality_target": 0.9,
}


@pytest.mark.parametrize("option", sorted(ONCE_NOT_YET))
def test_no_documented_option_is_left_unimplemented(option, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # Layer 2 then passes: no network call
    router = Router(**{option: ONCE_NOT_YET[option]})
    assert getattr(router.config, option) is not None
    assert router.classify("Prove that there are infinitely many primes").tier is ModelTier.HIGH


def test_validate_options_returns_a_frozen_config():
    config = validate_options({"provider": "openai", "escalation_threshold": 0.5})
    assert (config.provider, config.escalation_threshold, config.default_tier) == ("openai", 0.5, "medium")
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.provider = "google"  # type: ignore[misc]


# -- dmr init and the schema -------------------------------------------------------------------

def test_dmr_init_writes_a_file_that_loads_and_matches_the_schema(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["init"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "dmr.yaml"
    router = Router.from_yaml(path)
    assert router.config.provider == "google"
    assert router.classify("What is 2+2?").provider == "google"
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), yaml_schema())


def test_the_schema_is_valid_and_strict():
    schema = yaml_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == "dmr.yaml" and schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"version", *RouterConfig.model_fields}
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"version": 1, "escalation_threshold": 0.5, "pre_classify_hooks": ["a:b"]})
    assert not validator.is_valid({"bogus": 1})
    assert not validator.is_valid({"version": 2})
    assert not validator.is_valid({"escalation_threshold": 2})
    assert not validator.is_valid({"pre_classify_hooks": [3]})


def test_quality_target_and_outcome_model_in_the_schema_and_dmr_yaml(tmp_path):
    validator = jsonschema.Draft202012Validator(yaml_schema())
    assert validator.is_valid({"quality_target": 0.95, "outcome_model": "models/outcome.npz"})
    assert not validator.is_valid({"quality_target": 1.5})
    assert not validator.is_valid({"quality_target": 0.9, "outcome_model": 3})
    config = write(tmp_path / "dmr.yaml", "quality_target: 0.95\noutcome_model: models/outcome.npz\n")
    options = load_yaml_options(config)
    assert options["outcome_model"] == str(tmp_path / "models" / "outcome.npz")  # found from the file's folder
    write(config, "outcome_model: outcome.npz\nquality_target: 0\n")
    with pytest.raises(ConfigError) as caught:
        load_yaml_options(config)
    assert [path for path, _ in caught.value.problems] == ["quality_target"]  # reported once, not twice


# -- dmr.yaml ----------------------------------------------------------------------------------

def test_a_dmr_yaml_with_hooks_a_classifier_and_packs(tmp_path, hooks_module):
    (tmp_path / "packs").mkdir()
    write(tmp_path / "packs" / "bio.yaml", """\
        name: bio
        task_types:
          reasoning: [crispr]
        escalators: {genome-wide: 2}
    """)
    config = write(tmp_path / "dmr.yaml", f"""\
        version: 1
        provider: anthropic
        layer3_enabled: false
        pre_classify_hooks: ["{hooks_module}:make_hard"]
        post_classify_hooks: ["{hooks_module}:tag"]
        on_error_hooks: ["{hooks_module}:remember"]
        extra_keyword_packs:
          - packs/bio.yaml
          - name: legal-inline
            task_types:
              reasoning: {{primary: [tort]}}
            escalators: {{multi-jurisdiction: 1.5}}
    """)
    router = Router.from_yaml(config)
    assert [p.name for p in router.packs][-2:] == ["bio", "legal-inline"]
    decision = router.classify("Tell me about the tort")
    assert decision.task_type is TaskType.REASONING  # the inline pack
    assert decision.tier is ModelTier.HIGH  # the pre hook made it hard
    assert decision.policies_applied[-1] == "audited"  # the post hook
    assert decision.provider == "anthropic"
    assert Router.from_yaml(config).classify("CRISPR").task_type is TaskType.REASONING  # the pack file


def test_a_custom_classifier_named_in_dmr_yaml(tmp_path, hooks_module):
    config = write(tmp_path / "dmr.yaml", f'custom_classifier: "{hooks_module}:always_math"\n')
    decision = Router.from_yaml(config).classify("Write a poem")
    assert (decision.task_type, decision.layer) == (TaskType.MATH, "yaml-custom")


def test_relative_paths_are_taken_from_the_files_folder(tmp_path, monkeypatch):
    folder = tmp_path / "conf"
    folder.mkdir()
    write(folder / "models.yaml", """\
        version: "1"
        providers:
          acme: {tiers: {low: acme-s, medium: acme-m, high: acme-l}}
    """)
    config = write(folder / "dmr.yaml", "registry: models.yaml\nprovider: acme\n")
    monkeypatch.chdir(tmp_path)  # not the config's folder
    assert Router.from_yaml(config).classify("What is 2+2?").model_name == "acme-s"


def test_inline_pack_words_like_no_stay_words(tmp_path):
    config = write(tmp_path / "dmr.yaml", """\
        layer1_enabled: true
        extra_keyword_packs:
          - name: words
            negations: [no, nope]
            trivial: [yes, on]
    """)
    router = Router.from_yaml(config)
    assert router.packs[-1].negations == ("no", "nope")
    assert router.packs[-1].trivial == ("yes", "on")
    assert router.config.layer1_enabled is True  # the rest of the file still reads booleans


def test_keyword_arguments_override_the_file(tmp_path):
    config = write(tmp_path / "dmr.yaml", "provider: google\nescalation_threshold: 0.9\n")
    router = Router.from_yaml(config, provider="openai")
    assert (router.config.provider, router.config.escalation_threshold) == ("openai", 0.9)


def test_a_bad_dmr_yaml_reports_every_bad_key_at_once(tmp_path, hooks_module):
    config = write(tmp_path / "dmr.yaml", textwrap.dedent(f"""\
        version: 2
        bogus: 1
        escalation_threshold: 3
        pre_classify_hooks: ["no_such_module_xyz:fn", "{hooks_module}:missing", "no-colon"]
        custom_classifier: "no_such_module_xyz:classify"
        extra_keyword_packs: [missing.yaml, {{name: x, weird: 1}}]
    """))
    with pytest.raises(ConfigError) as caught:
        Router.from_yaml(config)
    paths = [path for path, _ in caught.value.problems]
    assert sorted(paths) == sorted([
        "version", "bogus", "escalation_threshold",
        "pre_classify_hooks.0", "pre_classify_hooks.1", "pre_classify_hooks.2",
        "custom_classifier", "extra_keyword_packs.0", "extra_keyword_packs.1",
    ])
    message = str(caught.value)
    assert message.startswith("invalid dmr.yaml:")
    assert "expected 'module:attribute'" in message and "unsupported dmr.yaml version 2" in message


def test_extra_keyword_packs_must_be_a_list(tmp_path):
    config = write(tmp_path / "dmr.yaml", "extra_keyword_packs: packs/bio.yaml\n")
    with pytest.raises(ConfigError) as caught:
        Router.from_yaml(config)
    assert caught.value.problems == [("extra_keyword_packs", "must be a list of pack file paths or inline packs")]


@pytest.mark.parametrize("content, message", [
    ("a: [unclosed\n", "is not valid YAML"),
    ("- provider: google\n", "top level must be a mapping"),
])
def test_unreadable_dmr_yaml(tmp_path, content, message):
    with pytest.raises(ConfigError, match=message):
        load_yaml_options(write(tmp_path / "dmr.yaml", content))


def test_a_missing_dmr_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        Router.from_yaml(tmp_path / "absent.yaml")


def test_an_empty_dmr_yaml_is_the_defaults(tmp_path):
    assert load_yaml_options(write(tmp_path / "dmr.yaml", "")) == {}
    assert Router.from_yaml(tmp_path / "dmr.yaml").config == validate_options({})


# -- environment ------------------------------------------------------------------------------

def test_env_returns_only_the_dmr_variables_that_are_set(monkeypatch):
    monkeypatch.setenv("DMR_CONFIG", "/etc/dmr.yaml")
    monkeypatch.setenv("DMR_REGISTRY", "")
    monkeypatch.setenv("DMR_UNRELATED", "x")
    found = env()
    assert found["DMR_CONFIG"] == "/etc/dmr.yaml"
    assert "DMR_REGISTRY" not in found and "DMR_UNRELATED" not in found
    assert set(found) <= set(ENV_VARS)
    assert set(ENV_VARS) == {"DMR_REGISTRY", "DMR_NO_DEFAULT_REGISTRY", "DMR_CONFIG_DIR", "DMR_CONFIG", "DMR_SERVER_API_KEY"}
