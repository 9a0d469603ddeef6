"""``dmr classify``: one task from the argument or stdin, or a JSONL batch."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from dmr.cli._common import (
    build_router,
    check_engine,
    config_file,
    config_option,
    echo_json,
    engine_options,
    json_option,
    writable_file,
)
from dmr.cli.main import cli


def _render(decision: Any) -> str:
    cost = "n/a" if decision.estimated_cost_usd is None else f"~${decision.estimated_cost_usd:.6f}"
    model = f"{decision.provider}/{decision.model_name}" if decision.model_name else "(no model registered)"
    lines = [
        f"tier        {decision.tier}",
        f"model       {model}",
        f"task        {decision.task_type} · {decision.complexity}",
        f"confidence  {decision.confidence:.2f}   difficulty {decision.difficulty:.2f}",
        f"layer       {decision.layer} ({decision.latency_ms:.3f} ms)",
        f"cost        {cost}",
        f"why         {decision.reasoning}",
    ]
    if decision.policies_applied:
        lines.append(f"policies    {', '.join(decision.policies_applied)}")
    return "\n".join(lines)


def _batch(router: Any, batch: Path, out: Path | None, engine: str, config: Path | None, preset: str | None,
           address: str | None, workers: int | None) -> None:
    from tqdm import tqdm

    from dmr.batch import classify_stream

    if out is not None:
        writable_file(out, "--out", inputs=[batch])
    # Bytes that are not UTF-8 come as lone surrogates, for classify_stream to replace and report.
    with batch.open(encoding="utf-8", errors="surrogateescape") as source:
        total = sum(1 for _ in source)
    with batch.open(encoding="utf-8", errors="surrogateescape") as source, \
            (out.open("w", encoding="utf-8") if out is not None else nullcontext(sys.stdout)) as sink, \
            tqdm(total=total, unit="line", file=sys.stderr, disable=None, desc="classifying") as bar:
        done, failed = classify_stream(source, lambda line: sink.write(line + "\n"), router=router, config=config,
                                       preset=preset, engine=engine, address=address, workers=workers,
                                       progress=bar.update)
    click.echo(f"classified {done} task(s), {failed} failed" + (f"; wrote {out}" if out else ""), err=True)
    if failed and not done:
        sys.exit(1)


@cli.command()
@click.argument("text", required=False)
@json_option("Print the decision as JSON.")
@click.option("--preset", help="Use a domain preset (see `dmr presets`).")
@click.option("--batch", "batch", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSONL file of {\"task\": ...} objects to classify.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where --batch writes its results (default: stdout).")
@engine_options
@config_option
def classify(text: str | None, as_json: bool, preset: str | None, batch: Path | None, out: Path | None,
             engine: str | None, ray_address: str | None, workers: int | None, config_path: Path | None) -> None:
    """Classify TEXT (or stdin with no TEXT or with '-') and print the routing decision."""
    if batch is None and (out, engine) != (None, None):
        raise click.UsageError(f"--{'out' if out is not None else 'engine'} goes with --batch")
    check_engine(engine, ray_address, workers)
    router = build_router(config_path, preset)  # also checks the configuration before any worker starts
    if batch is not None:
        if text:
            raise click.UsageError("give either TEXT or --batch, not both")
        _batch(router, batch, out, engine or "local", config_file(config_path), preset, ray_address, workers)
        return
    if text is None or text == "-":
        if sys.stdin is None or (sys.stdin.isatty() and text is None):
            raise click.UsageError("give the task as an argument, or pipe it on stdin")
        # Bytes go to the router as they are: it decodes them and notes input that is not UTF-8.
        task: str | bytes = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
    else:
        task = text
    decision = router.classify(task)
    if as_json:
        echo_json(decision.to_dict())
    else:
        click.echo(_render(decision))
