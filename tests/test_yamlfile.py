"""The YAML dmr reads from users (dmr.yaml, registries, tenants files): a key given twice and an
alias bomb are refused with a clear error, everywhere such a file is read; only true and false are
booleans (YAML 1.2), so that `NO` is Norway."""

from __future__ import annotations

import pytest
import yaml

from dmr import yamlfile
from dmr.config import load_yaml_options
from dmr.errors import ConfigError, RegistryFormatError
from dmr.registry import ModelRegistry
from dmr.server.tenants import load_tenants


def bomb(levels: int = 9) -> str:
    """Nine values, then ``levels`` levels of nine aliases to the level below: a few hundred bytes
    that stand for 9 ** (levels + 1) values."""
    lines = ["l0: &l0 [" + ", ".join(["1"] * 9) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_a_repeated_key_is_an_error_naming_both_lines():
    with pytest.raises(yaml.YAMLError, match=r"the key 'provider' is given twice \(first on line 1\)"):
        yamlfile.load("provider: google\nbudget_usd: 5\nprovider: openai\n")
    with pytest.raises(yaml.YAMLError, match="the key 'x' is given twice"):
        yamlfile.load("outer:\n  x: 1\n  x: 2\n")


def test_ordinary_yaml_still_loads_merge_keys_and_a_few_aliases_included():
    text = "base: &b {timeout: 5, retries: 2}\nprod:\n  <<: *b\n  timeout: 9\nsame: *b\nlist: [*b, *b]\n"
    assert yamlfile.load(text) == {"base": {"timeout": 5, "retries": 2}, "prod": {"timeout": 9, "retries": 2},
                                   "same": {"timeout": 5, "retries": 2}, "list": [{"timeout": 5, "retries": 2}] * 2}
    assert yamlfile.load(bomb(levels=3))["l3"][0][0][0] == [1] * 9  # 9 ** 4 values: fine


def test_an_alias_bomb_is_refused_before_anything_walks_it():
    with pytest.raises(yaml.YAMLError, match="its aliases .* expand to more than 200,000 values"):
        yamlfile.load(bomb())


def test_every_user_file_reader_refuses_both(tmp_path):
    repeated = "provider: google\nprovider: openai\n"
    exploding = bomb() + "budget_usd: 5\nbudget_policy:\n  cap_at: *l9\n"  # once 2.5 GB in an error message
    for text, why in ((repeated, "given twice"), (exploding, "expand to more than")):
        path = tmp_path / "dmr.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=why):
            load_yaml_options(path)
        with pytest.raises(RegistryFormatError, match=why):
            ModelRegistry.from_text(text, source="registry.yaml")
        with pytest.raises(ConfigError, match=why):
            load_tenants(path)


# -- booleans: YAML 1.2's true and false only ----------------------------------------------------

def test_only_true_and_false_are_booleans_so_norway_stays_norway():
    words = ["NO", "No", "no", "n", "N", "yes", "Yes", "y", "on", "ON", "off", "Off"]
    assert yamlfile.load("".join(f"k{i}: {word}\n" for i, word in enumerate(words))) == {
        f"k{i}": word for i, word in enumerate(words)}
    assert yamlfile.load("[true, True, TRUE, false, False, FALSE, tRUE]") == [True] * 3 + [False] * 3 + ["tRUE"]
    assert yamlfile.load("{NO: [SE, NO], 'no': x}") == {"NO": ["SE", "NO"], "no": "x"}


def test_every_user_file_reader_reads_norway_as_norway(tmp_path, monkeypatch):
    config = tmp_path / "dmr.yaml"
    config.write_text("residency: NO\n", encoding="utf-8")
    assert load_yaml_options(config)["residency"] == "NO"
    registry = ModelRegistry.from_text("version: '1'\nproviders:\n  nordic: {regions: [NO, no], tiers: {low: m}}\n",
                                       source="registry.yaml")
    assert registry.provider("nordic").regions == ("NO", "NO")
    monkeypatch.setenv("DMR_QA_NORDIC_KEY", "nordic-key")
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text("tenants:\n  nordic: {key_env: DMR_QA_NORDIC_KEY, residency: NO}\n", encoding="utf-8")
    assert load_tenants(tenants).find("nordic-key").config["residency"] == "NO"
