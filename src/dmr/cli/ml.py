"""``dmr train`` and ``dmr eval``: train a Layer 3 head on labelled JSONL, and score a router on it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from dmr.cli._common import (
    build_router,
    check_engine,
    config_option,
    echo_json,
    engine_options,
    json_option,
    ray_workers,
    writable_file,
)
from dmr.cli.main import cli
from dmr.errors import InputError


def _table(report: dict[str, Any]) -> str:
    rows = [("task type", report["type_accuracy"], report["type_macro_f1"]),
            ("complexity", report["complexity_accuracy"], report["complexity_macro_f1"])]
    lines = ["               accuracy  macro-F1"]
    lines += [f"{name:<14} {acc:>8.3f}  {f1:>8.3f}" for name, acc, f1 in rows]
    lines.append(f"tier           {report['tier_accuracy']:>8.3f}")
    if "tier_above" in report:
        lines.append(f"  routed above its tier {report['tier_above']:>6.1%}, below {report['tier_below']:.1%}")
    lines.append(f"ECE            {report['ece']:>8.3f}")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "    -" if value is None else f"{value:>5.1%}"


def _metrics_line(name: str, m: dict[str, Any], width: int) -> str:
    apgr = "    -" if m["apgr"] is None else f"{m['apgr']:.3f}"
    return (f"  {name:<{width}}  APGR {apgr}   CPT(50%) {_pct(m['cpt50'])}   CPT(80%) {_pct(m['cpt80'])}"
            f"   CS@95 {_pct(m['cs95'])}")


def _outcome_table(report: dict[str, Any]) -> str:
    prices = report["prices"]
    unscored = report.get("unscored_excluded")
    unscored = f", {unscored} without scores of both models" if unscored else ""
    header = (f"{report['n']} prompts ({report['contaminated_excluded']} contaminated{unscored} left out); "
              f"strong {report['strong']} ({prices[report['strong']]:g}), weak {report['weak']} "
              f"({prices[report['weak']]:g}) USD per 1M tokens, (input + output) / 2")
    lines = [header]
    for sub in report["subsets"]:
        lines.append(f"{sub['benchmark']} (n={sub['n']}): weak {sub['weak_quality']:.3f}, strong {sub['strong_quality']:.3f}")
        width = max(map(len, sub["routers"]))
        lines += [_metrics_line(name, m, width) for name, m in sub["routers"].items()]
    pool = report.get("pool")
    if pool:
        lines.append(f"pool of {len(pool['models'])} (n={pool['n']}), cheapest first:")
        lines += [f"  {m:<30} quality {s['quality']:.3f}   cost {s['cost']:g}" for m, s in pool["singles"].items()]
        saved = "not reached" if pool["cost_saved"] is None else f"{pool['cost_saved']:.1%}"
        lines.append(f"  cost saved against {pool['best_single']} at 95% of its quality "
                     f"({pool['target_quality']:.3f}): {saved}")
        lines.append("  frontier (cost -> quality): " + ", ".join(
            f"{p['cost']:.3g}->{p['quality']:.3f}" for p in pool["frontier"]))
    return "\n".join(lines)


def _prices(path: Path | None) -> dict[str, float] | None:
    from dmr.evaluate.outcomes import load_prices

    return load_prices(path) if path is not None else None


def _models_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [m.strip() for m in value.split(",") if m.strip()]
    if len(names) < 2:
        raise click.UsageError("name at least two models, comma-separated")
    return names


def _plot_target(plot: Path) -> None:
    """Before any work: --plot needs matplotlib and a path it can write."""
    from dmr.errors import NotAvailableError

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise NotAvailableError("--plot needs matplotlib: pip install 'dynamic-model-router[plot]'") from None
    writable_file(plot, "--plot", plot=True)


def _eval_outcomes(paths: tuple[Path, ...], *, config_path: Path | None, preset: str | None, strong: str | None,
                   weak: str | None, pool: str | None, prices_path: Path | None, benchmark: str | None,
                   outcome_model: Path | None, difficulty_from: str | None, as_json: bool, plot: Path | None,
                   engine: str | None = None, address: str | None = None, workers: int | None = None) -> None:
    from tqdm import tqdm

    from dmr.evaluate.outcomes import load_outcomes
    from dmr.evaluate.runner import evaluate_outcomes

    scorer = difficulty_from or ("outcome-model" if outcome_model else "router")
    if engine == "ray" and scorer != "router":
        raise click.UsageError(f"--engine ray classifies with the router; --difficulty-from {scorer} does not")
    data = load_outcomes(paths)
    if benchmark is not None:
        if benchmark not in data.benchmarks:
            raise click.UsageError(f"no rows of benchmark {benchmark!r} (found: {', '.join(data.benchmarks) or 'none'})")
        data = data.subset(benchmark)
    if not data.rows:
        raise InputError("no usable outcome rows (rows need a prompt and scores of two or more models)")
    if plot is not None:
        _plot_target(plot)
    model = router = None
    if scorer == "outcome-model":
        if outcome_model is None:
            raise click.UsageError("--difficulty-from outcome-model needs --outcome-model PATH")
        from dmr.ml.outcomes import OutcomeModel

        model = OutcomeModel.load(outcome_model)
    elif scorer == "router":
        router = build_router(config_path, preset)
    with ray_workers(engine, config_path, preset, address, workers) as spread, \
            tqdm(total=len(data.rows), unit="prompt", file=sys.stderr, disable=None, desc="scoring") as bar:
        report = evaluate_outcomes(data, strong=strong, weak=weak, pool=_models_list(pool),
                                   prices=_prices(prices_path), scorer=scorer, router=router, model=model,
                                   progress=bar.update, workers=spread)
    if plot is not None:
        from dmr.evaluate.plot import plot_outcomes

        plot_outcomes(report, plot)
    if as_json:
        echo_json(report)
        return
    click.echo(_outcome_table(report))
    if plot is not None:
        click.echo(f"wrote {plot}")


def _train_outcomes(paths: tuple[Path, ...], from_log: str | None, output: Path, models: str | None,
                    prices_path: Path | None, folds: int, as_json: bool, config_path: Path | None,
                    neighbours: bool = True) -> None:
    from tqdm import tqdm

    from dmr.evaluate.outcomes import OutcomeSet, load_outcomes, rows_from_dicts
    from dmr.evaluate.runner import train_outcome_model

    if from_log is not None:
        if paths:
            raise click.UsageError("give either --outcomes or --from-log")
        from dmr.store.outcomes import training_rows
        source: Any = from_log
        if not from_log:  # no PATH: the decision log the configured router writes
            source = build_router(config_path).decision_logger
            if source is None:
                raise click.UsageError("--from-log without PATH needs a decision_logger in dmr.yaml (or --config)")
        data: OutcomeSet = rows_from_dicts(training_rows(source), source=from_log or "the configured decision log")
    else:
        data = load_outcomes(paths)
    if not data.rows:
        raise InputError("no usable outcome rows to train on" + (
            " in the decision log: record scores with router.record_outcome(decision_id, score)" if from_log is not None
            else ""))
    with tqdm(total=folds + 1, unit="fit", file=sys.stderr, disable=None, desc="training") as bar:
        model, report = train_outcome_model(data, models=_models_list(models), prices=_prices(prices_path),
                                            folds=folds, progress=lambda stage, step: bar.update(1),
                                            **({} if neighbours else {"neighbours": None}))
    held = report["heldout"]
    try:
        path = model.save(output, trained_on=f"{report['rows']} rows of {', '.join(data.sources)}",
                          heldout=held["routers"]["outcome_model"] if held else None)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    report["path"] = str(path)
    if as_json:
        echo_json(report)
        return
    click.echo(f"wrote {path} ({report['rows']} rows, {report['contaminated_excluded']} contaminated left out; "
               f"models cheapest to best: {', '.join(report['models'])})")
    if not report["encoder"]:
        encoder = "none"
    elif report["prototypes"]:
        encoder = f"{report['encoder']} as {report['prototypes']} prototype features"
    else:
        encoder = f"{report['encoder']}, raw embedding"
    near = report["neighbours"]
    if near["blend"]:
        blend = f"{near['blend']:g} of each estimate from the {near['k']} most similar training prompts"
    else:
        blend = "no neighbour blend" if near["tried"] else "neighbour blend off"
    click.echo(f"sentence encoder: {encoder}; ridge penalty {report['l2']:g}; {blend} "
               "(all chosen by inner cross-validation)")
    if held is None:
        click.echo(f"no held-out metrics: no row scores both {report['models'][0]} and {report['models'][-1]}")
        return
    click.echo(f"{folds}-fold held-out, {report['models'][0]} vs {report['models'][-1]}: weak "
               f"{held['weak_quality']:.3f}, strong {held['strong_quality']:.3f}")
    width = max(map(len, held["routers"]))
    for name, m in held["routers"].items():
        click.echo(_metrics_line(name, m, width))
    if not report["priced"]:
        click.echo("(CS@95 left out: no prices for these models; pass --prices FILE)")
    click.echo(f"use it with `dmr eval --outcomes F --outcome-model {path}` or OutcomeModel.load({str(path)!r})")


@cli.command("train")
@click.option("--data", "data", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Labelled JSONL (task, task_type, complexity), or a folder of *.jsonl; repeatable.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the model (.npz arrays + .json metadata); default dmr-l3-head.npz, or "
                   "dmr-outcome-model.npz for an outcome model.")
@click.option("--max-iter", type=click.IntRange(1, 10_000), default=150, show_default=True)
@json_option("Print the report as JSON.")
@click.option("--outcomes", "outcomes", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Train an outcome model on an outcome JSONL (id, prompt, outcomes {model: score}); repeatable.")
@click.option("--from-log", "from_log", is_flag=False, flag_value="", default=None, metavar="[LOG]",
              help="Train an outcome model on the outcomes recorded in a decision log: a SQLite or JSONL path, "
              "postgresql://user@host/db, s3://bucket/prefix/ or kafka://host:port/topic (default: the configured "
              "log).")
@click.option("--models", default=None, help="Models or tiers, cheapest to best, comma-separated "
              "(default: every model in the data, ordered by price).")
@click.option("--prices", "prices_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Price file (model -> [input, output, source], USD per 1M); default: the model registry.")
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True,
              help="Cross-validation folds for the held-out report of an outcome model.")
@click.option("--encoder", default="default", show_default=True, metavar="DIR|default|none",
              help="Sentence encoder for a Layer 3 head: the shipped static one, a directory (ONNX export, "
                   "sentence-transformers or static), or none (n-grams and signals only).")
@click.option("--capability", "capability", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Capability-labelled JSONL (task, needs 0-3) for the head's difficulty output; repeatable.")
@click.option("--type-data", "type_data", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="More JSONL rows (task, task_type) that teach the head the task type only (their complexity, "
                   "if any, is not used); repeatable.")
@click.option("--no-neighbours", "no_neighbours", is_flag=True,
              help="Outcome model: never blend in the most similar training prompts, so the file stores none "
                   "of their embeddings.")
@config_option
def train_cmd(data: tuple[Path, ...], output: Path | None, max_iter: int, as_json: bool, outcomes: tuple[Path, ...],
              from_log: str | None, models: str | None, prices_path: Path | None, folds: int, encoder: str,
              capability: tuple[Path, ...], type_data: tuple[Path, ...], no_neighbours: bool,
              config_path: Path | None) -> None:
    """Train a Layer 3 head (--data; the rows whose sha256 % 5 == 0 are held out and scored), or an
    outcome model (--outcomes or --from-log; scored by k-fold cross-validation, then fitted on all)."""
    from tqdm import tqdm

    if outcomes or from_log is not None:
        if data:
            raise click.UsageError("give either --data (a Layer 3 head) or --outcomes/--from-log (an outcome model)")
        output = writable_file(output or Path("dmr-outcome-model.npz"), "--output", inputs=outcomes, model=True)
        _train_outcomes(outcomes, from_log, output, models, prices_path, folds, as_json, config_path,
                        neighbours=not no_neighbours)
        return
    if not data:
        raise click.UsageError("missing --data (labelled JSONL), or --outcomes/--from-log for an outcome model")
    if no_neighbours:
        raise click.UsageError("--no-neighbours applies to an outcome model (--outcomes or --from-log)")
    output = writable_file(output or Path("dmr-l3-head.npz"), "--output", model=True,
                           inputs=[f for p in (*data, *capability, *type_data)
                                   for f in (sorted(p.glob("*.jsonl")) if p.is_dir() else [p])])

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
        report = train_and_save(list(data), output, max_iter=max_iter, progress=progress, encoder=encoder,
                                capability=list(capability) or None, type_data=list(type_data) or None)
    finally:
        bar.close()
    if as_json:
        echo_json(report)
        return
    types = f", {report['type_rows']} more for the task type" if report["type_rows"] else ""
    click.echo(f"wrote {report['path']} ({report['train_rows']} training rows{types}, {report['heldout_rows']} held out)")
    if report["heldout"]:
        click.echo("held-out metrics:")
        click.echo(_table(report["heldout"]))
    needs = report["needs"]
    if needs and needs.get("heldout"):
        h = needs["heldout"]
        click.echo(f"difficulty (needs) output, {h['rows']} held-out rows: Spearman {h['spearman']}, "
                   f"AUC(needs>=2) {h['auc_needs_2']}, MAE {h['mae']}")
    extra = "" if encoder in ("default", "none") else f", layer3_embedding_model={encoder!r}"
    click.echo(f"use it with Router(layer3_head={report['path']!r}{extra}) or `layer3_head: {report['path']}` in dmr.yaml")


def _echo_duplicates(duplicates: int, conflicts: list[dict[str, Any]], shown: int = 5) -> None:
    if duplicates:
        click.echo(f"{duplicates} duplicate row(s) left out: each task text is scored once, by its first row")
    if conflicts:
        click.echo(f"{len(conflicts)} task text(s) labelled differently by different rows (scored by the first):")
    for conflict in conflicts[:shown]:
        task = conflict["task"] if len(conflict["task"]) <= 60 else conflict["task"][:59] + "…"
        labels = " / ".join(f"{label['task_type']} · {label['complexity']}" for label in conflict["labels"])
        click.echo(f"  {task!r}: {labels}")
    if len(conflicts) > shown:
        click.echo(f"  and {len(conflicts) - shown} more (all of them in --json's label_conflicts)")


@cli.command("eval")
@click.option("--data", "data", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Labelled JSONL (task, task_type, complexity), or a folder of *.jsonl; repeatable.")
@click.option("--heldout-only", is_flag=True, help="Score only the held-out split (sha256 % 5 == 0).")
@json_option("Print the full report as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the confusion matrices and a reliability diagram as a PNG (needs matplotlib).")
@config_option
@click.option("--preset", default=None, help="Use a domain preset (see `dmr presets`).")
@click.option("--outcomes", "outcomes", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Score routing on an outcome JSONL (id, prompt, outcomes {model: score}) instead; repeatable.")
@click.option("--strong", default=None, help="The strong model (default: the dearest model scored).")
@click.option("--weak", default=None, help="The weak model (default: the cheapest model scored).")
@click.option("--pool", default=None, help="Models to route between by difficulty bands, comma-separated.")
@click.option("--prices", "prices_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Price file (model -> [input, output, source], USD per 1M); default: the model registry.")
@click.option("--benchmark", default=None, help="Only the rows of this benchmark.")
@click.option("--outcome-model", "outcome_model", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Score prompts with a trained outcome model instead of Decision.difficulty.")
@click.option("--difficulty-from", "difficulty_from", default=None,
              type=click.Choice(["router", "outcome-model", "length", "random"]),
              help="Where the swept score comes from (default: router, or outcome-model with --outcome-model).")
@engine_options
def eval_cmd(data: tuple[Path, ...], heldout_only: bool, as_json: bool, plot: Path | None,
             config_path: Path | None, preset: str | None, outcomes: tuple[Path, ...], strong: str | None,
             weak: str | None, pool: str | None, prices_path: Path | None, benchmark: str | None,
             outcome_model: Path | None, difficulty_from: str | None, engine: str | None, ray_address: str | None,
             workers: int | None) -> None:
    """Score the configured router on labelled tasks: accuracy, macro-F1, tier accuracy, the share
    each layer decided, calibration (ECE) and confusion matrices. With --outcomes: the cost-quality
    curve against the per-prompt outcomes of two models (APGR, CPT(50%), CPT(80%), CS@95), beside
    random, length and oracle routers, per benchmark; or a pool of models with --pool."""
    from tqdm import tqdm

    check_engine(engine, ray_address, workers)
    engine_at = {"engine": engine, "address": ray_address, "workers": workers}
    if outcomes:
        if data:
            raise click.UsageError("give either --data (labelled tasks) or --outcomes (outcome data)")
        _eval_outcomes(outcomes, config_path=config_path, preset=preset, strong=strong, weak=weak, pool=pool,
                      prices_path=prices_path, benchmark=benchmark, outcome_model=outcome_model,
                      difficulty_from=difficulty_from, as_json=as_json, plot=plot, **engine_at)
        return
    if not data:
        raise click.UsageError("missing --data (labelled JSONL), or --outcomes for outcome data")

    from dmr.ml.evaluate import distinct_examples, evaluate_router
    from dmr.ml.train import is_heldout, load_examples

    if plot is not None:
        _plot_target(plot)
    examples = load_examples(list(data))
    if not examples:
        raise click.UsageError("no labelled rows to evaluate")
    if heldout_only:
        held = [e for e in examples if is_heldout(e.task)]
        if not held:
            raise click.UsageError(f"none of the {len(examples)} rows is in the held-out split (the rows whose task's "
                                   "sha256 % 5 == 0); drop --heldout-only to score them all")
        examples = held
    examples, duplicates, conflicts = distinct_examples(examples)
    router = build_router(config_path, preset)
    with ray_workers(engine, config_path, preset, ray_address, workers) as spread, \
            tqdm(total=len(examples), unit="task", file=sys.stderr, disable=None, desc="evaluating") as bar:
        report = evaluate_router(router, examples, progress=lambda done: bar.update(done - bar.n), workers=spread)
    report = {"n": report["n"], "duplicates_dropped": duplicates, "label_conflicts": conflicts, **report}
    if plot is not None:
        from dmr.ml.plots import plot_report

        plot_report(report, plot)
    if as_json:
        echo_json(report)
        return
    click.echo(f"{report['n']} tasks, layers {', '.join(router.layers)}")
    _echo_duplicates(duplicates, conflicts)
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
