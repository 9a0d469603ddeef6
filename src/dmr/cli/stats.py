"""``dmr stats`` (routing distribution and cost from the decision log) and ``dmr benchmark``
(per-layer latency percentiles on real work)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from dmr.cli._common import build_router, config_option, echo_json, json_option, writable_file
from dmr.cli.main import cli

_log_option = click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                           help="Decision log to read: SQLite, or JSONL by suffix (default: dmr's SQLite log).")
_since_option = click.option("--since", default=None, help="Only decisions since: 7d, 24h, 30m, 2w or an ISO date.")
_json_option = json_option("Print as JSON.")
_plot_option = click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                            help="Also draw the charts to this PNG (needs the 'plot' extra: matplotlib).")


def _configured_log(config_path: Path | None) -> Path | None:
    """The SQLite/JSONL log that the dmr.yaml in use (--config, $DMR_CONFIG, ./dmr.yaml) names."""
    import os

    from dmr.config import load_yaml_options
    from dmr.store.wiring import log_file

    path = config_path or (Path(os.environ["DMR_CONFIG"]) if os.environ.get("DMR_CONFIG") else None)
    if path is None and Path("dmr.yaml").is_file():
        path = Path("dmr.yaml")
    return log_file(load_yaml_options(path).get("decision_logger")) if path else None


def _load(log_path: Path | None, since: str | None, summary: Any,
          config_path: Path | None = None) -> tuple[dict[str, Any], int, Path]:
    """``summary`` of the log's records since ``--since``, the records the logger dropped, the log read."""
    from dmr.errors import InputError
    from dmr.store.stats import parse_since, summarize_log
    from dmr.store.wiring import default_log_path

    log_path = log_path or _configured_log(config_path)
    path = log_path or default_log_path()
    try:
        start = parse_since(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    if log_path is None and not path.exists():
        # Nothing logged yet is an empty log, not an error; a log named with --log must exist.
        click.echo(f"no decision log yet at {path}; record one with Router(decision_logger='sqlite')", err=True)
        return summary([]), 0, path
    try:
        result, dropped = summarize_log(path, summary, since=start)
    except FileNotFoundError:
        # An InputError, not a ClickException, so that --json prints it as {"error": ...}.
        raise InputError(
            f"no decision log at {path}; record one with Router(decision_logger='sqlite') or pass --log PATH") from None
    return result, dropped, path


def _when(ts: float) -> str:
    try:
        return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):  # a time no clock gives (a log in ms, or edited by hand)
        return f"ts {ts:g}"


