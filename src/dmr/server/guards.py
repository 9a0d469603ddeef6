"""The Router's refusals, applied to what the Router does not see.

A named model is not classified at all, so before a request leaves the proxy:

- the PII block (``pii_policy: {block: true}``) scans the client's turns (every turn but the
  assistant's and tools', as ``Router.classify`` scans a history) with the Router's own detector,
  and refuses as the Router does, naming the message; a routed request gets the same check here,
  so that its refusal names the message too (``messages[2]``, not the Router's ``history[1]``);
- a named model is refused when the budget is spent and ``budget_policy.on_stop`` is ``raise``
  (a routed request gets that refusal from ``Router.classify``).

Both run in a worker thread: the scan is CPU work and the budget may be a store round trip.
"""

from __future__ import annotations

from typing import Any, Iterable

from dmr.errors import BudgetExceededError, PIIBlockedError
from dmr.pii import client_turns

__all__ = ["refuse_personal_data", "refuse_personal_texts", "refuse_when_spent"]


def refuse_personal_data(router: Any, messages: list[dict[str, Any]]) -> None:
    """Raise :class:`PIIBlockedError` when the PII policy blocks and a scanned turn has PII; the
    refusal names the message and its role."""
    _refuse(router, ((f"messages[{i}] ({messages[i].get('role')})", text) for i, text in client_turns(messages)))


def refuse_personal_texts(router: Any, texts: list[str], field: str) -> None:
    """The same for plain texts (an embeddings ``input``), named ``field[index]``."""
    _refuse(router, ((f"{field}[{i}]", text) for i, text in enumerate(texts)))


def _refuse(router: Any, named: Iterable[tuple[str, str]]) -> None:
    # The Router keeps its detector private; the decision log's scrubber reads it the same way.
    detector = getattr(router, "_pii", None)
    if detector is None or not getattr(router, "_pii_block", False):
        return
    for name, text in named:
        kinds = detector.kinds(text)
        if kinds:
            raise PIIBlockedError(f"{name} contains personal data ({', '.join(kinds)}) and the PII policy blocks it",
                                  kinds)


def refuse_when_spent(router: Any) -> None:
    """Raise :class:`BudgetExceededError` when the Router's budget is spent and its policy says
    ``on_stop: raise``, as ``Router.classify`` would."""
    budget = getattr(router, "budget", None)
    if budget is not None and budget.policy["on_stop"] == "raise" and budget.stopped:
        raise BudgetExceededError(f"budget of ${budget.limit_usd:g} used up (${budget.spent_usd:.4f} spent)")
