"""Small helpers shared by the command modules."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="dmr.yaml to configure the router (default: $DMR_CONFIG, else ./dmr.yaml if present).",
)


def config_file(config_path: Path | None = None) -> Path | None:
    """The dmr.yaml in force: ``--config``, else ``$DMR_CONFIG``, else ./dmr.yaml if present."""
    path = config_path or (Path(os.environ["DMR_CONFIG"]) if os.environ.get("DMR_CONFIG") else None)
    if path is None and Path("dmr.yaml").is_file():
        path = Path("dmr.yaml")
    return path


def build_router(config_path: Path | None = None, preset: str | None = None) -> Any:
    from dmr.router import Router

    path = config_file(config_path)
    extra = {"preset": preset} if preset else {}
    return Router.from_yaml(path, **extra) if path else Router(**extra)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
