"""The model registry: format, queries, mutation, the process-wide default and https loading."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import os
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

import dmr.registry as registry_module
from dmr.errors import RegistryError, RegistryFormatError, UnknownProviderError
from dmr.registry import (
    ModelRegistry,
    clear_user_registry,
    default_registry,
    read_user_registry,
    register_model_cost,
    register_provider,
    registry_changes,
    reset_default_registry,
    save_user_registry,
    update_user_registry,
    user_registry_in_effect,
    user_registry_path,
    write_atomically,
)
from dmr.types import ModelTier, set_tier_levels
from together import run_together

SEED_YAML = """\
version: "2026.05.01"
providers:
  groq:
    api_key_env: GROQ_API_KEY
    tiers:
      low: llama-3.3-8b-instant
      medium: llama-3.3-70b-versatile
      high: llama-3.3-70b-versatile
  bedrock:
    api_key_env: AWS_ACCESS_KEY_ID
    tiers:
      low: anthropic.claude-haiku-4-5-20251001
      high: anthropic.claude-opus-4-7
models:
  llama-3.3-8b-instant:
    cost: { input_per_1m: 0.05, output_per_1m: 0.08 }
    capabilities:
      context_window: 128000
      supports_function_calling: true
  llama-3.3-70b-versatile:
    cost: { input_per_1m: 0.59, output_per_1m: 0.79 }
    capabilities:
      context_window: 128000
      supports_function_calling: true
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("DMR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("DMR_REGISTRY", raising=False)
    monkeypatch.delenv("DMR_NO_DEFAULT_REGISTRY", raising=False)
    reset_default_registry()
    yield
    reset_default_registry()


@pytest.fixture
def seed() -> ModelRegistry:
    return ModelRegistry.from_text(SEED_YAML, source="seed")


# -- the bundled snapshot ------------------------------------------------------------------------


def test_bundled_snapshot_validates_and_has_what_the_seed_promises():
    reg = ModelRegistry.bundled()
    assert reg.version == "2026.11.01"
    assert "override" in reg.note
    assert set(reg.providers()) >= {"google", "openai", "anthropic", "mistral"}
    assert reg.resolve("google", ModelTier.LOW) == ("gemini-2.5-flash", ModelTier.LOW)
    assert reg.resolve("google", "high")[0] == "gemini-2.5-pro"
    assert reg.resolve("anthropic", "low")[0] == "claude-haiku-4-5-20251001"
    assert reg.resolve("anthropic", "high")[0] == "claude-opus-4-7"
    for name in reg.providers():
        spec = reg.provider(name)
        assert spec.api_key_env == f"{name.upper()}_API_KEY"
        assert [str(t) for t in ModelTier.levels()] == list(spec.tiers)
        for model in spec.tiers.values():
            info = reg.model(model)
            assert info is not None and info.priced and info.context_window, model
    regions = {m: reg.regions_of(m) for m in reg.models()}
    assert any(r == ("EU",) for r in regions.values()), "an EU-only model lets residency be tested"
    assert any(r == ("US",) for r in regions.values()), "a US-only model lets residency be tested"


def test_seed_example_loads_and_unpriced_models_cost_none(seed):
    assert seed.providers() == ["groq", "bedrock"]
    assert seed.estimate_cost("llama-3.3-8b-instant", 1_000_000, 1_000_000) == pytest.approx(0.13)
    # bedrock's models have no price entry: allowed, routed to, but not priced
    assert seed.resolve("bedrock", "low") == ("anthropic.claude-haiku-4-5-20251001", ModelTier.LOW)
    assert seed.estimate_cost("anthropic.claude-opus-4-7", 10, 10) is None
    assert seed.estimate_cost("no-such-model", 10, 10) is None


# -- validation ----------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once_with_its_path():
    bad = yaml.safe_load(SEED_YAML)
    bad["providers"]["groq"]["tiers"]["ultra"] = "x"
    bad["providers"]["groq"]["api_key"] = "oops"
    bad["models"]["llama-3.3-8b-instant"]["cost"]["input_per_1m"] = -1
    bad["models"]["llama-3.3-70b-versatile"]["provider"] = "nowhere"
    bad["models"]["llama-3.3-70b-versatile"]["capabilities"]["context_window"] = "big"
    bad["extra_top"] = 1
    with pytest.raises(RegistryFormatError) as info:
        ModelRegistry.from_dict(bad, source="my.yaml")
    paths = dict(info.value.problems)
    assert set(paths) == {
        "providers.groq.tiers.ultra",
        "providers.groq.api_key",
        "models.llama-3.3-8b-instant.cost.input_per_1m",
        "models.llama-3.3-70b-versatile.provider",
        "models.llama-3.3-70b-versatile.capabilities.context_window",
        "extra_top",
    }
    assert "unknown tier 'ultra'" in paths["providers.groq.tiers.ultra"]
    message = str(info.value)
    assert message.startswith("my.yaml: 6 problems")
    assert "providers.groq.tiers.ultra: unknown tier" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, RegistryError)


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"providers": {}}, "version"),
        ({"version": "1", "providers": {"p": {"tiers": {"low": ""}}}}, "providers.p.tiers.low"),
        ({"version": "1", "providers": {"p": {"regions": ["E U"]}}}, "providers.p.regions.0"),
        ({"version": "1", "providers": {"p": {"api_key_env": "NOT VALID"}}}, "providers.p.api_key_env"),
        (
            {"version": "1", "models": {"m": {"cost": {"input_per_1m": True, "output_per_1m": 1}}}},
            "models.m.cost.input_per_1m",
        ),
        ({"version": "1", "models": {"m": {"capabilities": {"tags": ["a"]}}}}, "models.m.capabilities.tags"),
        (["not", "a", "mapping"], "<top level>"),
    ],
)
def test_single_problems_are_located(document, path):
    with pytest.raises(RegistryFormatError) as info:
        ModelRegistry.from_dict(document)
    assert [p for p, _ in info.value.problems] == [path]


