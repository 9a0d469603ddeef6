"""``dmr models``: inspect, load, pull, export and reset the model registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from dmr.cli._common import json_option
from dmr.cli.main import cli
from dmr.errors import RegistryError
from dmr.registry import (
    ModelRegistry,
    clear_user_registry,
    default_registry,
    registry_changes,
    update_user_registry,
    user_registry_in_effect,
    user_registry_path,
    write_atomically,
)

_CAPABILITY_FLAGS = {
    "supports_function_calling": "tools",
    "supports_vision": "vision",
    "supports_json_schema": "json",
    "supports_reasoning": "reasoning",
}


def _price(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:,.2f}" if round(value, 2) == value else f"${value:,.6f}".rstrip("0")


def _rows(registry: ModelRegistry, provider: str | None) -> list[dict[str, Any]]:
    names = [registry.provider(provider).name] if provider is not None else registry.providers()
    rows = []
    for name in names:
        for tier, model_name in registry.provider(name).tiers.items():
            model = registry.model(model_name)
            caps = dict(model.capabilities) if model else {}
            rows.append(
                {
                    "provider": name,
                    "tier": tier,
                    "model": model_name,
                    "input_per_1m": model.input_per_1m if model else None,
                    "output_per_1m": model.output_per_1m if model else None,
                    "context_window": model.context_window if model else None,
                    "regions": list(registry.regions_of(model_name, provider=name)),
                    "capabilities": caps,
                }
            )
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    header = ("PROVIDER", "TIER", "MODEL", "IN/1M", "OUT/1M", "CONTEXT", "REGIONS", "CAPABILITIES")
    lines = [header]
    for row in rows:
        flags = [label for key, label in _CAPABILITY_FLAGS.items() if row["capabilities"].get(key)]
        lines.append(
            (
                row["provider"],
                row["tier"],
                row["model"],
                _price(row["input_per_1m"]),
                _price(row["output_per_1m"]),
                "-" if row["context_window"] is None else f"{row['context_window']:,}",
                ",".join(row["regions"]) or "-",
                ",".join(flags) or "-",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {3, 4, 5}  # numbers line up on the right
    return "\n".join(
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )


@cli.group(invoke_without_command=True)
@click.option("--provider", "-p", metavar="NAME", help="Only this provider.")
@json_option("Print JSON instead of a table.")
@click.pass_context
def models(ctx: click.Context, provider: str | None, as_json: bool) -> None:
    """List providers, the model each uses per tier, prices (USD per 1M tokens) and capabilities."""
    if ctx.invoked_subcommand is not None:
        return
    registry = default_registry()
    rows = _rows(registry, provider)
    if as_json:
        out = {
            "version": registry.version,
            "fingerprint": registry.fingerprint,
            "source": registry.source,
            "models": rows,
        }
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"registry {registry.version} from {registry.source}; fingerprint {registry.fingerprint}")
    click.echo(_table(rows) if rows else "no providers registered")


def _persist(incoming: ModelRegistry, replace: bool, what: str) -> None:
    """Save ``incoming`` as the user registry (merged into any saved one unless replacing)."""
    try:
        before: ModelRegistry | None = default_registry().copy()
    except RegistryError:  # a broken saved registry must not stop the user from replacing it
        before = None
    saved, replace, path = update_user_registry(incoming, replace=replace)
    after = default_registry()
    mode = "replace" if replace else "merge"
    click.echo(f"loaded {what} (version {saved.version}) with {mode}; saved to {path}")
    for part, change in (registry_changes(before, after) if before else {}).items():
        counts = ", ".join(f"{len(change[k])} {k}" for k in ("added", "changed", "removed"))
        click.echo(f"  {part}: {counts}")
    if not user_registry_in_effect():
        click.echo("note: DMR_REGISTRY is set, so the saved registry is not used until it is unset", err=True)


@models.command("load")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--replace", is_flag=True, help="Use this registry instead of the bundled one, not on top of it."
)
def load_command(file: Path, replace: bool) -> None:
    """Validate FILE and save it as your registry.

    By default it is merged on top of the bundled registry; with --replace it is used instead."""
    _persist(ModelRegistry.from_yaml(file), replace, str(file))


@models.command("pull")
@click.argument("url")
@click.option(
    "--replace", is_flag=True, help="Use this registry instead of the bundled one, not on top of it."
)
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="Refuse a larger registry.",
)
@click.option(
    "--ca-file", type=click.Path(exists=True, dir_okay=False), help="CA bundle to verify the server with."
)
def pull_command(url: str, replace: bool, max_bytes: int, ca_file: str | None) -> None:
    """Fetch, validate and save a registry from an https URL.

    Nothing is written unless the whole document arrives within --max-bytes and validates."""
    incoming = ModelRegistry.load(url, max_bytes=max_bytes, verify=ca_file or True)
    _persist(incoming, replace, url)


@models.command("export")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout)."
)
def export_command(output: Path | None) -> None:
    """Print or save the registry in effect as YAML that `load` accepts."""
    registry = default_registry()
    text = (
        f"# exported by dmr from {registry.source}; fingerprint {registry.fingerprint}\n" + registry.to_yaml()
    )
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        write_atomically(output, text)
    except OSError as exc:
        raise click.FileError(str(output), hint=exc.strerror or str(exc)) from None
    click.echo(f"wrote {output}", err=True)


@models.command("reset")
def reset_command() -> None:
    """Remove your saved registry; the bundled one applies again."""
    path = user_registry_path()
    click.echo(f"removed {path}" if clear_user_registry() else f"no saved registry at {path}")
