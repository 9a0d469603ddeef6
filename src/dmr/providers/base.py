"""What every adapter shares: its settings, its result, and the two ways a call can fail.

``ProviderCallError`` is a failed call (network, timeout, HTTP status, unreadable body): Layer 2 may
retry it when ``retryable`` and counts it against the circuit breaker. ``InvalidAnswer`` is a call
that succeeded but whose answer is not what was asked for: never retried, never guessed from.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

from dmr.errors import ProviderError

__all__ = [
    "Completion",
    "InvalidAnswer",
    "ProviderCallError",
    "ProviderSettings",
    "Usage",
    "close_client",
    "decode_json",
    "missing_sdk",
    "retry_after_seconds",
    "status_error",
]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens the provider says the call used (what it bills)."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Completion:
    """One answer: ``data`` is the decoded JSON (or whatever the provider returned), ``usage`` is
    the provider's own token count, ``model`` the model that answered."""

    data: Any
    usage: Usage
    model: str


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """How to reach one provider: from the registry's provider entry and the Router's options."""

    provider: str
    model: str
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None


class ProviderCallError(ProviderError):
    """A provider call failed. ``retryable``: trying again may succeed (timeouts, 5xx, 429,
    connection or body errors); ``retry_after``: seconds the provider asked us to wait."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None,
                 retry_after: float | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        # For metrics: "timeout", "connection", "unreadable", "http_<status>" or "error".
        self.kind = kind or (f"http_{status}" if status else "error")


class InvalidAnswer(ProviderError):
    """The provider answered, but not with a valid classification. ``usage``: what the call still
    cost, when the provider reported it."""

    def __init__(self, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage


def close_client(client: Any) -> None:
    """Close an SDK client's connection pool, whatever the SDK calls that."""
    close = getattr(client, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # closing is best effort, at garbage collection or exit
            pass


def missing_sdk(provider: str, module: str, extra: str) -> Exception:
    """The ``LayerUnavailable`` to raise when a provider's SDK is not installed."""
    from dmr.layers.base import LayerUnavailable

    return LayerUnavailable(
        f"Layer 2: the {provider} SDK ({module}) is not installed; "
        f"pip install 'dynamic-model-router[{extra}]'")


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        import email.utils  # only for the rare HTTP-date form

        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def decode_json(text: Any) -> Any:
    """Decode a model's text answer. Tolerates one surrounding Markdown code fence (some models add
    one even when asked for JSON); anything else that is not JSON is an :class:`InvalidAnswer`."""
    if not isinstance(text, str):
        raise InvalidAnswer(f"expected text, got {type(text).__name__}")
    body = text.strip()
    if body.startswith("```") and body.endswith("```"):
        body = body[3:-3]
        body = body[4:] if body.startswith("json") else body
    try:
        return json.loads(body)
    except ValueError:
        preview = text[:80].replace("\n", " ")
        raise InvalidAnswer(f"the answer is not JSON: {preview!r}") from None


def status_error(provider: str, status: int, headers: Mapping[str, str] | None, detail: str = "") -> ProviderCallError:
    """The error for an HTTP status: 408, 409, 429 and 5xx are worth retrying; other 4xx are not
    (a bad key or request does not get better by asking again)."""
    retryable = status in (408, 409, 429) or status >= 500
    after = retry_after_seconds((headers or {}).get("retry-after")) if headers is not None else None
    hint = ""
    if status in (401, 403):
        hint = " (check the API key)"
    elif status == 404:
        hint = " (check layer2_model and the base URL)"
    text = f"{provider}: HTTP {status}{hint}"
    if detail:
        text += f": {detail[:200]}"
    return ProviderCallError(text, retryable=retryable, status=status, retry_after=after)
