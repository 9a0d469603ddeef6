"""Forwarding a chat completion to its provider and relaying the answer.

A plain answer is read (up to ``max_answer_bytes``), charged to the budget and returned with the
provider's status. A stream is passed through as it arrives and charged once it ends. With a
:class:`Translation` (a Responses or Messages API request), the answer and the stream's events are retold in
that API's shape on the way, from the same bytes. The
provider's own HTTP errors keep their status and error object, except a refused key (401/403),
which is the proxy's fault, not the client's: a 502. A provider that cannot be reached is a 502,
one that does not answer in time a 504, and no free connection to it a 503 — all in OpenAI's shape.
"""

from __future__ import annotations

import json
import logging
from typing import Any, AsyncIterator, Protocol

import anyio
import httpx
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from dmr.server.adapt import Adaptations
from dmr.server.errors import APIError
from dmr.server.routing import Destination
from dmr.server.usage import StreamUsage, charge, usage_of

__all__ = ["Translation", "forward"]

log = logging.getLogger("dmr.server")

# Provider headers a client's SDK acts on (back-off, rate limits, support requests).
_RELAYED = ("retry-after", "retry-after-ms", "x-request-id")
_RELAYED_PREFIX = "x-ratelimit-"
# Reading an answer can fail in httpx's transport (HTTPError) or in its stream handling
# (StreamError, e.g. a transport that hands over an answer it has already read).
_READ_ERRORS = (httpx.HTTPError, httpx.StreamError)
# Each refusal is adapted to once: at most two asks more than the first.
_ASKS = 3
_ABSENT = object()


class EventStream(Protocol):
    def start(self) -> bytes: ...
    def feed(self, chunk: bytes) -> bytes: ...
    def finish(self) -> bytes: ...
    def fail(self, message: str, code: Any = None) -> bytes: ...


class Translation(Protocol):
    """How an answer in another API's shape is made from a chat completion
    (:class:`dmr.server.translated.Translation`): ``answer`` retells a whole answer (ValueError
    when it cannot), ``events`` a stream, chunk by chunk."""

    def answer(self, answer: dict[str, Any]) -> dict[str, Any]: ...
    def events(self, model: str) -> EventStream: ...


async def forward(client: httpx.AsyncClient, router: Any, where: Destination, body: dict[str, Any],
                  stream: bool, max_answer_bytes: int = 64 * 1024 * 1024,
                  translation: Translation | None = None, adaptations: Adaptations | None = None) -> Response:
    """Send ``body`` to ``where`` and answer with the provider's reply. With ``adaptations``, a 400
    refusing a parameter the model does not take is asked again adapted (:mod:`dmr.server.adapt`)."""
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json",
               # Raw bytes are relayed as they come, so they must not be compressed on the way.
               "Accept-Encoding": "identity"}
    if where.api_key:
        headers["Authorization"] = f"Bearer {where.api_key}"
    asked = body
    if adaptations is not None:
        body = adaptations.apply(where, body)
    for attempt in range(_ASKS):
        reply = await _send(client, where, body, headers)
        ours = {**where.headers(), **_relayed(reply), **_adapted(asked, body)}
        if reply.status_code < 300 and stream:
            media = "text/event-stream" if translation else reply.headers.get("content-type", "text/event-stream")
            return _Relay(router, where, reply, translation, status_code=reply.status_code,
                          headers={**ours, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}, media_type=media)
        try:
            raw = await _read(where, reply, max_answer_bytes, ours)
        finally:
            await reply.aclose()
        if reply.status_code in (401, 403):
            raise _refused_key(where, reply.status_code, raw, ours)
        if reply.status_code >= 400:
            error = _relayed_error(where, reply.status_code, raw, ours)
            if reply.status_code == 400 and adaptations is not None and attempt + 1 < _ASKS:
                again = adaptations.retry(where, body, error.message)
                if again is not None:
                    log.info("provider %r refused a parameter for model %r; asking again adapted to it",
                             where.provider, where.model)
                    body = again
                    continue
            raise error
        if reply.status_code >= 300:
            raise APIError(502, f"provider {where.provider!r} answered HTTP {reply.status_code} (a redirect): "
                                "check its base_url in the model registry", code="bad_upstream_answer", headers=ours)
        return await _answer(router, where, reply, raw, ours, translation)
    raise AssertionError("unreachable: the last ask returns")


async def _send(client: httpx.AsyncClient, where: Destination, body: dict[str, Any],
                headers: dict[str, str]) -> httpx.Response:
    # As large as the client's body (32 MiB by default): encoded off the event loop.
    content = await run_in_threadpool(_encode, {**body, "model": where.model})
    request = client.build_request("POST", where.url, content=content, headers=headers)
    try:
        return await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise _unreachable(where, exc) from None


def _adapted(asked: dict[str, Any], sent: dict[str, Any]) -> dict[str, str]:
    """The ``x-dmr-adapted`` header: the client's parameters the proxy changed, if any."""
    if sent is asked:  # nothing adapted: the usual case, decided without comparing the bodies
        return {}
    changed = sorted(key for key in asked if asked[key] != sent.get(key, _ABSENT))
    return {"x-dmr-adapted": ",".join(changed)} if changed else {}


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode("utf-8")


