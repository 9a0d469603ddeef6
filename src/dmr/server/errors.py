"""Every error the proxy answers, in OpenAI's shape::

    {"error": {"message": "...", "type": "invalid_request_error", "param": null, "code": null}}

:class:`APIError` is what the proxy raises on purpose; :func:`api_error_of` turns anything else
(dmr's own errors, Starlette's 404/405, a bug) into one, and :func:`render_error` is the app's one
exception handler, so a client's SDK can read every failure the same way.
"""

from __future__ import annotations

from typing import Any, Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from dmr.errors import (BudgetExceededError, ConfigError, DmrError, InputError, PIIBlockedError, PolicyError,
                        ProviderError)

__all__ = ["ANTHROPIC_PATH", "APIError", "api_error_of", "render_error"]

ANTHROPIC_PATH = "/v1/messages"

# OpenAI's error types by status, for errors that do not name their own.
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 405: "invalid_request_error", 409: "conflict_error",
          413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}

# Anthropic's error types by status.
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}


class APIError(Exception):
    """An error answer: HTTP ``status`` and the fields of OpenAI's error object. ``retry=False``
    tells OpenAI's SDKs (header ``x-should-retry``) that asking again cannot help; ``extra`` keeps
    the other fields of an upstream provider's error object."""

    def __init__(self, status: int, message: str, *, type: str | None = None, param: str | None = None,
                 code: str | int | None = None, headers: Mapping[str, str] | None = None,
                 retry: bool | None = None, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.param = param
        self.code = code
        self.headers = dict(headers or {})
        if retry is not None:
            self.headers["x-should-retry"] = "true" if retry else "false"
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        return {"error": {**self.extra, "message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)

    def anthropic_body(self) -> dict[str, Any]:
        """The error in Anthropic's shape, for ``/v1/messages``: its error type by status, and
        dmr's ``code`` and ``param`` beside the message."""
        error = {"type": _ANTHROPIC_TYPES.get(self.status, "api_error" if self.status >= 500 else "invalid_request_error"),
                 "message": self.message, "code": self.code, "param": self.param}
        return {"type": "error", "error": error}


def api_error_of(exc: BaseException) -> APIError:
    """The answer for any exception that reaches the client."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, HTTPException):
        message = exc.detail if isinstance(exc.detail, str) and exc.detail else "HTTP error"
        if exc.status_code == 404:
            message = "no such endpoint; the proxy serves /v1/chat/completions, /v1/responses, /v1/completions, " \
                      "/v1/embeddings, /v1/messages, /v1/models, /v1/dmr/classify, /v1/dmr/outcomes and /healthz"
        return APIError(exc.status_code, message, headers=exc.headers)
    if isinstance(exc, PIIBlockedError):
        return APIError(400, str(exc), code="pii_blocked", retry=False)
    if isinstance(exc, PolicyError):
        return APIError(400, str(exc), code="policy_refused", retry=False)
    if isinstance(exc, InputError):
        return APIError(400, str(exc), code="invalid_input")
    if isinstance(exc, BudgetExceededError):
        # OpenAI's own answer when an account's quota is spent; retrying cannot help.
        return APIError(429, str(exc), type="insufficient_quota", code="budget_exceeded", retry=False)
    if isinstance(exc, ProviderError):
        return APIError(502, str(exc), code="provider_error")
    if isinstance(exc, (ConfigError, DmrError)):
        return APIError(500, f"the proxy is misconfigured: {exc}", code="configuration_error", retry=False)
    # A bug: the server still logs the traceback (Starlette re-raises after this answer).
    return APIError(500, f"internal error in the proxy ({type(exc).__name__})", code="internal_error")


async def render_error(request: Request, exc: Exception) -> JSONResponse:
    """The app's exception handler, for every kind of error: in Anthropic's shape for Anthropic's
    endpoint, in OpenAI's for the others."""
    error = api_error_of(exc)
    if request.url.path.startswith(ANTHROPIC_PATH):
        return JSONResponse(error.anthropic_body(), status_code=error.status, headers=error.headers)
    return error.response()
