"""The real cost of a forwarded call: the token usage the provider reports, priced from the
Router's registry and added to the Router's budget (when it has one) and to the tenant's.

A plain answer carries ``usage`` in its body. A stream carries it only when the client asked for it
(``stream_options: {"include_usage": true}``), in one of the last events, or, from vLLM with
``continuous_usage_stats``, on every event as a running total; :class:`StreamUsage` watches the
bytes pass for it without holding the stream back, and the last total seen is charged once.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool

__all__ = ["StreamUsage", "charge", "usage_of"]

log = logging.getLogger("dmr.server")

# A usage event is a few hundred bytes; a longer unfinished line is content, not worth keeping.
_MAX_LINE = 64 * 1024


def usage_of(answer: Any) -> tuple[int, int] | None:
    """``(prompt_tokens, completion_tokens)`` of a chat completion (or chunk), if it reports them."""
    usage = answer.get("usage") if isinstance(answer, dict) else None
    if not isinstance(usage, dict):
        return None
    tokens = usage.get("prompt_tokens"), usage.get("completion_tokens", 0)
    if all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in tokens):
        return tokens  # type: ignore[return-value]
    return None


class StreamUsage:
    """Finds the usage events in server-sent events fed to it chunk by chunk: ``last`` is the
    latest usage seen (each report is a running total), ``done`` whether ``data: [DONE]`` came."""

    def __init__(self) -> None:
        self._line = b""
        self.last: tuple[int, int] | None = None
        self.done = False

    def feed(self, chunk: bytes) -> tuple[int, int] | None:
        """The token counts of the latest usage event that ``chunk`` completes, if it completes one."""
        lines = (self._line + chunk).split(b"\n")
        self._line = lines.pop()
        if len(self._line) > _MAX_LINE:
            self._line = b""
        found = None
        for line in lines:
            if line.rstrip(b"\r") in (b"data: [DONE]", b"data:[DONE]"):
                self.done = True
            elif line.startswith(b"data:") and b'"usage"' in line:
                try:
                    found = usage_of(json.loads(line[5:])) or found
                except (ValueError, RecursionError):
                    continue
        self.last = found or self.last
        return found


async def charge(router: Any, where: Any, tokens: tuple[int, int] | None) -> float | None:
    """Add the cost of a call to ``where`` (a :class:`~dmr.server.routing.Destination`) to the
    Router's budget and to its tenant's; returns the cost (None: unknown, or no budget to add it
    to). A failure here is logged, never turned into a failed answer: the call already happened."""
    budget = getattr(router, "budget", None)
    tenant = where.tenant
    if tokens is None or (budget is None and (tenant is None or tenant.config.get("budget_usd") is None)):
        return None
    try:
        usd = router.registry.estimate_cost(where.model, *tokens)
        if usd is None:
            return None
        # The budget store may be SQLite or Redis: a round trip, off the event loop. On a pooled
        # thread that later runs decisions: this spend is no decision's own.
        if budget is not None:
            await run_in_threadpool(lambda: budget.record_usd(usd))
        if tenant is not None:
            await run_in_threadpool(tenant.charge, router, usd)
        return usd
    except Exception as exc:
        log.warning("dmr: could not add the cost of a %s call to the budget: %s", where.model, exc)
        return None
