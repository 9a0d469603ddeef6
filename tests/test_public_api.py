"""The public surface is deliberate: one sorted ``__all__``, pinned here, and a light import."""

import json
import subprocess
import sys

import dmr

PINNED = [
    "ABTest",
    "BudgetExceededError",
    "ConfigError",
    "Decision",
    "DmrError",
    "InputError",
    "KeywordPack",
    "ModelRegistry",
    "ModelTier",
    "NotAvailableError",
    "PolicyError",
    "ProviderError",
    "RegistryError",
    "Router",
    "ShadowMode",
    "TaskComplexity",
    "TaskType",
    "Verdict",
    "classify",
    "register_l3_strategy",
    "register_layer",
    "register_model_cost",
    "register_provider",
    "register_task_type",
    "register_tokenizer",
    "route_model",
    "set_tier_levels",
]

HEAVY = ["numpy", "torch", "openai", "anthropic", "fastapi", "onnxruntime", "tokenizers", "sklearn",
         "pydantic", "httpx", "yaml", "google.genai", "redis", "boto3", "confluent_kafka",
         "prometheus_client", "opentelemetry"]


def test_all_is_sorted_and_pinned():
    assert dmr.__all__ == sorted(dmr.__all__)
    assert dmr.__all__ == PINNED
    assert 15 <= len(dmr.__all__) <= 30


def test_every_exported_name_resolves():
    for name in dmr.__all__:
        assert getattr(dmr, name) is not None


def test_classifier_alias_exports_the_same_objects():
    import classifier

    assert classifier.__all__ == dmr.__all__
    for name in dmr.__all__:
        assert getattr(classifier, name) is getattr(dmr, name)


def test_every_classifier_submodule_is_the_dmr_module():
    # Imported through the alias first, in a fresh interpreter: the path finder must not load a
    # second copy of a module that it can reach through a dmr package's __path__.
    code = ("import importlib, json, pkgutil, dmr\n"
            "names = [m.name for m in pkgutil.walk_packages(dmr.__path__, 'dmr.')\n"
            "         if '.integrations.' not in m.name or m.name.endswith('.target')]\n"
            "out = [n for n in names if importlib.import_module('classifier.' + n[4:])\n"
            "       is not importlib.import_module(n)]\n"
            "print(json.dumps([len(names), out]))")
    count, different = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                 check=True).stdout)
    assert count > 30 and different == []


def test_import_dmr_is_light():
    code = ("import sys, json, dmr; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert loaded == []


def _loaded_after_routing(options: str) -> list[str]:
    code = (f"import sys, json, dmr; dmr.Router({options}).classify('Design a distributed cache'); "
            f"print(json.dumps([m for m in {HEAVY[:8]!r} if m in sys.modules]))")
    return json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                     check=True).stdout)


def test_routing_without_layer3_loads_no_ml_or_provider_stack():
    assert _loaded_after_routing("layer3_enabled=False") == []


def test_default_routing_loads_no_torch_onnxruntime_or_provider_sdk():
    # Layer 3 is on by default and runs on numpy and tokenizers (its static encoder) alone.
    loaded = _loaded_after_routing("")
    assert not {"torch", "onnxruntime", "openai", "anthropic", "fastapi", "sklearn"} & set(loaded)
