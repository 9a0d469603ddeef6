"""The context window: a decision's model must hold the input and room for the answer.

A 200,000-token document routed to a model with a 32,768-token window is refused by its provider,
however simple the task. When the registry gives the chosen model a ``context_window`` and the task
with its history (counted by the model's tokenizer), plus the answer length planned for its
complexity, does not fit, the decision moves to the lowest higher tier of the same provider whose
model holds it (``context_window:low->high``), never above a ceiling (a tenant's ``max_tier``, or
the tier a budget held the decision at). When no tier in reach holds it, the decision goes to the
largest window in reach and says so (``context_window_exceeded``): the token count of a model
without its own tokenizer is an estimate, and the largest window is then the best chance.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from dmr.messages import history_turns
from dmr.registry import ModelRegistry
from dmr.tokens import estimate_output_tokens
from dmr.types import ModelTier

__all__ = ["fit_context"]

# A route: (provider, model, tier, input price, output price, token counter), as Router._route gives.
Route = tuple[Any, ...]
# A tokenizer gives at most one token per UTF-8 byte, and a character is at most four bytes: an
# input whose characters, times four, fit needs no counting.
_MAX_TOKENS_PER_CHAR = 4


def fit_context(route: Route, route_for: Callable[[str, ModelTier], Route | None], registry: ModelRegistry,
                text: str, history: Sequence[Any] | None, complexity: Any,
                ceiling_of: Callable[[], ModelTier | None], region: str | None, policies: list[str],
                reasons: list[str]) -> Route:
    """``route``, or the route of a higher tier of its provider whose model's context window holds
    ``text``, the texts of the ``history`` turns (a Router history) and the planned answer (see the
    module's docstring). ``ceiling_of`` gives the highest tier in reach (None: any), asked only
    when the input does not fit."""
    provider, model, tier, count = route[0], route[1], route[2], route[5]
    window = _window(registry, model)
    if window is None:
        return route
    answer = estimate_output_tokens(complexity)
    turns = [turn for _, turn in history_turns(history)] if history else []
    chars = len(text) + sum(len(turn) for turn in turns)
    if chars * _MAX_TOKENS_PER_CHAR + answer <= window:
        return route
    needed = count(text) + sum(count(turn) for turn in turns) + answer
    if needed <= window:
        return route
    largest, largest_window = route, window
    ceiling = ceiling_of()
    for higher in ModelTier.levels():
        if higher.rank <= tier.rank or (ceiling is not None and higher.rank > ceiling.rank):
            continue
        other = route_for(provider, higher)
        if other is None or other[2] is not higher or other[1] == model:
            continue
        if region is not None and region not in registry.regions_of(other[1], provider=provider):
            continue
        other_window = _window(registry, other[1])
        if other_window is None or other_window >= needed:
            policies.append(f"context_window:{tier}->{higher}")
            reasons.append(f"the input (~{needed - answer:,} tokens, and ~{answer:,} for the answer) does not fit "
                           f"{model}'s context window ({window:,}): raised to {higher} ({other[1]})")
            return other
        if other_window > largest_window:
            largest, largest_window = other, other_window
    policies.append(f"context_window_exceeded:{largest[2]}")
    reasons.append(f"the input (~{needed - answer:,} tokens, and ~{answer:,} for the answer) fits no model in reach; "
                   f"{largest[1]} has the largest context window ({largest_window:,})")
    return largest


def _window(registry: ModelRegistry, model: str) -> int | None:
    spec = registry.model(model)
    return spec.context_window if spec is not None else None