def _pyplot() -> Any:
    from dmr.errors import NotAvailableError

    try:
        import matplotlib
    except ImportError:
        raise NotAvailableError("--plot needs matplotlib: pip install 'dynamic-model-router[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _check_plot(path: Path | None) -> None:
    """A --plot path is checked before the log is read: matplotlib there, a folder to write to, a
    format it writes (a usage error, not a traceback after the work)."""
    if path is not None:
        _pyplot()
        writable_file(path, "--plot", plot=True)


def _plot_distribution(summary: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for ax, key in zip(axes.flat, ("tier", "layer", "task_type", "tenant")):
        rows = summary[key][:12]
        ax.barh([r["name"] for r in rows][::-1], [r["count"] for r in rows][::-1], color="#4a7ab5")
        ax.set_title(f"decisions by {key.replace('_', ' ')}")
    fig.suptitle(f"dmr: {summary['decisions']:,} decisions")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_cost(summary: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    tiers = list(summary["by_tier"])
    ax.bar(["routed", "all high tier"], [summary["spent_usd"], summary["high_tier_usd"]], color=["#4a7ab5", "#c0504d"])
    ax.set_ylabel("estimated USD")
    ax.set_title(f"saved ${summary['saved_usd']:.4f} ({summary['saved_share']:.0%}) over {summary['priced']:,} "
                 f"decisions ({', '.join(tiers)})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _table(title: str, rows: list[dict[str, Any]]) -> list[str]:
    lines = [title]
    for row in rows:
        lines.append(f"  {row['name']:<22} {row['count']:>8,}  {row['share']:>6.1%}")
    return lines


@cli.group(invoke_without_command=True)
@config_option
@_log_option
@_since_option
@_json_option
@_plot_option
@click.pass_context
def stats(ctx: click.Context, config_path: Path | None, log_path: Path | None, since: str | None, as_json: bool,
          plot_path: Path | None) -> None:
    """Routing distribution from the decision log: by tier, layer, task type and tenant.

    The log read is --log, else the SQLite/JSONL log the dmr.yaml in use names, else dmr's default."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"config_path": config_path, "log_path": log_path, "since": since, "as_json": as_json,
                   "plot_path": plot_path}
        return
    from dmr.store.stats import distribution

    _check_plot(plot_path)
    summary, dropped, path = _load(log_path, since, distribution, config_path)
    summary["dropped"] = dropped
    summary["log"] = str(path)
    if plot_path:
        _plot_distribution(summary, plot_path)
    if as_json:
        echo_json(summary)
        return
    lines = [f"{summary['decisions']:,} decisions in {path}"]
    if "first" in summary:
        lines[0] += f" ({_when(summary['first'])} – {_when(summary['last'])})"
    if summary["decisions"]:
        lines.append(f"cache hits {summary['cache_hits']:,}; median decision latency {summary['latency_ms_p50']:.3f} ms")
    if dropped:
        lines.append(f"WARNING: the logger dropped {dropped:,} record(s) in this period (buffer full or shut down)")
    for key in ("tier", "layer", "task_type", "tenant"):
        lines += _table(f"by {key.replace('_', ' ')}:", summary[key])
    if plot_path:
        lines.append(f"wrote {plot_path}")
    click.echo("\n".join(lines))


@stats.command()
@config_option
@_log_option
@_since_option
@_json_option
@_plot_option
@click.pass_context
def cost(ctx: click.Context, config_path: Path | None, log_path: Path | None, since: str | None, as_json: bool,
         plot_path: Path | None) -> None:
    """Estimated spend against sending every task to the high tier (the money saved)."""
    from dmr.store.stats import cost_summary

    outer = ctx.obj or {}
    config_path = config_path or outer.get("config_path")
    log_path = log_path or outer.get("log_path")
    since = since or outer.get("since")
    as_json = as_json or outer.get("as_json", False)
    plot_path = plot_path or outer.get("plot_path")
    _check_plot(plot_path)
    summary, dropped, path = _load(log_path, since, cost_summary, config_path)
    summary["dropped"] = dropped
    summary["since"] = since
    if plot_path:
        _plot_cost(summary, plot_path)
    if as_json:
        echo_json(summary)
        return
    lines = [f"{summary['decisions']:,} decisions in {path}" + (f" since {since}" if since else ""),
             f"  estimated spend        ${summary['spent_usd']:.6f}",
             f"  all at the high tier   ${summary['high_tier_usd']:.6f}",
             f"  saved                  ${summary['saved_usd']:.6f} ({summary['saved_share']:.1%})"]
    for tier, row in summary["by_tier"].items():
        lines.append(f"  {tier:<10} {int(row['decisions']):>8,} decisions  ${row['spent_usd']:.6f}")
    if any(summary["by_tenant"]):
        lines.append("  by tenant:")
        for tenant, row in summary["by_tenant"].items():
            saved = row["high_tier_usd"] - row["spent_usd"]
            lines.append(f"    {tenant or '(none)':<20} {int(row['decisions']):>8,} decisions  ${row['spent_usd']:.6f}"
                         f"  saved ${saved:.6f}")
    if summary["unpriced"]:
        lines.append(f"  {summary['unpriced']:,} decision(s) without a price estimate are left out")
    if dropped:
        lines.append(f"WARNING: the logger dropped {dropped:,} record(s) in this period")
    if plot_path:
        lines.append(f"wrote {plot_path}")
    click.echo("\n".join(lines))


# -- benchmark ------------------------------------------------------------------------------------

_SAMPLE = [
    "Hi!", "What is 2+2?", "Translate 'good morning' into Spanish.",
    "Write a Python function that merges two sorted lists and include unit tests.",
    ("Design a multi-region CQRS architecture for a payments ledger with exactly-once processing, "
     "and compare it with an event-sourced alternative."),
    "Summarise the attached meeting notes in three bullet points.",
    "Prove that the square root of 2 is irrational.",
    "Explique la diferencia entre TCP y UDP.", "Schreibe eine kurze E-Mail an meinen Vermieter.",
    "Analyze the trade-offs between B-trees and LSM-trees for a write-heavy workload. " * 20,
]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@cli.command()
@config_option
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="JSONL file of tasks ({\"task\": ...} per line); default: a built-in mixed sample.")
@click.option("-n", "--decisions", "count", type=click.IntRange(1, 1_000_000), default=2000, show_default=True,
              help="How many decisions to measure.")
@_json_option
def benchmark(config_path: Path | None, data_path: Path | None, count: int, as_json: bool) -> None:
    """p50/p95/p99 latency per layer, measured on real decisions (the cache is bypassed)."""
    import json

    from tqdm import tqdm

    from dmr.errors import InputError

    router = build_router(config_path)
    # Measure the layers, not the cache: the same Router without cache and log.
    from dmr.router import Router

    cfg = router.config
    options = {**{name: getattr(cfg, name) for name in cfg.model_fields_set}, "cache_enabled": False,
               "cache_backend": None, "decision_logger": None}
    router = Router(**options)
    tasks = _SAMPLE
    if data_path:
        tasks = []
        from dmr.datafiles import numbered_lines

        for _, _, line in numbered_lines(data_path):
            try:
                item = json.loads(line)
            except ValueError:
                continue
            task = item.get("task") if isinstance(item, dict) else item
            if isinstance(task, str) and task.strip():
                tasks.append(task)
        if not tasks:
            raise InputError(f"{data_path} holds no tasks: each line wants a JSON object like {{\"task\": \"...\"}}")
    per_layer: dict[str, list[float]] = {}
    total: list[float] = []
    for i in tqdm(range(count), unit="decision", disable=None, desc="benchmark", file=sys.stderr):
        decision = router.classify(tasks[i % len(tasks)])
        total.append(decision.latency_ms)
        for step in decision.trace:
            if step.outcome != "skipped":
                per_layer.setdefault(step.layer, []).append(step.latency_ms)
    rows = [{"layer": name, "calls": len(values), "p50_ms": _percentile(values, 50), "p95_ms": _percentile(values, 95),
             "p99_ms": _percentile(values, 99)} for name, values in per_layer.items()]
    rows.append({"layer": "decision (end to end)", "calls": len(total), "p50_ms": _percentile(total, 50),
                 "p95_ms": _percentile(total, 95), "p99_ms": _percentile(total, 99)})
    if as_json:
        echo_json({"decisions": count, "tasks": len(tasks), "layers": rows})
        return
    click.echo(f"{count:,} decisions over {len(tasks)} distinct tasks (cache bypassed)")
    click.echo(f"  {'layer':<24} {'calls':>8} {'p50 ms':>10} {'p95 ms':>10} {'p99 ms':>10}")
    for row in rows:
        click.echo(f"  {row['layer']:<24} {row['calls']:>8,} {row['p50_ms']:>10.4f} {row['p95_ms']:>10.4f} "
                   f"{row['p99_ms']:>10.4f}")
