"""Domain presets: a keyword pack, extra PII patterns and a PII policy per domain, shipped as YAML
in ``dmr/data/presets``. ``Router.from_preset(name)`` and ``dmr presets`` read them."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping

import yaml

from dmr.errors import ConfigError
from dmr.packs import KeywordPack

__all__ = ["Preset", "list_presets", "load_preset"]


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    pack: KeywordPack
    pii_patterns: Mapping[str, str] = field(default_factory=dict)
    pii_policy: Mapping[str, Any] | None = None


def _root() -> Any:
    return resources.files("dmr") / "data" / "presets"


def list_presets() -> list[str]:
    return sorted(entry.name[:-5] for entry in _root().iterdir() if entry.name.endswith(".yaml"))


@functools.lru_cache(maxsize=None)
def load_preset(name: str) -> Preset:
    entry = _root() / f"{name}.yaml"
    if not isinstance(name, str) or not name.isidentifier() or not entry.is_file():
        raise ConfigError(f"unknown preset {name!r} (known: {', '.join(list_presets())})",
                          [("preset", f"unknown preset {name!r}")])
    data = yaml.safe_load(entry.read_text(encoding="utf-8"))
    return Preset(
        name=name,
        description=str(data.get("description", "")),
        pack=KeywordPack.from_dict(data.get("keywords") or {"name": name}, source=f"{name}.yaml"),
        pii_patterns=dict(data.get("pii_patterns") or {}),
        pii_policy=data.get("pii_policy"),
    )
