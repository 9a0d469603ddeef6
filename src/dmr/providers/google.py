"""Google Gemini, through the official ``google-genai`` SDK, with the answer constrained by a JSON
schema (``response_mime_type="application/json"`` and ``response_json_schema``)."""

from __future__ import annotations

import re
import weakref
from typing import Any, Mapping

from dmr.providers.base import (
    Completion,
    InvalidAnswer,
    ProviderCallError,
    ProviderSettings,
    Usage,
    close_client,
    decode_json,
    missing_sdk,
    status_error,
)

__all__ = ["GoogleAdapter", "split_base_url"]

_VERSION = re.compile(r"^v\d+(?:alpha|beta)?\d*$")


def split_base_url(url: str | None) -> tuple[str | None, str | None]:
    """The SDK takes the API version apart from the base URL: ``…/v1beta`` → (``…``, ``v1beta``)."""
    if not url:
        return None, None
    root, _, last = url.rstrip("/").rpartition("/")
    if root and _VERSION.match(last):
        return root + "/", last
    return url.rstrip("/") + "/", None


def _transient() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(timeout errors, other transport errors) of the HTTP clients the SDK may use."""
    timeouts: list[type] = []
    transport: list[type] = []
    for name in ("httpx", "httpx2"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        transport.append(module.TransportError)
    return tuple(timeouts), tuple(transport)


class GoogleAdapter:
    """``complete_json`` over ``models.generate_content``."""

    def __init__(self, settings: ProviderSettings) -> None:
        try:
            from google import genai
            from google.genai import errors, types
        except ImportError:
            raise missing_sdk(settings.provider, "google-genai", "google") from None
        self.name = settings.provider
        self.model = settings.model
        self._types = types
        self._errors = errors
        self._timeouts, self._transport = _transient()
        base_url, version = split_base_url(settings.base_url)
        options: dict[str, Any] = {}
        if base_url:
            options["base_url"] = base_url
        if version:
            options["api_version"] = version
        # retry_options stays unset: the SDK then never retries; Layer 2 does, within its deadline.
        self._client = genai.Client(api_key=settings.api_key or "not-needed",
                                    http_options=types.HttpOptions(**options))
        # Close the connection pool with the adapter (no socket outlives its Router).
        weakref.finalize(self, close_client, self._client)

    def complete_json(self, system: str, user: str, schema: Mapping[str, Any], *,
                      timeout: float, max_tokens: int) -> Completion:
        types, errors = self._types, self._errors
        config = types.GenerateContentConfig(
            system_instruction=system,
            response_mime_type="application/json",
            response_json_schema=dict(schema),
            temperature=0,
            # No output cap: "thinking" models count their thoughts in it and would be cut off.
            http_options=types.HttpOptions(timeout=max(1, int(timeout * 1000))),
        )
        try:
            response = self._client.models.generate_content(model=self.model, contents=user, config=config)
        except errors.APIError as exc:
            headers = getattr(getattr(exc, "response", None), "headers", None)
            raise status_error(self.name, int(exc.code or 0), headers, str(exc.message or "")) from None
        except self._timeouts:
            raise ProviderCallError(f"{self.name}: no answer within {timeout:.2f} s", retryable=True,
                                    kind="timeout") from None
        except self._transport as exc:
            raise ProviderCallError(f"{self.name}: connection failed ({type(exc).__name__}: {exc})",
                                    retryable=True, kind="connection") from None
        except ValueError as exc:  # an unreadable body (JSON or pydantic validation)
            raise ProviderCallError(f"{self.name}: unreadable response ({type(exc).__name__})",
                                    retryable=True, kind="unreadable") from None
        meta = getattr(response, "usage_metadata", None)
        output = int(getattr(meta, "candidates_token_count", 0) or 0) + int(getattr(meta, "thoughts_token_count", 0) or 0)
        counted = Usage(int(getattr(meta, "prompt_token_count", 0) or 0), output)
        try:
            text = response.text
        except ValueError:
            text = None
        if not text:
            raise InvalidAnswer(f"{self.name}: the answer has no text", counted)
        try:
            data = decode_json(text)
        except InvalidAnswer as exc:
            raise InvalidAnswer(f"{self.name}: {exc}", counted) from None
        return Completion(data, counted, str(getattr(response, "model_version", None) or self.model))
