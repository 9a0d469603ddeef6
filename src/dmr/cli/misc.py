"""Small commands: presets, init, schema, version, doctor."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from importlib import resources
from pathlib import Path

import click

from dmr.cli._common import echo_json, json_option
from dmr.cli.main import cli


@cli.command()
@json_option("Print as JSON.")
def presets(as_json: bool) -> None:
    """List the domain presets (use with --preset or Router.from_preset)."""
    from dmr.presets import list_presets, load_preset

    rows = []
    for name in list_presets():
        preset = load_preset(name)
        rows.append({"name": name, "description": preset.description,
                     "pii_patterns": sorted(preset.pii_patterns), "pii_policy": preset.pii_policy})
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']:<12} {row['description']}")
        click.echo(f"{'':<12} PII: {', '.join(row['pii_patterns'])}; policy {row['pii_policy']}")


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, creating its folder; an OS error is a clear error, not a traceback.
    The file is replaced in one rename, so an interrupted write (Ctrl-C, a full disk) leaves the
    file it would overwrite whole."""
    from dmr.registry import write_atomically

    blocking = next((folder for folder in (path.parent, *path.parent.parents) if folder.is_file()), None)
    if blocking is not None:
        raise click.ClickException(f"cannot write {path}: {blocking} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None


@cli.command()
@click.option("--path", "path", type=click.Path(dir_okay=False, path_type=Path), default=Path("dmr.yaml"),
              show_default=True, help="Where to write the file.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path, force: bool) -> None:
    """Write a commented dmr.yaml to start from."""
    path = path.expanduser()  # a quoted '~/dmr.yaml' too, as Router.from_yaml reads it
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; use --force to overwrite it")
    template = (resources.files("dmr") / "data" / "dmr.template.yaml").read_text(encoding="utf-8")
    _write(path, template)
    click.echo(f"wrote {path}; load it with Router.from_yaml({str(path)!r})")


@cli.command()
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file instead of stdout.")
def schema(output: Path | None) -> None:
    """Print the JSON schema of dmr.yaml."""
    import json

    from dmr.config import yaml_schema

    text = json.dumps(yaml_schema(), indent=2)
    if output:
        _write(output, text + "\n")
        click.echo(f"wrote {output}")
    else:
        click.echo(text)


# Always listed (None: not installed); the optional parts below are listed only when installed,
# so that a bug report shows the server stack, provider SDKs and agent frameworks in use.
_CORE = ("dynamic-model-router", "pydantic", "PyYAML", "click", "httpx", "platformdirs", "tqdm", "tiktoken",
         "numpy")
_OPTIONAL = ("tokenizers", "scipy", "onnxruntime", "starlette", "uvicorn", "openai", "anthropic", "google-genai",
             "redis", "psycopg", "confluent-kafka", "boto3", "prometheus-client", "opentelemetry-sdk", "ray",
             "langchain-core", "llama-index-core", "crewai", "ag2", "openai-agents", "google-adk", "litellm",
             "pydantic-ai-slim", "dspy", "haystack-ai", "semantic-kernel", "smolagents")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _versions() -> dict[str, str | None]:
    out = {dist: _version(dist) for dist in _CORE}
    out.update({dist: found for dist in _OPTIONAL if (found := _version(dist)) is not None})
    return out


@cli.command()
@json_option("Print as JSON.")
def version(as_json: bool) -> None:
    """Print dmr's version, Python's and the dependencies'."""
    import dmr

    info = {"dmr": dmr.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "dependencies": _versions()}
    if as_json:
        echo_json(info)
        return
    click.echo(f"dmr {info['dmr']} on Python {info['python']} ({info['platform']})")
    for name, ver in info["dependencies"].items():
        click.echo(f"  {name:<22} {ver or 'not installed'}")


@cli.command()
@json_option("Print the checks as JSON.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also validate this dmr.yaml (default: $DMR_CONFIG or ./dmr.yaml if present).")
def doctor(as_json: bool, config_path: Path | None) -> None:
    """Check the installation and configuration. Exit 1 if any check FAILs (usable in CI)."""
    from dmr.doctor import run_checks

    checks = run_checks(config_path)
    if as_json:
        echo_json([{"status": c.status, "name": c.name, "detail": c.detail, "fix": c.fix} for c in checks])
    else:
        for check in checks:
            line = f"[{check.status}] {check.name}: {check.detail}"
            click.echo(line + (f" — {check.fix}" if check.fix else ""))
        fails = sum(c.status == "FAIL" for c in checks)
        warns = sum(c.status == "WARN" for c in checks)
        click.echo(f"{len(checks)} checks: {fails} failed, {warns} warnings")
    if any(c.status == "FAIL" for c in checks):
        sys.exit(1)
