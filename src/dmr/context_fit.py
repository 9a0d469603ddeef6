"""What the chosen model must be able to do: hold the input, and do what the call needs.

**Context window.** A 200,000-token document routed to a model with a 32,768-token window is
refused by its provider, however simple the task. When the registry gives the chosen model a
``context_window`` and the task with its history (counted by the model's tokenizer), plus the
answer length planned for its complexity, does not fit, the decision moves to the lowest higher
tier of the same provider whose model holds it (``context_window:low->high``).

**Capabilities.** A call may need its model to see images (``vision``), call tools
(``function_calling``) or follow a JSON schema (``json_schema``): ``Router.classify(...,
needs=[...])``, which the proxy fills in from the request. A model whose registry entry says it
lacks one (``supports_vision: false``; unknown counts as able) is passed over the same way
(``needs_vision:low->high``).

Never above a ceiling: a tenant's ``max_tier``, or what a budget allows. When no tier in reach
will do, the decision says so (``context_window_exceeded:<tier>``, ``needs_unmet:vision``) and goes
to the largest window in reach among the models with the capabilities (the token count of a model
without its own tokenizer is an estimate, so the largest window is then the best chance).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Sequence

from dmr.errors import InputError
from dmr.messages import history_turns
from dmr.registry import ModelRegistry
from dmr.tokens import estimate_output_tokens
from dmr.types import ModelTier

__all__ = ["check_needs", "fit_context", "lacking", "overflows"]

# A route: (provider, model, tier, input price, output price, token counter), as Router._route gives.
Route = tuple[Any, ...]
# A tokenizer gives at most one token per UTF-8 byte, and a character is at most four bytes: an
# input whose characters, times four, fit needs no counting.
_MAX_TOKENS_PER_CHAR = 4
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def check_needs(needs: Iterable[str] | None) -> frozenset[str]:
    """``needs`` as a set of capability names (``vision`` for the registry's ``supports_vision``);
    :class:`~dmr.errors.InputError` for anything else."""
    if needs is None:
        return frozenset()
    if isinstance(needs, str):
        needs = [needs]
    names = frozenset(needs)
    bad = sorted(repr(n) for n in names if not isinstance(n, str) or not _NAME.fullmatch(n.removeprefix("supports_")))
    if bad:
        raise InputError(f"needs: capability names such as 'vision' or 'function_calling' expected, got {', '.join(bad)}")
    return frozenset(n.removeprefix("supports_") for n in names)


def fit_context(route: Route, route_for: Callable[[str, ModelTier], Route | None], registry: ModelRegistry,
                text: str, history: Sequence[Any] | None, complexity: Any, needs: frozenset[str],
                ceiling_of: Callable[[], ModelTier | None], region: str | None, policies: list[str],
                reasons: list[str]) -> Route:
    """``route``, or the route of a higher tier of its provider whose model holds ``text``, the
    texts of the ``history`` turns (a Router history) and the planned answer in its context window
    and lacks none of ``needs`` (see the module's docstring). ``ceiling_of`` gives the highest tier
    in reach (None: any), asked only when ``route``'s model will not do."""
    provider, model, tier = route[0], route[1], route[2]
    missing = lacking(registry, model, needs)
    needed, answer = _needed(registry, model, route[5], text, history, complexity)
    window = _window(registry, model)
    if not missing and needed is None:
        return route
    ceiling = ceiling_of()
    largest, largest_window = None, -1
    for higher in ModelTier.levels():
        if higher.rank <= tier.rank or (ceiling is not None and higher.rank > ceiling.rank):
            continue
        other = route_for(provider, higher)
        if other is None or other[2] is not higher or other[1] == model or lacking(registry, other[1], needs):
            continue
        if region is not None and region not in registry.regions_of(other[1], provider=provider):
            continue
        other_window = _window(registry, other[1])
        if needed is None or other_window is None or other_window >= needed:
            for name in sorted(missing):
                policies.append(f"needs_{name}:{tier}->{higher}")
                reasons.append(f"{model} cannot do {name} (its registry entry says so): raised to {higher} ({other[1]})")
            if needed is not None:
                policies.append(f"context_window:{tier}->{higher}")
                reasons.append(f"the input (~{needed - answer:,} tokens, and ~{answer:,} for the answer) does not fit "
                               f"{model}'s context window ({window:,}): raised to {higher} ({other[1]})")
            return other
        if other_window > largest_window:
            largest, largest_window = other, other_window
    if missing:
        policies.append("needs_unmet:" + ",".join(sorted(missing)))
        reasons.append(f"{model} cannot do {', '.join(sorted(missing))}, nor can any model in reach")
    if needed is not None:
        if largest is None or missing or largest_window <= (window or 0):
            largest, largest_window = route, window or 0
        policies.append(f"context_window_exceeded:{largest[2]}")
        reasons.append(f"the input (~{needed - answer:,} tokens, and ~{answer:,} for the answer) fits no model in "
                       f"reach; {largest[1]} has the largest context window ({largest_window:,})")
        return largest
    return route


def _needed(registry: ModelRegistry, model: str, count: Callable[[str], int], text: str,
            history: Sequence[Any] | None, complexity: Any) -> tuple[int | None, int]:
    """The tokens the input and the planned answer take when they overflow ``model``'s window
    (None: they fit, or its window is unknown), counted by ``count``, and the answer's share of them."""
    window = _window(registry, model)
    answer = estimate_output_tokens(complexity)
    if window is None:
        return None, answer
    turns = [turn for _, turn in history_turns(history)] if history else []
    if (len(text) + sum(len(turn) for turn in turns)) * _MAX_TOKENS_PER_CHAR + answer <= window:
        return None, answer
    needed = count(text) + sum(count(turn) for turn in turns) + answer
    return (needed if needed > window else None), answer


def overflows(registry: ModelRegistry, model: str, count: Callable[[str], int], text: str,
              history: Sequence[Any] | None, complexity: Any) -> bool:
    """Whether ``text``, its ``history`` and the answer planned for ``complexity`` overflow the
    context window the registry gives ``model`` (False when it gives none)."""
    return _needed(registry, model, count, text, history, complexity)[0] is not None


def lacking(registry: ModelRegistry, model: str, needs: frozenset[str]) -> set[str]:
    """Which of ``needs`` the registry says ``model`` cannot do."""
    if not needs:
        return set()
    spec = registry.model(model)
    capabilities = spec.capabilities if spec is not None else {}
    return {name for name in needs if capabilities.get(f"supports_{name}") is False}


def _window(registry: ModelRegistry, model: str) -> int | None:
    spec = registry.model(model)
    return spec.context_window if spec is not None else None
