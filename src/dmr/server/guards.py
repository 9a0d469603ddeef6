"""The Router's refusals, applied to what the Router does not see.

``Router.classify`` looks at the task (the latest user turn) only, and a model the client names is
not classified at all. Both are forwarded whole, so before a request leaves the proxy:

- the PII block (``pii_policy: {block: true}``) looks at the system prompt and every user turn,
  with the Router's own detector (its patterns, its preset's), and refuses as the Router does;
- a named model is refused when the budget is spent and ``budget_policy.on_stop`` is ``raise``
  (a routed request gets that refusal from ``Router.classify``).

Both run in a worker thread: the scan is CPU work and the budget may be a store round trip.
"""

from __future__ import annotations

from typing import Any

from dmr.errors import BudgetExceededError, InputError, PIIBlockedError
from dmr.integrations.target import task_of

__all__ = ["refuse_personal_data", "refuse_when_spent"]

# What the client wrote; assistant and tool turns are the models' own output.
_SCANNED_ROLES = frozenset({"system", "developer", "user", "human"})


def refuse_personal_data(router: Any, messages: list[dict[str, Any]]) -> None:
    """Raise :class:`PIIBlockedError` when the PII policy blocks and a scanned turn has PII."""
    # The Router keeps its detector private; the decision log's scrubber reads it the same way.
    detector = getattr(router, "_pii", None)
    if detector is None or not getattr(router, "_pii_block", False):
        return
    for index, message in enumerate(messages):
        role = message.get("role")
        if not isinstance(role, str) or role.lower() not in _SCANNED_ROLES:
            continue
        try:
            text = task_of([message])
        except InputError:  # no text in this turn
            continue
        kinds = detector.kinds(text)
        if kinds:
            raise PIIBlockedError(f"messages[{index}] ({role}) contains personal data ({', '.join(kinds)}) and the "
                                  "PII policy blocks it", kinds)


def refuse_when_spent(router: Any) -> None:
    """Raise :class:`BudgetExceededError` when the Router's budget is spent and its policy says
    ``on_stop: raise``, as ``Router.classify`` would."""
    budget = getattr(router, "budget", None)
    if budget is not None and budget.policy["on_stop"] == "raise" and budget.stopped:
        raise BudgetExceededError(f"budget of ${budget.limit_usd:g} used up (${budget.spent_usd:.4f} spent)")
