"""What the proxy itself is configured with (the Router brings its own configuration).

The proxy reads one environment variable, through :func:`dmr.config.env` like the rest of dmr:
``DMR_SERVER_API_KEY``, the key clients must send as ``Authorization: Bearer <key>`` when
``create_app(api_key=...)`` / ``dmr serve --api-key`` is not given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from dmr.config import env
from dmr.errors import ConfigError

__all__ = ["DEFAULT_ALIASES", "ServerSettings"]

# Model names that ask the proxy to route; any other name must be a model of the registry.
DEFAULT_ALIASES: tuple[str, ...] = ("dmr", "dmr-auto", "auto")

@dataclass(frozen=True)
class ServerSettings:
    """The proxy's options, checked once when the app is built.

    ``upstream_timeout`` bounds each wait on a provider (connecting, and each read of an answer or
    of a stream's next bytes), not the whole answer, so a long stream is never cut while it flows;
    it also bounds the wait for one of the ``max_upstream_connections`` when all are in use.
    ``max_answer_bytes`` caps a plain (not streamed) answer, which is held in memory to be priced.
    ``allow_named_models``: whether a client may name a registry model and skip routing.
    ``fallbacks``: how many other providers a routed request may go to when its provider fails
    (:meth:`dmr.router.Router.fallbacks`); 0: none.
    ``escalate_on_failure``: whether those fallbacks go on to the higher tiers of the decision's
    own provider (``Router.fallbacks(..., higher_tiers=True)``).
    ``embeddings_provider``: the registry provider that ``POST /v1/embeddings`` is passed to (None:
    the endpoint answers that it is not configured).
    """

    aliases: tuple[str, ...] = DEFAULT_ALIASES
    api_key: str | None = None
    upstream_timeout: float = 300.0
    max_body_bytes: int = 32 * 1024 * 1024
    max_upstream_connections: int = 1000
    max_answer_bytes: int = 64 * 1024 * 1024
    allow_named_models: bool = True
    embeddings_provider: str | None = None
    fallbacks: int = 2
    escalate_on_failure: bool = False

    @classmethod
    def build(cls, *, aliases: Iterable[str] | None, api_key: str | None, upstream_timeout: float,
              max_body_bytes: int, max_upstream_connections: int = 1000, max_answer_bytes: int = 64 * 1024 * 1024,
              allow_named_models: bool = True, embeddings_provider: str | None = None,
              fallbacks: int = 2, escalate_on_failure: bool = False) -> ServerSettings:
        problems: list[tuple[str, str]] = []
        names = tuple(DEFAULT_ALIASES if aliases is None else ([aliases] if isinstance(aliases, str) else aliases))
        if not names or any(not isinstance(n, str) or not n.strip() or n != n.strip() for n in names):
            problems.append(("aliases", "must be one or more non-empty model names without surrounding spaces"))
        if api_key is None:
            api_key = env().get("DMR_SERVER_API_KEY")
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            problems.append(("api_key", "must be a non-empty string (or None for no key)"))
        if (isinstance(upstream_timeout, bool) or not isinstance(upstream_timeout, (int, float))
                or not math.isfinite(upstream_timeout) or upstream_timeout <= 0):
            problems.append(("upstream_timeout", f"must be a number of seconds > 0, got {upstream_timeout!r}"))
        for name, value, unit in (("max_body_bytes", max_body_bytes, "bytes"),
                                  ("max_upstream_connections", max_upstream_connections, "connections"),
                                  ("max_answer_bytes", max_answer_bytes, "bytes")):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                problems.append((name, f"must be a number of {unit} > 0, got {value!r}"))
        if not isinstance(allow_named_models, bool):
            problems.append(("allow_named_models", f"must be true or false, got {allow_named_models!r}"))
        if embeddings_provider is not None and (not isinstance(embeddings_provider, str)
                                                or not embeddings_provider.strip()):
            problems.append(("embeddings_provider", "must be the name of a provider of the model registry"))
        if isinstance(fallbacks, bool) or not isinstance(fallbacks, int) or fallbacks < 0:
            problems.append(("fallbacks", f"must be a number of providers >= 0, got {fallbacks!r}"))
        if not isinstance(escalate_on_failure, bool):
            problems.append(("escalate_on_failure", f"must be true or false, got {escalate_on_failure!r}"))
        if problems:
            raise ConfigError("invalid server settings:\n" + "\n".join(f"  {p}: {m}" for p, m in problems), problems)
        return cls(tuple(dict.fromkeys(names)), api_key, float(upstream_timeout), max_body_bytes,
                   max_upstream_connections, max_answer_bytes, allow_named_models, embeddings_provider,
                   fallbacks, escalate_on_failure)
