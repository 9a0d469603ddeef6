"""``dmr classify``: one task from the argument or stdin, or a JSONL batch."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

import click

from dmr.cli._common import build_router, config_option, echo_json
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


def _batch(router: Any, source: TextIO, out: TextIO, total: int | None) -> tuple[int, int]:
    from tqdm import tqdm

    from dmr.errors import DmrError

    done = failed = 0
    for number, line in enumerate(tqdm(source, total=total, unit="task", file=sys.stderr,
                                       disable=None, desc="classifying"), 1):
        if not line.strip():
            continue
        record: dict[str, Any]
        try:
            parsed = json.loads(line)
            record = parsed if isinstance(parsed, dict) else {"task": parsed}
        except json.JSONDecodeError as exc:
            record = {"line": number, "raw": line.rstrip("\n"), "error": f"invalid JSON: {exc.msg}"}
            failed += 1
        else:
            try:
                record["decision"] = router.classify(record.get("task"), history=record.get("history"))
                record["decision"] = record["decision"].to_dict()
                done += 1
            except DmrError as exc:
                record["error"] = str(exc)
                failed += 1
        out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    return done, failed


@cli.command()
@click.argument("text", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.option("--preset", help="Use a domain preset (see `dmr presets`).")
@click.option("--batch", "batch", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSONL file of {\"task\": ...} objects to classify.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where --batch writes its results (default: stdout).")
@config_option
def classify(text: str | None, as_json: bool, preset: str | None, batch: Path | None,
             out: Path | None, config_path: Path | None) -> None:
    """Classify TEXT (or stdin with no TEXT or with '-') and print the routing decision."""
    router = build_router(config_path, preset)
    if batch is not None:
        if text:
            raise click.UsageError("give either TEXT or --batch, not both")
        with batch.open(encoding="utf-8", errors="replace") as source:
            total = sum(1 for _ in source)
        with batch.open(encoding="utf-8", errors="replace") as source:
            if out is None:
                done, failed = _batch(router, source, sys.stdout, total)
            else:
                with out.open("w", encoding="utf-8") as sink:
                    done, failed = _batch(router, source, sink, total)
        click.echo(f"classified {done} task(s), {failed} failed" + (f"; wrote {out}" if out else ""), err=True)
        if failed and not done:
            sys.exit(1)
        return
    if out is not None:
        raise click.UsageError("--out goes with --batch")
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
