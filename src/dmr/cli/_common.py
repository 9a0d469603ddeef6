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


def writable_file(path: Path, option: str, *, plot: bool = False, inputs: Any = (), model: bool = False) -> Path:
    """``path`` checked before any work is done, so that training or scoring is not thrown away at
    the end: it names a file, its folder exists or is created, and the folder is writable; it is
    none of the ``inputs`` (nor, for a ``model``, are the ``.npz`` and ``.json`` files written beside
    it); for a plot, its suffix is a format matplotlib writes. Raises :class:`click.BadParameter`."""
    if not path.name or path.is_dir():
        raise click.BadParameter(f"{str(path)!r} is a folder, not a file name", param_hint=option)
    written = [path, path.with_suffix(".npz"), path.with_suffix(".json")] if model else [path]
    read = {Path(p).resolve() for p in inputs if p is not None and Path(p).is_file()}
    clash = next((w for w in written if w.resolve() in read), None)
    if clash is not None:
        raise click.BadParameter(f"it would overwrite the input file {clash}", param_hint=option)
    if path.parent.exists() and not path.parent.is_dir():
        raise click.BadParameter(f"{path.parent} is a file, not a folder", param_hint=option)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.BadParameter(f"cannot create the folder {path.parent}: {exc.strerror or exc}",
                                 param_hint=option) from None
    if not os.access(path.parent, os.W_OK):
        raise click.BadParameter(f"cannot write to the folder {path.parent}", param_hint=option)
    if plot and path.suffix:
        from matplotlib.backend_bases import FigureCanvasBase

        formats = FigureCanvasBase.get_supported_filetypes()
        if path.suffix[1:].lower() not in formats:
            raise click.BadParameter(f"matplotlib cannot write {path.suffix} files; use one of "
                                     f"{', '.join('.' + f for f in sorted(formats))}", param_hint=option)
    return path


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _note_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta["dmr.json"] = True  # shared with the parent contexts, where cli's group reads it
    return value


def json_option(help: str) -> Any:
    """``--json``. With it, dmr's own errors are printed as ``{"error": message}`` where the JSON
    output goes (exit code 1 all the same), for the script reading it (:mod:`dmr.cli.main`)."""
    return click.option("--json", "as_json", is_flag=True, help=help, callback=_note_json)


def engine_options(command: Any) -> Any:
    """``--engine local|ray``, ``--ray-address`` and ``--workers``, for commands that classify many tasks."""
    for option in reversed([
        click.option("--engine", type=click.Choice(["local", "ray"]), default=None,
                     help="Where the tasks are classified: this process (default) or Ray workers, each with a "
                          "Router built from the same config."),
        click.option("--ray-address", default=None,
                     help="The Ray cluster for --engine ray (default: $RAY_ADDRESS, else a local Ray for the run; "
                          "'auto': the one `ray start` runs on this machine)."),
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Ray workers for --engine ray (default: one per CPU of the cluster)."),
    ]):
        command = option(command)
    return command


def check_engine(engine: str | None, ray_address: str | None, workers: int | None) -> None:
    if engine != "ray" and (ray_address, workers) != (None, None):
        raise click.UsageError(f"--{'ray-address' if ray_address else 'workers'} goes with --engine ray")


def ray_workers(engine: str | None, config_path: Path | None, preset: str | None, address: str | None,
                workers: int | None) -> Any:
    """A :class:`dmr.batch.RayPool` to enter for ``--engine ray``, else a context that gives None."""
    from contextlib import nullcontext

    if engine != "ray":
        return nullcontext(None)
    from dmr.batch import RayPool

    return RayPool(config_file(config_path), preset, address=address, workers=workers)
