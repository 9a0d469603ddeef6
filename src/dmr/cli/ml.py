"""``dmr train`` and ``dmr eval``: train a Layer 3 head on labelled JSONL, and score a router on it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from dmr.cli._common import build_router, config_option, echo_json
from dmr.cli.main import cli


def _table(report: dict[str, Any]) -> str:
    rows = [("task type", report["type_accuracy"], report["type_macro_f1"]),
            ("complexity", report["complexity_accuracy"], report["complexity_macro_f1"])]
    lines = ["               accuracy  macro-F1"]
    lines += [f"{name:<14} {acc:>8.3f}  {f1:>8.3f}" for name, acc, f1 in rows]
    lines.append(f"tier           {report['tier_accuracy']:>8.3f}")
    lines.append(f"ECE            {report['ece']:>8.3f}")
    return "\n".join(lines)


@cli.command("train")
@click.option("--data", "data", required=True, multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Labelled JSONL (task, task_type, complexity), or a folder of *.jsonl; repeatable.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=Path("dmr-l3-head.npz"),
              show_default=True, help="Where to write the head (.npz arrays + .json metadata).")
@click.option("--max-iter", type=click.IntRange(1, 10_000), default=150, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def train_cmd(data: tuple[Path, ...], output: Path, max_iter: int, as_json: bool) -> None:
    """Train a Layer 3 head; the rows whose sha256 % 5 == 0 are held out and scored."""
    from tqdm import tqdm

    from dmr.ml.train import train_and_save

    bar = tqdm(total=max_iter, unit="it", file=sys.stderr, disable=None, desc="training")

    def progress(stage: str, step: int, value: float) -> None:
        if stage == "fit":
            bar.set_description("training")
            bar.n = min(step, max_iter)
            bar.refresh()
        else:
            bar.set_description(f"calibrating ({step}/{int(value)})" if value == value else "calibrating")

    try:
        report = train_and_save(list(data), output, max_iter=max_iter, progress=progress)
    finally:
        bar.close()
    if as_json:
        echo_json(report)
        return
    click.echo(f"wrote {report['path']} ({report['train_rows']} training rows, {report['heldout_rows']} held out)")
    if report["heldout"]:
        click.echo("held-out metrics:")
        click.echo(_table(report["heldout"]))
    click.echo(f"use it with Router(layer3_head={report['path']!r}) or `layer3_head: {report['path']}` in dmr.yaml")


@cli.command("eval")
@click.option("--data", "data", required=True, multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Labelled JSONL (task, task_type, complexity), or a folder of *.jsonl; repeatable.")
@click.option("--heldout-only", is_flag=True, help="Score only the held-out split (sha256 % 5 == 0).")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the confusion matrices and a reliability diagram as a PNG (needs matplotlib).")
@config_option
def eval_cmd(data: tuple[Path, ...], heldout_only: bool, as_json: bool, plot: Path | None,
             config_path: Path | None) -> None:
    """Score the configured router on labelled tasks: accuracy, macro-F1, tier accuracy, the share
    each layer decided, calibration (ECE) and confusion matrices."""
    from tqdm import tqdm

    from dmr.errors import NotAvailableError
    from dmr.ml.evaluate import evaluate_router
    from dmr.ml.train import is_heldout, load_examples

    examples = load_examples(list(data))
    if heldout_only:
        examples = [e for e in examples if is_heldout(e.task)]
    if not examples:
        raise click.UsageError("no labelled rows to evaluate")
    router = build_router(config_path)
    with tqdm(total=len(examples), unit="task", file=sys.stderr, disable=None, desc="evaluating") as bar:
        report = evaluate_router(router, examples, progress=lambda i: bar.update(1))
    if plot is not None:
        try:
            from dmr.ml.plots import plot_report
        except ImportError:
            raise NotAvailableError("--plot needs matplotlib: pip install 'dynamic-model-router[plot]'") from None
        plot_report(report, plot)
    if as_json:
        echo_json(report)
        return
    click.echo(f"{report['n']} tasks, layers {', '.join(router.layers)}")
    click.echo(_table(report))
    click.echo("decided by:")
    for name, info in sorted(report["decided_by"].items(), key=lambda kv: -kv[1]["share"]):
        click.echo(f"  {name:<10} {info['share']:>6.1%}   tier accuracy {info['tier_accuracy']:.3f}")
    if report["layer3_share_of_layer1_unsure"] is not None:
        click.echo(f"Layer 3 decided {report['layer3_share_of_layer1_unsure']:.1%} of the tasks Layer 1 was unsure of")
    labels = report["type_labels"]
    width = max(len(label) for label in labels)
    click.echo("task-type confusion (rows: truth, columns: predicted):")
    click.echo(" " * (width + 1) + " ".join(f"{label[:5]:>5}" for label in labels))
    for label, row in zip(labels, report["type_confusion"]):
        click.echo(f"{label:<{width}} " + " ".join(f"{v:>5}" for v in row))
    if plot is not None:
        click.echo(f"wrote {plot}")
