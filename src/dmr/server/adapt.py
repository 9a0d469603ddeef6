"""Requests adapted to what the routed model takes.

A client of the proxy does not know which model will answer, so it cannot know that OpenAI's
reasoning models refuse ``max_tokens`` and non-default sampling, or that the chosen model's output
limit is below the one it asked for (Claude Code asks for 32,000 tokens), or that its context window
has no room for that many beside the input. When a provider answers 400 with one of those refusals
(:mod:`dmr.providers.refusals`), the proxy asks again with the request adapted, and adapts every
later request to that model the same way, without the 400 (all but the room, which is the
refused request's own).
"""

from __future__ import annotations

from typing import Any

from dmr.providers.refusals import Refusal, adapted, read_refusal
from dmr.server.routing import Destination

__all__ = ["Adaptations"]


class Adaptations:
    """What each upstream model (base URL and model name) refused, kept for the app's lifetime;
    at most ``capacity`` models are remembered, the oldest forgotten first."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._known: dict[tuple[str, str], Refusal] = {}

    def apply(self, where: Destination, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` as the destination's model takes it, from what it refused before."""
        known = self._known.get((where.url, where.model))
        return body if known is None else adapted(body, known)

    def retry(self, where: Destination, body: dict[str, Any], message: str) -> dict[str, Any] | None:
        """The body to send again after a 400 whose error says ``message``, or None when it is not
        a refusal the proxy can adapt to (or the body already is adapted to it)."""
        refusal = read_refusal(message)
        again = adapted(body, refusal) if refusal else body
        if again == body:
            return None
        lasting = refusal.lasting()
        if lasting:
            key = (where.url, where.model)
            known = self._known.pop(key, None)
            self._known[key] = lasting if known is None else known.merged(lasting)
            while len(self._known) > self._capacity:
                del self._known[next(iter(self._known))]
        return again
