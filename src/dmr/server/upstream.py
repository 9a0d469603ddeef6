"""Forwarding a chat completion to its provider and relaying the answer.

A plain answer is read, charged to the budget and returned with the provider's status. A stream is
passed through byte for byte as it arrives. The provider's own HTTP errors keep their status and
error object; a provider that cannot be reached is a 502, one that does not answer in time a 504
— both in OpenAI's shape.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import httpx
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from dmr.server.errors import APIError
from dmr.server.routing import Destination
from dmr.server.usage import StreamUsage, charge, usage_of

__all__ = ["forward"]

# Provider headers a client's SDK acts on (back-off, rate limits, support requests).
_RELAYED = ("retry-after", "retry-after-ms", "x-request-id")
_RELAYED_PREFIX = "x-ratelimit-"


async def forward(client: httpx.AsyncClient, router: Any, where: Destination, body: dict[str, Any],
                  stream: bool) -> Response:
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json",
               # Raw bytes are relayed as they come, so they must not be compressed on the way.
               "Accept-Encoding": "identity"}
    if where.api_key:
        headers["Authorization"] = f"Bearer {where.api_key}"
    content = json.dumps({**body, "model": where.model}).encode("utf-8")
    request = client.build_request("POST", where.url, content=content, headers=headers)
    try:
        reply = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise _unreachable(where, exc) from None
    ours = {**where.headers(), **_relayed(reply)}
    if reply.status_code >= 300 or not stream:
        try:
            raw = await reply.aread()
        except httpx.HTTPError as exc:
            raise _unreachable(where, exc) from None
        finally:
            await reply.aclose()
        if reply.status_code >= 400:
            raise _relayed_error(where, reply.status_code, raw, ours)
        if reply.status_code >= 300:
            raise APIError(502, f"provider {where.provider!r} answered HTTP {reply.status_code} (a redirect): "
                                "check its base_url in the model registry", code="bad_upstream_answer", headers=ours)
        return await _answer(router, where, reply, raw, ours)
    media = reply.headers.get("content-type", "text/event-stream")
    return _Relay(_passthrough(router, where, reply), reply, status_code=reply.status_code,
                  headers={**ours, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}, media_type=media)


async def _answer(router: Any, where: Destination, reply: httpx.Response, raw: bytes,
                  headers: dict[str, str]) -> Response:
    answer = _json(raw)
    if not isinstance(answer, dict):
        snippet = raw[:200].decode("utf-8", "replace")
        raise APIError(502, f"provider {where.provider!r} answered HTTP {reply.status_code} with a body that is "
                            f"not a JSON object: {snippet!r}", code="bad_upstream_answer", headers=headers)
    await charge(router, where.model, usage_of(answer))
    # The provider's bytes as they came: read for the usage, not rewritten.
    return Response(raw, status_code=reply.status_code, headers=headers,
                    media_type=reply.headers.get("content-type", "application/json"))


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


async def _passthrough(router: Any, where: Destination, reply: httpx.Response) -> AsyncIterator[bytes]:
    usage = StreamUsage()
    charged = False
    try:
        async for chunk in reply.aiter_raw():
            tokens = usage.feed(chunk)
            if tokens is not None and not charged:
                # Charged before the client gets the usage event: a client that hangs up as soon
                # as it has read the stream cannot leave the call unpaid.
                await charge(router, where.model, tokens)
                charged = True
            yield chunk
    except httpx.HTTPError as exc:
        # The status went out with the first bytes: say what broke as an error event, which
        # OpenAI's SDKs raise as an APIError, rather than ending the stream as if it were whole.
        error = _unreachable(where, exc)
        yield b"\n\ndata: " + json.dumps(error.body()).encode("utf-8") + b"\n\n"


class _Relay(StreamingResponse):
    """A streamed answer that closes its upstream response however the stream ends (finished,
    failed, or the client went away)."""

    def __init__(self, content: AsyncIterator[bytes], upstream: httpx.Response, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._upstream.aclose()


def _relayed(reply: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in reply.headers.items()
            if name in _RELAYED or name.startswith(_RELAYED_PREFIX)}


def _unreachable(where: Destination, exc: httpx.HTTPError) -> APIError:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return APIError(504, f"provider {where.provider!r} did not answer in time ({detail})",
                        code="upstream_timeout", headers=where.headers())
    return APIError(502, f"provider {where.provider!r} could not be reached or broke off its answer "
                         f"({type(exc).__name__}: {detail})", code="upstream_unreachable", headers=where.headers())


def _relayed_error(where: Destination, status: int, raw: bytes, headers: dict[str, str]) -> APIError:
    """The provider's error with its status; its error object when it sent one, else its text."""
    data = _json(raw)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):
        error = {"message": error}
    if not isinstance(error, dict):
        text = raw[:500].decode("utf-8", "replace").strip() or "(empty body)"
        error = {"message": f"provider {where.provider!r} answered HTTP {status}: {text}"}
    message = error.get("message")
    return APIError(status, message if isinstance(message, str) and message else f"provider {where.provider!r} "
                    f"answered HTTP {status}", type=error.get("type") if isinstance(error.get("type"), str) else None,
                    param=error.get("param"), code=error.get("code"), headers=headers,
                    extra={k: v for k, v in error.items() if k not in ("message", "type", "param", "code")})
