"""Commands that call an LLM provider: ``dmr generate-data``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from dmr.cli._common import config_option
from dmr.cli.main import cli


def _split(value: str | None, enum: type) -> list:
    if not value:
        return []
    try:
        return [enum(part) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command("generate-data")
@click.option("--domain", required=True, help="What the tasks are about, e.g. healthcare or legal.")
@click.option("--per-slot", type=click.IntRange(1, 10_000), default=50, show_default=True,
              help="Tasks per task type × complexity.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="JSONL file to write.")
@click.option("--append", is_flag=True, help="Add to an existing file (its tasks count for de-duplication).")
@click.option("--provider", default=None, help="Provider (default: layer2_provider from the config, else google).")
@click.option("--model", default=None, help="Model (default: layer2_model, else the provider's low-tier model).")
@click.option("--base-url", default=None, help="An OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1.")
@click.option("--task-types", default=None, help="Only these task types (comma-separated).")
@click.option("--complexities", default=None, help="Only these complexities (comma-separated).")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=60.0, show_default=True,
              help="Seconds per provider call.")
@config_option
def generate_data(domain: str, per_slot: int, out: Path, append: bool, provider: str | None, model: str | None,
                  base_url: str | None, task_types: str | None, complexities: str | None, timeout: float,
                  config_path: Path | None) -> None:
    """Generate labelled training tasks for a domain through an LLM provider."""
    from tqdm import tqdm

    from dmr.config import load_yaml_options
    from dmr.errors import ProviderError
    from dmr.generate import GenerationReport, generate, read_existing
    from dmr.layers.base import LayerUnavailable
    from dmr.layers.llm import DEFAULT_PROVIDER
    from dmr.providers import build_adapter, resolve_settings
    from dmr.router import Router
    from dmr.types import TaskComplexity, TaskType

    domain = domain.strip()
    if not domain or len(domain) > 200:
        raise click.BadParameter("give a domain of 1 to 200 characters", param_hint="--domain")
    types, levels = _split(task_types, TaskType), _split(complexities, TaskComplexity)
    path = config_path or (Path(os.environ["DMR_CONFIG"]) if os.environ.get("DMR_CONFIG") else None)
    if path is None and Path("dmr.yaml").is_file():
        path = Path("dmr.yaml")
    options = load_yaml_options(path) if path else {}
    provider = provider or options.get("layer2_provider") or DEFAULT_PROVIDER
    model = model or options.get("layer2_model")
    base_url = base_url or options.get("layer2_base_url")
    if out.exists() and not append:
        raise click.UsageError(f"{out} exists: use --append to add to it, or another --out")
    seen = read_existing(out) if out.exists() else set()
    registry = Router(**options).registry
    try:
        adapter = build_adapter(resolve_settings(provider, model, base_url, registry))
    except LayerUnavailable as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None

    slots = (len(types) or len(TaskType)) * (len(levels) or len(TaskComplexity))
    report = GenerationReport()
    out.parent.mkdir(parents=True, exist_ok=True)
    existed = out.exists()
    with out.open("a", encoding="utf-8") as handle, \
            tqdm(total=slots * per_slot, desc="generating", unit="task", disable=None) as bar:
        try:
            for record in generate(adapter, domain, per_slot, task_types=types or None,
                                   complexities=levels or None, seen=seen, timeout=timeout, report=report):
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                handle.flush()
                bar.update(1)
        except ProviderError as exc:
            handle.close()
            if not existed and not report.written:
                out.unlink()  # nothing was generated: leave no empty file that a rerun would refuse
            click.echo(f"\nerror: {exc} (kept the {report.written} tasks written so far)", err=True)
            raise SystemExit(1) from None
    click.echo(f"wrote {report.written} tasks to {out} ({report.duplicates} duplicates and "
               f"{report.invalid} invalid dropped, {report.failed_calls} failed calls)")
    for slot in report.short_slots:
        click.echo(f"short: {slot}", err=True)