def test_extra_capabilities_and_numeric_versions_are_accepted():
    reg = ModelRegistry.from_dict(
        {
            "version": 2026.05,
            "models": {
                "m": {
                    "capabilities": {
                        "context_window": 8000,
                        "max_output_tokens": 4096,
                        "supports_audio": True,
                    }
                }
            },
        }
    )
    assert reg.version == "2026.05"
    assert reg.model("m").capabilities["supports_audio"] is True
    assert reg.model("m").context_window == 8000 and not reg.model("m").priced


def test_a_capability_switch_written_yes_or_no_in_yaml_is_a_boolean(tmp_path):
    # Registry YAML reads only true/false as booleans (so regions: [NO] is Norway); a supports_*
    # capability written no/off must still say the model lacks it, or a call needing it would go there.
    path = tmp_path / "registry.yaml"
    path.write_text("version: '1'\nproviders: {p: {tiers: {low: m}}}\nmodels:\n  m:\n    regions: [NO]\n"
                    "    capabilities: {supports_reasoning: no, supports_audio: On, supports_vision: off, "
                    "note: yes}\n", encoding="utf-8")
    model = ModelRegistry.from_yaml(path).model("m")
    assert model.capabilities["supports_reasoning"] is False and model.capabilities["supports_audio"] is True
    assert model.capabilities["supports_vision"] is False
    assert model.capabilities["note"] == "yes" and model.regions == ("NO",)


