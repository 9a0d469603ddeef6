"""The checks behind ``dmr doctor``: each returns OK, WARN or FAIL with a hint to fix it."""

from __future__ import annotations

import datetime as dt
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["Check", "run_checks"]

_STALE_DAYS = 120


@dataclass(frozen=True)
class Check:
    status: str  # OK, WARN or FAIL
    name: str
    detail: str
    fix: str = ""


def _python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("OK" if ok else "FAIL", "python", sys.version.split()[0],
                 "" if ok else "dmr needs Python 3.10 or newer")


def _packs() -> Check:
    from dmr.packs import bundled_packs

    packs = bundled_packs()
    langs = ", ".join(p.language or p.name for p in packs)
    return Check("OK" if packs else "FAIL", "keyword packs", f"{len(packs)} loaded ({langs})",
                 "" if packs else "reinstall dynamic-model-router: its data files are missing")


def _presets() -> Check:
    from dmr.presets import list_presets, load_preset

    names = list_presets()
    for name in names:
        load_preset(name)
    return Check("OK", "presets", ", ".join(names) or "none")


def _registry() -> Check:
    from dmr.registry import default_registry

    registry = default_registry()
    providers = registry.providers()
    if not providers:
        return Check("WARN", "model registry", "empty: decisions will name a tier but no model",
                     "load one with `dmr models load FILE` or set DMR_REGISTRY")
    detail = f"version {registry.version}, {len(providers)} providers, {len(registry.models())} models"
    try:
        age = (dt.date.today() - dt.date.fromisoformat(registry.version.replace(".", "-"))).days
    except ValueError:
        age = None
    if age is not None and age > _STALE_DAYS:
        return Check("WARN", "model registry", f"{detail}; snapshot is {age} days old",
                     "prices go stale: export, review and load your own (`dmr models export`)")
    return Check("OK", "model registry", detail)


def _config(path: Path | None) -> Check:
    from dmr.errors import DmrError
    from dmr.router import Router

    if path is None:
        env = os.environ.get("DMR_CONFIG")
        path = Path(env) if env else (Path("dmr.yaml") if Path("dmr.yaml").is_file() else None)
    if path is None:
        return Check("OK", "config", "no dmr.yaml (defaults in use)")
    try:
        Router.from_yaml(path)
    except DmrError as exc:
        return Check("FAIL", "config", f"{path}: {exc}", "fix the keys listed above")
    return Check("OK", "config", f"{path} is valid")


def _classify() -> Check:
    from dmr.router import Router

    decision = Router().classify("Write a haiku about routers.")
    return Check("OK", "classify", f"offline decision in {decision.latency_ms:.2f} ms ({decision.tier})")


def _provider_keys() -> list[Check]:
    from dmr.registry import default_registry

    registry = default_registry()
    missing = []
    for name in registry.providers():
        key = registry.provider(name).api_key_env
        if key and not os.environ.get(key):
            missing.append(f"{name} ({key})")
    if not missing:
        return [Check("OK", "provider keys", "every provider's key is set")]
    return [Check("WARN", "provider keys", "not set: " + ", ".join(missing),
                  "only needed to call those providers (dmr itself routes offline)")]


def _optional() -> Check:
    import importlib.util

    absent = [name for name in ("tiktoken",) if importlib.util.find_spec(name) is None]
    if absent:
        return Check("WARN", "optional extras", "not installed: " + ", ".join(absent),
                     "pip install 'dynamic-model-router[tokenizers]' for exact OpenAI token counts")
    return Check("OK", "optional extras", "tiktoken installed")


def run_checks(config_path: Path | None = None) -> list[Check]:
    steps: list[Callable[[], Check | list[Check]]] = [
        _python, _packs, _presets, _registry, lambda: _config(config_path), _classify, _provider_keys, _optional,
    ]
    results: list[Check] = []
    for step in steps:
        try:
            out = step()
        except Exception as exc:  # a check that crashes is itself a failure to report, not to raise
            name = getattr(step, "__name__", "check").strip("_")
            out = Check("FAIL", name, f"{type(exc).__name__}: {exc}")
        results.extend(out if isinstance(out, list) else [out])
    return results
