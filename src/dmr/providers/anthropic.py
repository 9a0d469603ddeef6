"""Anthropic, through the official ``anthropic`` SDK. Structured output by a forced tool call: the
answer is the ``input`` of a ``classify`` tool whose ``input_schema`` is the answer's schema."""

from __future__ import annotations

import weakref
from typing import Any, Mapping

from dmr.providers.base import (
    Completion,
    InvalidAnswer,
    ProviderCallError,
    ProviderSettings,
    Usage,
    close_client,
    missing_sdk,
    status_error,
)

__all__ = ["AnthropicAdapter"]

_TOOL = "classify"


class AnthropicAdapter:
    """``complete_json`` over ``messages.create`` with ``tool_choice`` forcing the ``classify`` tool."""

    def __init__(self, settings: ProviderSettings) -> None:
        try:
            import anthropic
        except ImportError:
            raise missing_sdk(settings.provider, "anthropic", "anthropic") from None
        self.name = settings.provider
        self.model = settings.model
        self._anthropic = anthropic
        self._client = anthropic.Anthropic(api_key=settings.api_key or "not-needed", base_url=settings.base_url,
                                           max_retries=0)
        # Close the connection pool with the adapter (no socket outlives its Router).
        weakref.finalize(self, close_client, self._client)

    def complete_json(self, system: str, user: str, schema: Mapping[str, Any], *,
                      timeout: float, max_tokens: int) -> Completion:
        anthropic = self._anthropic
        try:
            response = self._client.messages.create(
                model=self.model,
                max_tokens=max_tokens,
                system=system,
                messages=[{"role": "user", "content": user}],
                tools=[{"name": _TOOL, "description": "Record the classification of the task.",
                        "input_schema": dict(schema)}],
                tool_choice={"type": "tool", "name": _TOOL},
                timeout=timeout,
            )
        except anthropic.APITimeoutError:
            raise ProviderCallError(f"{self.name}: no answer within {timeout:.2f} s", retryable=True,
                                    kind="timeout") from None
        except anthropic.APIStatusError as exc:
            raise status_error(self.name, exc.status_code, exc.response.headers, str(exc.message)) from None
        except anthropic.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise ProviderCallError(f"{self.name}: connection failed ({type(cause).__name__}: {cause})",
                                    retryable=True, kind="connection") from None
        except (anthropic.APIResponseValidationError, ValueError) as exc:
            raise ProviderCallError(f"{self.name}: unreadable response ({type(exc).__name__})",
                                    retryable=True, kind="unreadable") from None
        usage = getattr(response, "usage", None)
        counted = Usage(int(getattr(usage, "input_tokens", 0) or 0), int(getattr(usage, "output_tokens", 0) or 0))
        for block in getattr(response, "content", None) or ():
            if getattr(block, "type", None) == "tool_use" and getattr(block, "name", None) == _TOOL:
                return Completion(getattr(block, "input", None), counted, str(getattr(response, "model", "") or self.model))
        stop = getattr(response, "stop_reason", None)
        raise InvalidAnswer(f"{self.name}: the answer has no {_TOOL} tool call (stop_reason {stop!r})", counted)
