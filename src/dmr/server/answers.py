"""Which model answered a decision that a fallback answered, for the feedback on it.

When a routed request's model fails and a fallback answers (another provider's model at the same
tier, or with ``escalate_on_failure`` a higher tier), ``x-dmr-tier`` stays the decision's tier and
the decision log holds the decision's model. Feedback sent with the decision id alone would then
rate a model that never answered, and with ``escalate_on_failure`` a tier that never answered,
which no client can name: the proxy remembers what answered the latest of those decisions and
fills it in (:meth:`AnswerBook.fill`). It lives in this process only; an outcome sent to another
replica rates the decision's own model, as the client's ``model``/``tier`` say otherwise.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from dmr.types import Decision, ModelTier

__all__ = ["AnswerBook"]


class AnswerBook:
    """The model and tier that answered the latest ``size`` decisions a fallback answered. Used
    on the event loop only, so it needs no lock."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._answers: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def note(self, registry: Any, decision: Decision, provider: str, model: str) -> None:
        """``model`` at ``provider`` answered ``decision`` in place of its own model."""
        self._answers[decision.decision_id] = (model, str(_tier_of(registry, decision, provider, model)))
        self._answers.move_to_end(decision.decision_id)
        while len(self._answers) > self._size:
            self._answers.popitem(last=False)

    def fill(self, outcome: dict[str, Any]) -> dict[str, Any]:
        """``outcome`` (the arguments of ``Router.record_outcome``) with the model and tier that
        answered its decision, when a fallback did and the client named no tier and no other model."""
        answered = self._answers.get(outcome["decision_id"])
        if answered is None or outcome.get("tier") is not None or outcome.get("model") not in (None, answered[0]):
            return outcome
        return {**outcome, "model": answered[0], "tier": answered[1]}


def _tier_of(registry: Any, decision: Decision, provider: str, model: str) -> ModelTier:
    """The tier ``model`` serves at ``provider``: the decision's when it serves that one (a
    fallback at another provider), else the lowest it serves (an escalation)."""
    try:
        tiers = registry.tiers_of(model, provider=provider)
        return decision.tier if not tiers or decision.tier in tiers else tiers[0]
    except (KeyError, ValueError):  # the answer went out already: never fail it for the bookkeeping
        return decision.tier
