"""The checks behind ``dmr doctor``: each returns OK, WARN or FAIL with a hint to fix it."""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["Check", "run_checks"]

_STALE_DAYS = 120


@dataclass(frozen=True)
class Check:
    status: str  # OK, WARN or FAIL
    name: str
    detail: str
    fix: str = ""


def _config_path(path: Path | None) -> Path | None:
    """The dmr.yaml in force: the one given, else $DMR_CONFIG, else ./dmr.yaml when present."""
    if path is not None:
        return path
    env = os.environ.get("DMR_CONFIG")
    return Path(env) if env else (Path("dmr.yaml") if Path("dmr.yaml").is_file() else None)


def _options(path: Path | None) -> dict[str, Any] | None:
    """The options of the dmr.yaml in force ({} without one), or None when it does not load (the
    config check reports why)."""
    from dmr.config import load_yaml_options
    from dmr.errors import DmrError

    path = _config_path(path)
    try:
        return load_yaml_options(path) if path is not None else {}
    except DmrError:
        return None


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

    path = _config_path(path)
    if path is None:
        return Check("OK", "config", "no dmr.yaml (defaults in use)")
    try:
        Router.from_yaml(path)
    except DmrError as exc:
        message = str(exc)
        # Keys to fix when the file was read; else what is wrong with the file itself says what to do.
        fix = "fix the keys listed above" if getattr(exc, "problems", None) else ""
        return Check("FAIL", "config", message if str(path) in message else f"{path}: {message}", fix)
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


def _decision_log(config_path: Path | None) -> Check:
    """The decision log that `dmr stats` reads (the SQLite or JSONL file dmr.yaml names, else the
    default SQLite log): how much it holds and whether the logger reported drops."""
    from urllib.parse import urlsplit

    from dmr.store.wiring import default_log_path, log_file

    spec = (_options(config_path) or {}).get("decision_logger")  # a config that does not load is reported above
    path = log_file(spec) if spec else None
    if spec and path is None:
        kind = urlsplit(spec).scheme if isinstance(spec, str) and "://" in spec else (
            spec.get("type") if isinstance(spec, dict) else spec if isinstance(spec, str) else type(spec).__name__)
        return Check("OK", "decision log", f"{kind} (not checked: dmr doctor makes no network calls)")
    path = path or default_log_path()
    if not path.is_file():
        return Check("OK", "decision log", f"none at {path} (enable with decision_logger='sqlite')")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        from dmr.store.stats import summarize_log

        summary, dropped = summarize_log(path, lambda records: {"records": sum(1 for _ in records)})
        count = summary["records"]
    else:
        import sqlite3
        from contextlib import closing

        from dmr.store.sqlite import read_gaps

        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)) as conn:
                tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                # An empty database is a log nothing was written to yet: the logger creates the table.
                count = conn.execute("SELECT count(*) FROM decisions").fetchone()[0] if "decisions" in tables else 0
            dropped = read_gaps(path)
        except sqlite3.Error as exc:
            return Check("FAIL", "decision log", f"{path} cannot be read as a SQLite decision log: {exc}",
                         "move the file aside (dmr starts a new log there), or name a .jsonl file for a JSONL log")
    if dropped:
        return Check("WARN", "decision log", f"{path}: {count:,} records; the logger dropped {dropped:,}",
                     "a backend was down longer than the buffer lasted: raise buffer_size or fix the backend")
    return Check("OK", "decision log", f"{path}: {count:,} records, none dropped")


def _layer2(path: Path | None) -> Check:
    """Whether Layer 2, as configured, can run: its provider's SDK and key (no network call)."""
    from dmr.layers.llm import diagnose

    options = _options(path)
    if options is None:
        return Check("WARN", "layer 2", "not checked: the configuration does not load (see above)")
    status, detail, fix = diagnose(options)
    return Check(status, "layer 2", detail, fix)


def _layer3(path: Path | None) -> Check:
    """Whether Layer 3 can run: numpy installed and its head loads (the configured one, if any)."""
    options = _options(path)
    if options is None:
        return Check("WARN", "layer 3", "not checked: the configuration does not load (see above)")
    if options.get("layer3_enabled") is False:
        return Check("OK", "layer 3", "off (layer3_enabled: false)")
    from dmr.layers.embedding import EmbeddingLayer

    layer = EmbeddingLayer(options.get("layer3_head"), options.get("layer3_strategy", "tier"),
                           encoder=options.get("layer3_embedding_model"))
    usable, why = layer.available()
    if not usable:
        wanted = options.get("layer3_enabled") or options.get("layer3_head") or options.get("layer3_embedding_model")
        return Check("FAIL" if wanted else "WARN", "layer 3",
                     f"unavailable: {why}",
                     "pip install 'dynamic-model-router[ml]', or retrain the head (`dmr train`)")
    heldout = (layer._head.metadata_.get("heldout") or {})
    score = f", held-out type macro-F1 {heldout['type_macro_f1']:.2f}" if "type_macro_f1" in heldout else ""
    encoder = getattr(layer._head, "encoder", None)
    used = f", encoder {encoder.name} ({encoder.kind}, {encoder.dim} dims)" if encoder is not None else ""
    needs = ", difficulty output" if getattr(layer._head, "needs_", False) else ", difficulty from type gaps"
    return Check("OK", "layer 3", f"{layer.head_path}{used}{score}{needs}")


def _outcome_model(path: Path | None) -> Check | list[Check]:
    """The configured outcome model (``outcome_model`` in dmr.yaml): whether it loads, and whether
    it was fitted on the Layer 3 head installed here."""
    options = _options(path)
    spec = (options or {}).get("outcome_model")  # a config that does not load is reported above
    if not isinstance(spec, (str, Path)):
        return []
    from dmr.errors import DmrError
    from dmr.quality import load_outcome_model

    try:
        model = load_outcome_model(spec)
    except DmrError as exc:
        return Check("FAIL", "outcome model", str(exc), "retrain it: dmr train --outcomes F (or --from-log)")
    detail = f"{spec}: {', '.join(model.models)}"
    if getattr(model, "stale_head_", False):
        return Check("WARN", "outcome model", f"{detail}; fitted on another Layer 3 head than the one installed",
                     "retrain it on this version: dmr train --outcomes F (or --from-log)")
    return Check("OK", "outcome model", detail)


def run_checks(config_path: Path | None = None) -> list[Check]:
    # (name, check): the name labels a check that crashes, as the check itself would have.
    steps: list[tuple[str, Callable[[], Check | list[Check]]]] = [
        ("python", _python), ("keyword packs", _packs), ("presets", _presets), ("model registry", _registry),
        ("config", functools.partial(_config, config_path)), ("classify", _classify),
        ("provider keys", _provider_keys), ("optional extras", _optional),
        ("decision log", functools.partial(_decision_log, config_path)),
        ("layer 2", functools.partial(_layer2, config_path)), ("layer 3", functools.partial(_layer3, config_path)),
        ("outcome model", functools.partial(_outcome_model, config_path)),
    ]
    results: list[Check] = []
    for name, step in steps:
        try:
            out = step()
        except Exception as exc:  # a check that crashes is itself a failure to report, not to raise
            out = Check("FAIL", name, f"{type(exc).__name__}: {exc}")
        results.extend(out if isinstance(out, list) else [out])
    return results
