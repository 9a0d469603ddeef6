"""OpenAI and every OpenAI-compatible endpoint (vLLM, llama.cpp, Ollama, LM Studio, …), through the
official ``openai`` SDK, with the answer constrained by a JSON schema (``response_format``)."""

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
    decode_json,
    missing_sdk,
    status_error,
)
from dmr.providers.refusals import read_refusal

__all__ = ["OpenAIAdapter"]


class OpenAIAdapter:
    """``complete_json`` over ``chat.completions`` with ``response_format=json_schema``."""

    def __init__(self, settings: ProviderSettings) -> None:
        try:
            import openai
        except ImportError:
            raise missing_sdk(settings.provider, "openai", "openai") from None
        self.name = settings.provider
        self.model = settings.model
        self._openai = openai
        # Request parameters every compatible server knows, until a model refuses one (see _adapt).
        self._length_key = "max_tokens"
        self._temperature = True
        # The SDK's own retries are off: Layer 2 retries with its deadline, backoff and breaker.
        self._client = openai.OpenAI(api_key=settings.api_key or "not-needed", base_url=settings.base_url,
                                     max_retries=0)
        # Close the connection pool with the adapter (no socket outlives its Router).
        weakref.finalize(self, close_client, self._client)

    def complete_json(self, system: str, user: str, schema: Mapping[str, Any], *,
                      timeout: float, max_tokens: int) -> Completion:
        openai = self._openai
        for _ in range(3):  # each refused parameter is switched once: at most two re-asks
            options: dict[str, Any] = {self._length_key: max_tokens}
            if self._temperature:
                options["temperature"] = 0
            try:
                response = self._client.chat.completions.create(
                    model=self.model,
                    messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                    response_format={"type": "json_schema", "json_schema": {
                        "name": "classification", "strict": True, "schema": dict(schema)}},
                    timeout=timeout,
                    **options,
                )
            except openai.APITimeoutError:
                raise ProviderCallError(f"{self.name}: no answer within {timeout:.2f} s", retryable=True,
                                        kind="timeout") from None
            except openai.APIStatusError as exc:
                if exc.status_code == 400 and self._adapt(str(exc.message)):
                    continue
                raise status_error(self.name, exc.status_code, exc.response.headers, str(exc.message)) from None
            except openai.APIConnectionError as exc:
                cause = exc.__cause__ or exc
                raise ProviderCallError(f"{self.name}: connection failed ({type(cause).__name__}: {cause})",
                                        retryable=True, kind="connection") from None
            except (openai.APIResponseValidationError, ValueError) as exc:
                raise ProviderCallError(f"{self.name}: unreadable response ({type(exc).__name__})",
                                        retryable=True, kind="unreadable") from None
            return _completion(self.name, self.model, response)
        raise AssertionError("unreachable")

    def _adapt(self, message: str) -> bool:
        """Some models (OpenAI's reasoning models) refuse ``max_tokens`` or ``temperature``; the 400
        names the parameter (:mod:`dmr.providers.refusals`). Switch it, for this and every later
        call; True if anything changed."""
        refusal = read_refusal(message)
        changed = False
        if refusal.rename_length and self._length_key == "max_tokens":
            self._length_key, changed = "max_completion_tokens", True
        if "temperature" in refusal.dropped and self._temperature:
            self._temperature, changed = False, True
        return changed

def _completion(name: str, model: str, response: Any) -> Completion:
    usage = getattr(response, "usage", None)
    counted = Usage(int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0))
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise ProviderCallError(f"{name}: the response has no choices", retryable=True, kind="unreadable")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if content is None:
        refusal = getattr(message, "refusal", None)
        raise InvalidAnswer(f"{name}: no content in the answer" + (f" (refusal: {refusal})" if refusal else ""), counted)
    try:
        data = decode_json(content)
    except InvalidAnswer as exc:
        raise InvalidAnswer(f"{name}: {exc}", counted) from None
    return Completion(data, counted, str(getattr(response, "model", None) or model))

