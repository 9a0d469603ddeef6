"""The work behind ``dmr eval --outcomes`` and ``dmr train --outcomes``, as library calls.

:func:`evaluate_outcomes` scores a router (or a trained outcome model, or a baseline) on outcome
data and returns a JSON-ready report; :func:`train_outcome_model` reports k-fold held-out metrics
of an :class:`~dmr.ml.outcomes.OutcomeModel` and then fits it on every row.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from dmr.errors import InputError
from dmr.evaluate.curves import length_scores, random_scores
from dmr.evaluate.harness import compare, cross_validated, pool_report
from dmr.evaluate.outcomes import (
    OutcomeRow,
    OutcomeSet,
    registry_prices,
    resolve_prices,
)

__all__ = ["SCORERS", "evaluate_outcomes", "pick_pair", "router_scorer", "train_outcome_model"]

SCORERS = ("router", "outcome-model", "length", "random")
Progress = Callable[[int], None]


def pick_pair(data: OutcomeSet, strong: str | None, weak: str | None, pool: Sequence[str] | None,
              prices: dict[str, float] | None) -> tuple[str, str]:
    """The strong and weak model: as given, else the dearest and cheapest of the pool, else of the
    models scored in the data (by price)."""
    if strong and weak:
        return strong, weak
    candidates = list(pool or data.models)
    if len(candidates) < 2:
        raise InputError("outcome data needs scores of at least two models")
    if not pool and len(candidates) > 2:
        raise InputError(f"the data scores {len(candidates)} models ({', '.join(candidates)}): name --strong and "
                         "--weak, or give --pool")
    known = resolve_prices(candidates, prices)
    ranked = sorted(candidates, key=lambda m: (known[m], m))
    return strong or ranked[-1], weak or ranked[0]


def _chunked(score_prompts: Callable[[list[str]], Any], progress: Progress | None,
             chunk: int) -> Callable[[list[OutcomeRow]], list[float]]:
    """A scorer of rows from a scorer of prompts, called ``chunk`` prompts at a time."""
    def score(rows: list[OutcomeRow]) -> list[float]:
        out: list[float] = []
        for start in range(0, len(rows), chunk):
            part = [r.prompt for r in rows[start:start + chunk]]
            out.extend(float(x) for x in score_prompts(part))
            if progress is not None:
                progress(len(part))
        return out
    return score


def router_scorer(router: Any, progress: Progress | None = None, chunk: int = 512,
                  workers: Any = None) -> Callable[[list[OutcomeRow]], list[float]]:
    """Decision.difficulty of every prompt, classified ``chunk`` at a time by ``router``, or by the
    Routers of a :class:`dmr.batch.RayPool` (``workers``), several chunks at once."""
    from dmr.batch import LocalPool

    pool = workers or LocalPool(router)

    def score(rows: list[OutcomeRow]) -> list[float]:
        out: list[float] = []
        blocks = [[r.prompt for r in rows[start:start + chunk]] for start in range(0, len(rows), chunk)]
        for block, values in pool.ordered("difficulty", blocks):
            out.extend(float(x) for x in values)
            if progress is not None:
                progress(len(block))
        return out
    return score


def evaluate_outcomes(data: OutcomeSet, *, strong: str | None = None, weak: str | None = None,
                      pool: Sequence[str] | None = None, prices: dict[str, float] | None = None,
                      scorer: str = "router", router: Any = None, model: Any = None,
                      progress: Progress | None = None, workers: Any = None) -> dict[str, Any]:
    """The outcome report (see ``dmr eval --outcomes --json``). ``prices`` maps model → cost of a
    call (None: the model registry's). ``scorer`` is one of :data:`SCORERS`; ``router`` or
    ``model`` supply the first two, or for ``router`` a :class:`dmr.batch.RayPool` (``workers``)
    whose Routers classify the prompts."""
    if scorer not in SCORERS:
        raise InputError(f"unknown difficulty source {scorer!r} (known: {', '.join(SCORERS)})")
    strong, weak = pick_pair(data, strong, weak, pool, prices)
    if strong == weak:
        raise InputError("--strong and --weak name the same model")
    needed = list(dict.fromkeys([strong, weak, *(pool or ())]))
    cost = resolve_prices(needed, prices)
    if cost[strong] < cost[weak]:
        raise InputError(f"the strong model {strong!r} costs less than the weak one {weak!r} ({cost[strong]:g} "
                         f"against {cost[weak]:g} USD per 1M tokens): the strong model is the dearer one, swap them")
    rows = list(data.scored_by((strong, weak)).rows)
    if not rows:
        raise InputError(f"no row scores both {strong!r} and {weak!r}")
    if scorer == "router":
        if router is None and workers is None:
            raise InputError("scoring with the router needs a router")
        fn = router_scorer(router, progress, workers=workers)
    elif scorer == "outcome-model":
        if model is None:
            raise InputError("--difficulty-from outcome-model needs --outcome-model PATH")
        fn = _model_scorer(model, progress)
    elif scorer == "length":
        fn = _length
    else:
        fn = _random
    label = scorer
    scores_of: dict[int, float] = {}

    def remember(rs: list[OutcomeRow]) -> list[float]:
        values = list(fn(rs))
        scores_of.update({id(r): v for r, v in zip(rs, values)})
        return values

    subsets = compare(rows, {label: remember}, strong=strong, weak=weak, prices=cost)
    report: dict[str, Any] = {
        "mode": "outcomes", "sources": list(data.sources), "n": len(rows), "contaminated_excluded": data.contaminated,
        "unscored_excluded": len(data.rows) - len(rows), "strong": strong, "weak": weak, "prices": cost,
        "scorer": label, "subsets": subsets, "pool": None,
    }
    if pool:
        pool_rows = [r for r in data.scored_by(pool).rows]
        if not pool_rows:
            raise InputError(f"no row scores every pool model ({', '.join(pool)})")
        missing = [r for r in pool_rows if id(r) not in scores_of]
        extra = dict(zip(map(id, missing), fn(missing))) if missing else {}
        difficulty = [scores_of.get(id(r), extra.get(id(r), 0.0)) for r in pool_rows]
        report["pool"] = {"n": len(pool_rows), **pool_report(pool_rows, difficulty, pool, cost)}
    return report


def _length(rows: list[OutcomeRow]) -> list[float]:
    return length_scores([r.prompt for r in rows])


def _random(rows: list[OutcomeRow]) -> list[float]:
    return random_scores(len(rows))


def _model_scorer(model: Any, progress: Progress | None, chunk: int = 1024) -> Callable[[list[OutcomeRow]], list[float]]:
    return _chunked(model.difficulty, progress, chunk)


def train_outcome_model(data: OutcomeSet, *, models: Sequence[str] | None = None,
                        prices: dict[str, float] | None = None, folds: int = 5,
                        progress: Callable[[str, int], None] | None = None, **params: Any) -> tuple[Any, dict[str, Any]]:
    """Cross-validate (``folds`` by a hash of ``id``) and fit an outcome model on every row.
    Returns the model and a report with the held-out metrics of the cheapest model against the best."""
    from dmr.ml.outcomes import OutcomeModel, check_order, order_by_price

    seen = list(data.models)
    order = tuple(models) if models else order_by_price(seen, prices)
    check_order(order, seen)
    priced = [(prices[m], m) for m in order if prices and m in prices]
    if priced != sorted(priced, key=lambda pm: pm[0]):
        raise InputError("the models go cheapest first, but the prices order them "
                         + ", ".join(m for _, m in sorted(priced, key=lambda pm: pm[0])))
    rows = [r for r in data.rows if any(m in r.outcomes for m in order)]
    if len(rows) < max(4, folds):
        raise InputError(f"training needs at least {max(4, folds)} rows that score one of "
                         f"{', '.join(order)}; got {len(rows)}")
    weak, strong = order[0], order[-1]
    # Held-out metrics need rows that score both ends of the order; training uses every row.
    both = [r for r in rows if weak in r.outcomes and strong in r.outcomes]

    def fit_predict(train: list[OutcomeRow], test: list[OutcomeRow]) -> Any:
        m = OutcomeModel(**params).fit([r.prompt for r in train], [r.outcomes for r in train], models=order)
        return m.difficulty([r.prompt for r in test])

    heldout = cross_validated(rows, fit_predict, folds=folds,
                              on_fold=(lambda f: progress("fold", f + 1)) if progress else None)
    known = prices if prices is not None else registry_prices([weak, strong])
    cost = {weak: known.get(weak, 0.0), strong: known.get(strong, 1.0)}
    priced = weak in known and strong in known
    subset = None
    if both:
        score_of = {id(r): h for r, h in zip(rows, heldout)}
        subset = compare(both, {"outcome_model": lambda rs: [score_of[id(r)] for r in rs]}, strong=strong,
                         weak=weak, prices=cost, by_benchmark=False)[0]
        subset.pop("curves")
        if not priced:
            for metrics in subset["routers"].values():
                metrics["cs95"] = None
    model = OutcomeModel(**params).fit([r.prompt for r in rows], [r.outcomes for r in rows], models=order)
    if progress is not None:
        progress("fit", folds + 1)
    report = {"rows": len(rows), "contaminated_excluded": data.contaminated, "models": list(order),
              "folds": folds, "heldout": subset, "priced": priced, "l2": model.l2_, "encoder": model.encoder_,
              "prototypes": 0 if model.prototypes_ is None else len(model.prototypes_),
              "neighbours": {"k": model.neighbour_k_, "blend": model.blend_,
                             "tried": list(model.neighbour_grid_)}}
    return model, report