async def _read(where: Destination, reply: httpx.Response, limit: int, headers: dict[str, str]) -> bytes:
    """The answer's bytes, read chunk by chunk so that one over ``limit`` is refused before it is
    held in memory whole."""
    declared = reply.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(where, limit, headers)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in reply.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise _too_large(where, limit, headers)
            chunks.append(chunk)
    except _READ_ERRORS as exc:
        raise _unreachable(where, exc) from None
    return b"".join(chunks)


def _too_large(where: Destination, limit: int, headers: dict[str, str]) -> APIError:
    return APIError(502, f"provider {where.provider!r} answered with more than {limit:,} bytes, the proxy's "
                         "max_answer_bytes: ask for a shorter answer or stream it", code="bad_upstream_answer",
                    headers=headers)


async def _answer(router: Any, where: Destination, reply: httpx.Response, raw: bytes,
                  headers: dict[str, str], translation: Translation | None = None) -> Response:
    answer = await run_in_threadpool(_json, raw)
    if not isinstance(answer, dict):
        snippet = raw[:200].decode("utf-8", "replace")
        raise APIError(502, f"provider {where.provider!r} answered HTTP {reply.status_code} with a body that is "
                            f"not a JSON object: {snippet!r}", code="bad_upstream_answer", headers=headers)
    await charge(router, where, usage_of(answer))
    if translation is not None:
        try:
            retold = await run_in_threadpool(translation.answer, answer)
        except ValueError as exc:
            raise APIError(502, f"provider {where.provider!r} answered with a chat completion that cannot be "
                                f"read: {exc}", code="bad_upstream_answer", headers=headers) from None
        return JSONResponse(retold, status_code=reply.status_code, headers=headers)
    # The provider's bytes as they came: read for the usage, not rewritten.
    return Response(raw, status_code=reply.status_code, headers=headers,
                    media_type=reply.headers.get("content-type", "application/json"))


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


class _Relay(StreamingResponse):
    """A streamed answer, passed through as it arrives. However the stream ends (finished,
    failed, or the client went away) it charges the last usage the stream reported, once, and
    closes its upstream response."""

    def __init__(self, router: Any, where: Destination, upstream: httpx.Response,
                 translation: Translation | None = None, **kwargs: Any) -> None:
        self._router = router
        self._events = translation.events(where.model) if translation is not None else None
        self._where = where
        self._upstream = upstream
        self._usage = StreamUsage()
        self._charged = False
        super().__init__(self._passthrough(), **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Shielded: a client that hangs up cancels the response, and the call is paid for anyway.
            with anyio.CancelScope(shield=True):
                await self._charge()
                await self._upstream.aclose()

    async def _charge(self) -> None:
        if not self._charged and self._usage.last is not None:
            self._charged = True
            await charge(self._router, self._where, self._usage.last)

    async def _passthrough(self) -> AsyncIterator[bytes]:
        events = self._events
        if events is not None:
            yield events.start()
        try:
            # Decoded bytes: the provider's content-encoding is not relayed; an answer that the
            # transport has already read (httpx.MockTransport with content=) comes as one chunk.
            async for chunk in self._upstream.aiter_bytes():
                self._usage.feed(chunk)
                if self._usage.done:
                    # Charged before the client gets the end of the stream: a client that reads
                    # the spend right after it finds the budget up to date.
                    await self._charge()
                out = chunk if events is None else events.feed(chunk)
                if out:
                    yield out
            if events is not None:
                yield events.finish()
        except _READ_ERRORS as exc:
            # The status went out with the first bytes: say what broke as an error event, which
            # OpenAI's SDKs raise as an APIError, rather than ending the stream as if it were whole.
            error = _unreachable(self._where, exc)
            if events is not None:
                yield events.fail(error.message, error.code)
            else:
                yield b"\n\ndata: " + json.dumps(error.body()).encode("utf-8") + b"\n\n"


def _relayed(reply: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in reply.headers.items()
            if name in _RELAYED or name.startswith(_RELAYED_PREFIX)}


def _unreachable(where: Destination, exc: Exception) -> APIError:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.PoolTimeout):
        # Our own limit, not the provider's slowness: every upstream connection is in use.
        return APIError(503, "the proxy is busy: all of its connections to providers are in use (raise "
                             "max_upstream_connections / --max-upstream-connections); retry shortly",
                        type="server_error", code="proxy_busy", headers=where.headers())
    if isinstance(exc, httpx.TimeoutException):
        return APIError(504, f"provider {where.provider!r} did not answer in time ({detail})",
                        code="upstream_timeout", headers=where.headers())
    return APIError(502, f"provider {where.provider!r} could not be reached or broke off its answer "
                         f"({type(exc).__name__}: {detail})", code="upstream_unreachable", headers=where.headers())


def _refused_key(where: Destination, status: int, raw: bytes, headers: dict[str, str]) -> APIError:
    """A provider that refuses the proxy's own key: relayed as is, it would read as "your key is
    wrong" to the client, and the provider's message can quote part of the key. The detail goes to
    the server's log instead."""
    log.warning("dmr: provider %r refused the proxy's credentials (HTTP %s): %s", where.provider, status,
                raw[:1000].decode("utf-8", "replace"))
    if where.key_env:
        fix = f"check {where.key_env} in the environment of the proxy (`dmr serve`)"
    else:
        fix = "the registry gives it no key: set api_key_env for it in the model registry"
    return APIError(502, f"provider {where.provider!r} refused the proxy's credentials (HTTP {status}): {fix}; "
                         "the proxy's log has the provider's answer", code="upstream_auth_failed", headers=headers,
                    retry=False)


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