def test_yaml_syntax_errors_and_missing_files(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: [unclosed\n", encoding="utf-8")
    with pytest.raises(RegistryFormatError, match="broken.yaml: not valid YAML"):
        ModelRegistry.from_yaml(broken)
    with pytest.raises(RegistryError, match="no such registry file"):
        ModelRegistry.load(tmp_path / "missing.yaml")


def test_tier_keys_naming_the_same_tier_are_refused():
    document = 'version: "1"\nproviders:\n  p:\n    tiers: {HIGH: a, " high": b, high: c, low: d}\n'
    with pytest.raises(RegistryFormatError, match=r"providers\.p\.tiers: tier keys 'HIGH', ' high', 'high'"):
        ModelRegistry.from_text(document)
    with pytest.raises(RegistryFormatError, match=r"providers\.p\.tiers: tier keys 'LOW', 'low'"):
        ModelRegistry.empty().register_provider("p", {"LOW": "a", "low": "b"})


def test_tiers_follow_the_tier_levels_in_force():
    try:
        set_tier_levels(["nano", "low", "medium", "high", "frontier"])
        reg = ModelRegistry.from_dict(
            {"version": "1", "providers": {"p": {"tiers": {"frontier": "big", "nano": "tiny"}}}}
        )
        assert list(reg.provider("p").tiers) == ["nano", "frontier"]  # cheapest first
        assert reg.resolve("p", "medium") == ("big", ModelTier("frontier"))
    finally:
        set_tier_levels(["low", "medium", "high"])
    with pytest.raises(RegistryFormatError, match="unknown tier 'nano'"):
        ModelRegistry.from_dict({"version": "1", "providers": {"p": {"tiers": {"nano": "tiny"}}}})


# -- queries -------------------------------------------------------------------------------------


def test_resolve_prefers_the_nearest_higher_tier_then_the_nearest_lower(seed):
    assert seed.resolve("bedrock", ModelTier.MEDIUM) == ("anthropic.claude-opus-4-7", ModelTier.HIGH)
    only_low = ModelRegistry.from_dict({"version": "1", "providers": {"p": {"tiers": {"low": "a"}}}})
    assert only_low.resolve("p", "high") == ("a", ModelTier.LOW)
    two_low = ModelRegistry.from_dict(
        {"version": "1", "providers": {"p": {"tiers": {"low": "a", "medium": "b"}}}}
    )
    assert two_low.resolve("p", "high") == ("b", ModelTier.MEDIUM)


def test_resolve_errors(seed):
    with pytest.raises(UnknownProviderError, match="did you mean 'groq'") as info:
        seed.resolve("grok", "low")
    assert isinstance(info.value, KeyError)
    seed.register_provider("bare", {})
    with pytest.raises(RegistryError, match="no model for any tier"):
        seed.resolve("bare", "low")
    with pytest.raises(RegistryError, match="not a valid ModelTier"):
        seed.resolve("groq", "ultra")


def test_regions_and_models_for():
    reg = ModelRegistry.from_dict(
        {
            "version": "1",
            "providers": {
                "eu": {"regions": ["eu"], "tiers": {"high": "shared", "low": "local"}},
                "us": {"regions": ["US"], "tiers": {"high": "shared", "low": "us-only"}},
            },
            "models": {"us-only": {"regions": ["US"]}, "local": {"provider": "eu"}},
        }
    )
    assert reg.regions_of("local") == ("EU",)  # from its provider, upper-cased
    assert reg.regions_of("shared") == ("EU", "US")  # every provider naming it
    assert reg.regions_of("shared", provider="us") == ("US",)
    assert reg.regions_of("unknown") == ()
    assert reg.models_for("high") == [("eu", "shared"), ("us", "shared")]
    assert reg.models_for("high", region="eu") == [("eu", "shared")]
    assert reg.models_for("low", provider="us") == [("us", "us-only")]
    assert reg.models_for("medium") == []


def test_estimate_cost():
    reg = ModelRegistry.empty()
    reg.register_model_cost("m", input_per_1m=2.0, output_per_1m=8.0)
    assert reg.estimate_cost("m", 1500, 500) == pytest.approx((1500 * 2 + 500 * 8) / 1e6)
    assert reg.estimate_cost("m", 0, 0) == 0
    with pytest.raises(ValueError):
        reg.estimate_cost("m", -1, 0)


# -- mutation, fingerprint, round trips ----------------------------------------------------------


def test_register_provider_merges_tiers_and_keeps_settings(seed):
    before = seed.fingerprint
    spec = seed.register_provider("groq", {ModelTier.LOW: "llama-4-scout"}, regions="us")
    assert spec.tiers == {
        "low": "llama-4-scout",
        "medium": "llama-3.3-70b-versatile",
        "high": "llama-3.3-70b-versatile",
    }
    assert spec.api_key_env == "GROQ_API_KEY" and spec.regions == ("US",)
    assert seed.fingerprint != before
    with pytest.raises(RegistryFormatError) as info:
        seed.register_provider("groq", {"ultra": "x"}, base_url="ftp://nope")
    assert {p for p, _ in info.value.problems} == {"providers.groq.tiers.ultra", "providers.groq.base_url"}
    assert seed.provider("groq") == spec  # nothing applied from the failed call


def test_register_model_cost_validates_and_keeps_capabilities(seed):
    seed.register_model_cost("llama-3.3-8b-instant", input_per_1m=0.1, output_per_1m=0.2)
    model = seed.model("llama-3.3-8b-instant")
    assert (model.input_per_1m, model.output_per_1m, model.context_window) == (0.1, 0.2, 128000)
    with pytest.raises(RegistryFormatError, match=r"models\.x\.cost\.output_per_1m"):
        seed.register_model_cost("x", input_per_1m=1, output_per_1m=-3)
    assert seed.model("x") is None


def test_fingerprint_tracks_content_not_identity(seed):
    fp = seed.fingerprint
    assert len(fp) == 16
    assert seed.copy().fingerprint == fp
    assert ModelRegistry.from_text(seed.to_yaml()).fingerprint == fp
    seed.register_model_cost("llama-3.3-8b-instant", input_per_1m=0.05, output_per_1m=0.08)  # same price
    assert seed.fingerprint == fp
    seed.register_model_cost("llama-3.3-8b-instant", input_per_1m=0.06, output_per_1m=0.08)
    changed = seed.fingerprint
    assert changed != fp
    seed.merge(
        ModelRegistry.from_dict({"version": "2026.05.01", "providers": {"new": {"tiers": {"low": "n"}}}})
    )
    assert seed.fingerprint not in (fp, changed)


def test_round_trip_through_yaml_and_dict():
    reg = ModelRegistry.bundled()
    reg.register_provider("groq", {"low": "llama"}, api_key_env="GROQ_API_KEY")
    again = ModelRegistry.from_text(reg.to_yaml())
    assert again.to_dict() == reg.to_dict()
    assert ModelRegistry.from_dict(reg.to_dict()).to_dict() == reg.to_dict()
    assert ModelRegistry.from_text(ModelRegistry.empty().to_yaml()).providers() == []


def test_merge_lets_other_win_and_keeps_the_rest(seed):
    other = ModelRegistry.from_dict(
        {
            "version": "2099.01.01",
            "providers": {"groq": {"tiers": {"low": "llama-new"}}, "extra": {"tiers": {"high": "e"}}},
            "models": {
                "llama-3.3-70b-versatile": {
                    "cost": {"input_per_1m": 1, "output_per_1m": 2},
                    "capabilities": {"supports_vision": True},
                }
            },
        }
    )
    copy = seed.copy()
    assert seed.merge(other) is seed
    assert seed.version == "2099.01.01"
    assert seed.provider("groq").tiers["low"] == "llama-new"
    assert seed.provider("groq").tiers["high"] == "llama-3.3-70b-versatile"
    assert seed.provider("groq").api_key_env == "GROQ_API_KEY"
    assert "bedrock" in seed.providers() and "extra" in seed.providers()
    model = seed.model("llama-3.3-70b-versatile")
    assert (model.input_per_1m, model.context_window, model.capabilities["supports_vision"]) == (
        1,
        128000,
        True,
    )
    changes = registry_changes(copy, seed)
    assert changes["providers"] == {"added": ["extra"], "removed": [], "changed": ["groq"]}
    assert changes["models"]["changed"] == ["llama-3.3-70b-versatile"]
    assert copy.replace(other).to_dict() == other.to_dict()


def test_concurrent_registration_loses_nothing():
    reg = default_registry()
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        start.wait()
        for i in range(100):
            register_provider(f"p{worker}", {"low": f"m{worker}-{i}"}, regions=["EU"])
            register_provider("shared", {ModelTier.levels()[i % 3]: f"s{worker}"})
            register_model_cost(f"m{worker}-{i}", input_per_1m=i, output_per_1m=worker)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert default_registry() is reg
    for w in range(8):
        assert reg.provider(f"p{w}").tiers == {"low": f"m{w}-99"}
        assert all(reg.model(f"m{w}-{i}").input_per_1m == i for i in range(100))
    assert set(reg.provider("shared").tiers) == {"low", "medium", "high"}
    assert reg.fingerprint == ModelRegistry.from_dict(reg.to_dict()).fingerprint


def test_default_registry_is_built_once_across_threads():
    reset_default_registry()
    start = threading.Barrier(6)
    seen = []

    def grab() -> None:
        start.wait()
        seen.append(default_registry())

    threads = [threading.Thread(target=grab) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 6 and all(r is seen[0] for r in seen)


# -- the default registry and its sources --------------------------------------------------------


def _write(path: Path, text: str = SEED_YAML) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_default_is_the_bundled_snapshot():
    reg = default_registry()
    assert reg.source == "bundled"
    assert reg.to_dict() == ModelRegistry.bundled().to_dict()
    assert user_registry_path() == Path(os.environ["DMR_CONFIG_DIR"]) / "registry.yaml"


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_no_default_registry_starts_empty(monkeypatch, value):
    monkeypatch.setenv("DMR_NO_DEFAULT_REGISTRY", value)
    assert default_registry().providers() == []


def test_no_default_registry_falsy_values_keep_the_snapshot(monkeypatch):
    monkeypatch.setenv("DMR_NO_DEFAULT_REGISTRY", "0")
    assert "google" in default_registry().providers()


def test_env_registry_wins_over_everything(monkeypatch, tmp_path):
    monkeypatch.setenv("DMR_REGISTRY", str(_write(tmp_path / "mine.yaml")))
    monkeypatch.setenv("DMR_NO_DEFAULT_REGISTRY", "1")
    save_user_registry(ModelRegistry.bundled(), replace=False)
    reg = default_registry()
    assert reg.providers() == ["groq", "bedrock"]
    assert reg.source == str(tmp_path / "mine.yaml")
    assert not user_registry_in_effect()


def test_env_registry_must_be_valid(monkeypatch, tmp_path):
    monkeypatch.setenv(
        "DMR_REGISTRY",
        str(_write(tmp_path / "bad.yaml", "version: '1'\nproviders: {p: {tiers: {ultra: x}}}\n")),
    )
    with pytest.raises(RegistryFormatError, match=r"(?s)bad.yaml: 1 problem.*providers\.p\.tiers\.ultra"):
        default_registry()


def test_saved_registry_merges_onto_the_base():
    save_user_registry(ModelRegistry.from_text(SEED_YAML), replace=False)
    reg = default_registry()
    assert set(reg.providers()) == {"google", "openai", "anthropic", "mistral", "groq", "bedrock"}
    assert reg.version == "2026.05.01"
    assert reg.source.startswith("bundled + ") and reg.source.endswith("(merge)")
    assert user_registry_in_effect()


def test_saved_registry_with_replace_replaces_the_base():
    path = save_user_registry(ModelRegistry.from_text(SEED_YAML), replace=True)
    assert path.read_text(encoding="utf-8").startswith("# dmr user registry, mode: replace\n")
    assert default_registry().providers() == ["groq", "bedrock"]
    left = {p.name for p in path.parent.iterdir()}
    assert left <= {"registry.yaml", "registry.yaml.lock"}  # no temporary file left
    loaded, replace = read_user_registry()
    assert replace and loaded.providers() == ["groq", "bedrock"]


def test_saved_registry_applies_on_an_empty_base(monkeypatch):
    monkeypatch.setenv("DMR_NO_DEFAULT_REGISTRY", "1")
    save_user_registry(ModelRegistry.from_text(SEED_YAML), replace=False)
    assert default_registry().providers() == ["groq", "bedrock"]


def test_a_hand_edited_saved_registry_without_header_merges():
    user_registry_path().parent.mkdir(parents=True)
    _write(user_registry_path())
    assert read_user_registry()[1] is False
    assert "google" in default_registry().providers() and "groq" in default_registry().providers()


def test_a_broken_saved_registry_is_reported_with_its_path():
    user_registry_path().parent.mkdir(parents=True)
    _write(user_registry_path(), "version: '1'\nmodels: {m: {cost: {input_per_1m: x}}}\n")
    with pytest.raises(RegistryFormatError, match=r"registry.yaml: 2 problems"):
        default_registry()


def test_a_saved_registry_that_is_not_yaml_says_how_to_recover():
    save_user_registry(ModelRegistry.from_text(SEED_YAML), replace=False)
    with user_registry_path().open("a", encoding="utf-8") as handle:
        handle.write("garbage: [\n")
    with pytest.raises(RegistryFormatError, match=r"(?s)not valid YAML.*`dmr models reset` removes it"):
        default_registry()
    with pytest.raises(RegistryFormatError, match=r"load --replace FILE"):
        update_user_registry(ModelRegistry.from_text(SEED_YAML), replace=False)
    update_user_registry(ModelRegistry.from_text(SEED_YAML), replace=True)
    assert default_registry().providers() == ["groq", "bedrock"]


def test_saving_writes_through_a_symlinked_registry(tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = _write(dotfiles / "registry.yaml", "version: '0'\n")
    user_registry_path().parent.mkdir(parents=True)
    user_registry_path().symlink_to(target)
    save_user_registry(ModelRegistry.from_text(SEED_YAML), replace=True)
    assert user_registry_path().is_symlink()
    assert "groq" in target.read_text(encoding="utf-8")
    assert sorted(p.name for p in dotfiles.iterdir()) == ["registry.yaml"]  # no temporary file left


def test_write_atomically_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    target = _write(tmp_path / "snapshot.yaml", "old\n")
    target.chmod(0o640)

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(registry_module.os, "fsync", fail)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, "new\n")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["snapshot.yaml"]
    monkeypatch.undo()
    write_atomically(target, "new\n")
    assert target.read_text(encoding="utf-8") == "new\n"
    assert target.stat().st_mode & 0o777 == 0o640


_PREPARE = """\
from dmr.registry import ModelRegistry, update_user_registry
incoming = ModelRegistry.from_dict({"version": "1", "providers": {name: {"tiers": {"low": "m"}}}})
"""


def test_concurrent_updates_of_the_saved_registry_keep_every_provider(tmp_path):
    expected = []
    for round_ in range(5):
        names = [f"p{round_}w{worker}" for worker in range(3)]
        expected += names
        save = "update_user_registry(incoming, replace=False)\n"
        assert run_together(tmp_path / "go", dict.fromkeys(names, ()), save, _PREPARE) == [0, 0, 0]
    saved, replace = read_user_registry()
    assert sorted(saved.providers()) == sorted(expected)
    assert replace is False


def test_clear_user_registry_restores_the_snapshot():
    save_user_registry(ModelRegistry.from_text(SEED_YAML), replace=True)
    assert "google" not in default_registry().providers()
    assert clear_user_registry() is True
    assert "google" in default_registry().providers()
    assert clear_user_registry() is False


def test_module_functions_change_the_default_until_reset():
    register_provider("groq", {ModelTier.LOW: "llama-3.3-8b-instant"}, api_key_env="GROQ_API_KEY")
    register_model_cost("llama-3.3-8b-instant", input_per_1m=0.05, output_per_1m=0.08)
    assert default_registry().resolve("groq", "medium") == ("llama-3.3-8b-instant", ModelTier.LOW)
    assert default_registry().estimate_cost("llama-3.3-8b-instant", 10**6, 0) == pytest.approx(0.05)
    reset_default_registry()
    assert "groq" not in default_registry().providers()


def test_importing_the_registry_does_not_import_httpx():
    src = Path(registry_module.__file__).parents[1]
    code = (
        "import sys, dmr.registry, dmr.tokens;"
        "print(sorted(m for m in ('httpx', 'platformdirs') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"


# -- loading from URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1/r.yaml", "file:///etc/passwd", "ftp://example.com/r.yaml"]
)
def test_load_refuses_non_https_urls(url):
    with pytest.raises(RegistryError, match="only https"):
        ModelRegistry.load(url)


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 that is its own CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dmr test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


ROUTES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/ok.yaml": (200, {}, SEED_YAML.encode()),
    "/bad.yaml": (200, {}, b"version: '1'\nproviders: {groq: {tiers: {ultra: x}}}\n"),
    "/big.yaml": (200, {}, b"#" * 5000 + b"\n" + SEED_YAML.encode()),
    "/big-unsized.yaml": (200, {"x-no-length": "1"}, b"#" * 5000 + b"\n" + SEED_YAML.encode()),
    "/missing.yaml": (404, {}, b"not found"),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/to-http.yaml":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/ok.yaml")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, headers, body = ROUTES[self.path]
        self.send_response(status)
        if "x-no-length" not in headers:  # HTTP/1.0 without a length: the body runs until close
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (ConnectionError, ssl.SSLError):
            pass  # the client hung up on purpose (size cap)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    cert, key = _certificate(tmp_path_factory.mktemp("tls"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()
    server.server_close()
    thread.join()


def test_load_fetches_an_https_registry(https_server):
    base, ca = https_server
    reg = ModelRegistry.load(f"{base}/ok.yaml", verify=str(ca))
    assert reg.providers() == ["groq", "bedrock"] and reg.source == f"{base}/ok.yaml"
    assert ModelRegistry.load(
        f"{base}/ok.yaml", verify=ssl.create_default_context(cafile=str(ca))
    ).providers()


def test_load_verifies_the_certificate_by_default(https_server):
    base, _ = https_server
    with pytest.raises(RegistryError, match="cannot fetch"):
        ModelRegistry.load(f"{base}/ok.yaml")


@pytest.mark.parametrize("path", ["/big.yaml", "/big-unsized.yaml"])
def test_load_stops_past_max_bytes(https_server, path):
    base, ca = https_server
    with pytest.raises(RegistryError, match="larger than max_bytes=4000"):
        ModelRegistry.load(f"{base}{path}", verify=str(ca), max_bytes=4000)
    assert ModelRegistry.load(f"{base}{path}", verify=str(ca), max_bytes=10_000).providers()


def test_load_validates_what_it_fetches(https_server):
    base, ca = https_server
    with pytest.raises(RegistryFormatError, match=r"(?s)bad.yaml: 1 problem.*providers\.groq\.tiers\.ultra"):
        ModelRegistry.load(f"{base}/bad.yaml", verify=str(ca))


def test_load_reports_http_errors_and_refuses_downgrades(https_server):
    base, ca = https_server
    with pytest.raises(RegistryError, match="HTTP 404"):
        ModelRegistry.load(f"{base}/missing.yaml", verify=str(ca))
    with pytest.raises(RegistryError, match="https only"):
        ModelRegistry.load(f"{base}/to-http.yaml", verify=str(ca))


def test_env_registry_may_be_an_https_url(https_server, monkeypatch):
    base, ca = https_server
    monkeypatch.setenv("DMR_REGISTRY", f"{base}/ok.yaml")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # the default client trusts the environment's CA file
    assert default_registry().providers() == ["groq", "bedrock"]


@pytest.mark.parametrize("url", ["https://[::1", "https://[nothex]/r.yaml", "https://", "https:///r.yaml", "https://:443/r"])
def test_load_reports_a_malformed_url(url, monkeypatch):
    with pytest.raises(RegistryError, match="is not a valid URL"):
        ModelRegistry.load(url)
    monkeypatch.setenv("DMR_REGISTRY", url)
    with pytest.raises(RegistryError, match="is not a valid URL"):
        default_registry()


def test_a_provider_key_is_read_from_its_variable_when_asked(monkeypatch):
    from dmr.registry_schema import ProviderSpec, key_from_env

    spec = ProviderSpec("p", api_key_env="DMR_TEST_PROVIDER_KEY")
    monkeypatch.delenv("DMR_TEST_PROVIDER_KEY", raising=False)
    assert spec.api_key() is None and key_from_env(None) is None
    monkeypatch.setenv("DMR_TEST_PROVIDER_KEY", "")
    assert spec.api_key() is None
    monkeypatch.setenv("DMR_TEST_PROVIDER_KEY", "sk-1")
    assert spec.api_key() == "sk-1" and ProviderSpec("p").api_key() is None
