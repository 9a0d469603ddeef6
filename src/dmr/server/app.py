"""The app factory of the OpenAI-compatible proxy.

``create_app(router)`` returns a Starlette app that any OpenAI client can point at::

    POST /v1/chat/completions   model "dmr" (or another alias): classify, then forward to the
                                decision's model; a registry model: forward to its provider as is
    POST /v1/responses          the same for OpenAI's Responses API, answered from the provider's
                                chat completion (:mod:`dmr.server.responses`)
    POST /v1/completions        the same for the legacy Completions API (:mod:`dmr.server.completions`)
    POST /v1/embeddings         passed unrouted to the ``embeddings_provider``, when one is set
    GET  /v1/models             the aliases and every registry model
    GET  /v1/models/{model}     one of them
    POST /v1/messages           the same for Anthropic's Messages API (:mod:`dmr.server.anthropic_messages`),
                                errors in Anthropic's shape; /v1/messages/count_tokens estimates
                                its input tokens
    POST /v1/dmr/classify       the decision for {"task"} or {"messages"}, without calling a model
    POST /v1/dmr/outcomes       {"decision_id", "score"}: feedback on a routed answer
    GET  /healthz               liveness (never needs the proxy key)

The app's lifespan owns the one HTTP client every upstream call goes through, and closes the
Router when the app built it. Every error is answered in OpenAI's shape (:mod:`dmr.server.errors`).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import math
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Mapping

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dmr.errors import ConfigError, DmrError
from dmr.providers.refusals import input_overflows
from dmr.server.adapt import Adaptations
from dmr.server.answers import AnswerBook
from dmr.server.bodies import (chat_request, classify_needs, classify_request, embeddings_request, needs_of,
                               outcome_request, read_json)
from dmr.server.completions import CompletionEvents, completion_object, completions_request
from dmr.server.anthropic_events import AnthropicEvents
from dmr.server.anthropic_messages import input_tokens, message_object, messages_request
from dmr.server.errors import ANTHROPIC_PATH, APIError, render_error
from dmr.server.response_events import ResponseEvents
from dmr.server.responses import response_object, responses_request
from dmr.server.routing import (Destination, catalogue, decision_headers, destination, embeddings_destination,
                                fallback_destinations, header_safe)
from dmr.server.settings import ServerSettings
from dmr.server.tenants import Tenant, Tenants, load_tenants
from dmr.server.translated import Translation
from dmr.server.upstream import forward

__all__ = ["create_app"]

Endpoint = Callable[[Request], Awaitable[Response]]
log = logging.getLogger("dmr.server")


def create_app(router: Any = None, *, config: str | Path | Mapping[str, Any] | None = None,
               aliases: Iterable[str] | None = None, api_key: str | None = None, upstream_timeout: float = 300.0,
               max_body_bytes: int = 32 * 1024 * 1024, max_answer_bytes: int = 64 * 1024 * 1024,
               max_upstream_connections: int = 1000, allow_named_models: bool = True,
               embeddings_provider: str | None = None, fallbacks: int = 2, escalate_on_failure: bool = False,
               tenants: str | Path | Mapping[str, Any] | None = None,
               transport: httpx.AsyncBaseTransport | None = None, close_router: bool | None = None) -> Starlette:
    """The proxy app for ``router`` (or a Router built from ``config``: a ``dmr.yaml`` path or a
    mapping of Router options; neither: ``Router()``).

    ``aliases``: the model names that ask for routing (default ``dmr``, ``dmr-auto``, ``auto``).
    ``api_key``: the bearer key clients must send (default: ``$DMR_SERVER_API_KEY``; unset: none).
    ``upstream_timeout``: seconds to wait on a provider for a connection and for each read.
    ``max_body_bytes``: the largest request body (413 past it).
    ``max_answer_bytes``: the largest plain (not streamed) answer a provider may send (502 past it).
    ``max_upstream_connections``: connections open to providers at once; a request that finds
    them all busy for ``upstream_timeout`` is answered 503 ``proxy_busy``.
    ``allow_named_models``: let clients name a registry model and skip routing (still under the
    PII block and a spent ``on_stop: raise`` budget); False: only the aliases are served.
    ``embeddings_provider``: a provider of the registry that ``POST /v1/embeddings`` requests are
    passed to as sent (not routed; under the PII block and a spent ``on_stop: raise`` budget);
    None: that endpoint answers 501.
    ``fallbacks``: when the provider of a routed request fails before answering (unreachable, a
    timeout, 429, a 5xx), how many others it may go to, from the Router's ``providers`` list
    (:meth:`dmr.router.Router.fallbacks`: the same tier at each other provider); 0: none.
    ``escalate_on_failure``: let those fallbacks go on to the higher tiers of the decision's own
    provider (never past a budget cap or the tenant's ``max_tier``); off by default, as they cost more.
    ``tenants``: a tenants file (or its mapping, :mod:`dmr.server.tenants`): each tenant's key,
    and the ``tenant_config`` its requests are routed with; its clients send their own key, and
    ``api_key``, when set, still serves requests under no tenant.
    ``transport``: an httpx transport for every upstream call (to route them elsewhere in tests);
    its own connection limits then apply instead of ``max_upstream_connections``.
    ``close_router``: close the Router (flushing its decision log) when the app shuts down; by
    default only a Router the app built itself is closed, one passed in stays the caller's."""
    if router is not None and config is not None:
        raise ConfigError("give create_app either a router or a config, not both",
                          [("config", "conflicts with router")])
    owned = router is None if close_router is None else close_router
    settings = ServerSettings.build(aliases=aliases, api_key=api_key, upstream_timeout=upstream_timeout,
                                    max_body_bytes=max_body_bytes, max_answer_bytes=max_answer_bytes,
                                    max_upstream_connections=max_upstream_connections,
                                    allow_named_models=allow_named_models, embeddings_provider=embeddings_provider,
                                    fallbacks=fallbacks, escalate_on_failure=escalate_on_failure)
    router = _router_from(config) if router is None else router
    try:
        known = router.registry.providers()
        if embeddings_provider is not None and embeddings_provider not in known:
            raise ConfigError(f"embeddings_provider {embeddings_provider!r} is not a provider of the model registry "
                              f"(it has {', '.join(sorted(known)) or 'none'})",
                              [("embeddings_provider", "unknown provider")])
        tenant_keys = None if tenants is None else load_tenants(tenants, residency=router.residency,
                                                                proxy_key=settings.api_key, providers=known)
    except ConfigError:
        if owned:
            router.close()
        raise
    proxy = _Proxy(router, settings, _Upstream(settings.upstream_timeout, settings.max_upstream_connections,
                                               transport), tenant_keys)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await proxy.upstream.open()
        try:
            yield
        finally:
            await proxy.upstream.close()
            if owned:
                await run_in_threadpool(router.close)

    guard = proxy.guarded
    routes = [
        Route("/v1/chat/completions", guard(proxy.chat_completions), methods=["POST"]),
        Route("/v1/responses", guard(proxy.responses), methods=["POST"]),
        Route("/v1/completions", guard(proxy.completions), methods=["POST"]),
        Route("/v1/embeddings", guard(proxy.embeddings), methods=["POST"]),
        Route(ANTHROPIC_PATH, guard(proxy.messages), methods=["POST"]),
        Route(ANTHROPIC_PATH + "/count_tokens", guard(proxy.count_tokens), methods=["POST"]),
        Route("/v1/models", guard(proxy.list_models), methods=["GET"]),
        Route("/v1/models/{model:path}", guard(proxy.retrieve_model), methods=["GET"]),
        Route("/v1/dmr/classify", guard(proxy.classify), methods=["POST"]),
        Route("/v1/dmr/outcomes", guard(proxy.record_outcome), methods=["POST"]),
        Route("/healthz", proxy.healthz, methods=["GET"]),
    ]
    handlers = {cls: render_error for cls in (APIError, HTTPException, DmrError, Exception)}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)  # type: ignore[arg-type]
    app.state.router = router
    app.state.settings = settings
    return app


def _tenant(request: Request) -> Tenant | None:
    return getattr(request.state, "tenant", None)


def _may_fall_back(error: APIError) -> bool:
    """Whether another model may answer what this one failed: its provider could not be reached,
    timed out, was rate-limited or failed on its side (not the proxy's own saturation), or the
    input alone overflows this model's context window (another's may be larger)."""
    if error.status in (400, 413) and input_overflows(error.message, error.type, error.code):
        return True
    return (error.status == 429 or error.status >= 500) and error.code != "proxy_busy"


def _fallback_header(failed: list[str]) -> dict[str, str]:
    return header_safe({"x-dmr-fallback": ", ".join(failed)}) if failed else {}


def _with_fallbacks(error: APIError, failed: list[str]) -> APIError:
    error.headers.update(_fallback_header(failed))
    return error


def _router_from(config: str | Path | Mapping[str, Any] | None) -> Any:
    from dmr.router import Router

    if config is None:
        return Router()
    if isinstance(config, (str, Path)):
        return Router.from_yaml(config)
    if isinstance(config, Mapping):
        return Router(**config)
    raise ConfigError(f"config: expected a dmr.yaml path or a mapping of Router options, got {type(config).__name__}",
                      [("config", "wrong type")])


class _Upstream:
    """The one HTTP client of the app, opened and closed by its lifespan."""

    def __init__(self, timeout: float, connections: int, transport: httpx.AsyncBaseTransport | None) -> None:
        self._timeout = timeout
        self._connections = connections
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            # Only when the app serves without its lifespan (mounted inside another app, whose
            # own lifespan does not run ours); such a client lives as long as the app.
            self._client = self._new()
        return self._client

    def _new(self) -> httpx.AsyncClient:
        # httpx's default pool (100 connections) would hold the 101st concurrent call back.
        limits = httpx.Limits(max_connections=self._connections,
                              max_keepalive_connections=min(self._connections, 100))
        return httpx.AsyncClient(timeout=httpx.Timeout(self._timeout), limits=limits, transport=self._transport,
                                 follow_redirects=False)

    async def open(self) -> None:
        await self.close()
        self._client = self._new()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class _Proxy:
    """The endpoints, over one Router, one set of settings and one upstream client."""

    def __init__(self, router: Any, settings: ServerSettings, upstream: _Upstream, tenants: Tenants | None) -> None:
        self.router = router
        self.settings = settings
        self.upstream = upstream
        self.tenants = tenants
        self.adaptations = Adaptations()
        self.answers = AnswerBook()

    def guarded(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` behind the proxy key or a tenant's key, when either is set; a tenant's
        request carries its :class:`Tenant` in ``request.state.tenant``."""
        key, tenants = self.settings.api_key, self.tenants
        if key is None and tenants is None:
            return endpoint
        expected = key.encode("utf-8") if key is not None else None

        async def checked(request: Request) -> Response:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer":
                # Anthropic's SDKs send their key as x-api-key.
                given = request.headers.get("x-api-key", "")
            given = given.strip()
            tenant = None
            if expected is None or not hmac.compare_digest(given.encode("utf-8"), expected):
                tenant = tenants.find(given) if tenants is not None and given else None
                if tenant is None:
                    raise APIError(401, "missing or wrong API key: send the proxy's key (or your tenant's) as "
                                        "'Authorization: Bearer <key>' (or as 'x-api-key: <key>')",
                                   code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
            request.state.tenant = tenant
            if tenant is not None and request.method == "POST":
                wait = (await run_in_threadpool(tenants.admit, tenant) if tenants.shared  # type: ignore[union-attr]
                        else tenants.admit(tenant))  # type: ignore[union-attr]
                if wait is not None:
                    raise APIError(429, f"tenant {tenant.name!r} sent more than its {tenant.rpm} requests a minute: "
                                        f"retry in {math.ceil(wait)} s", type="requests", code="rate_limit_exceeded",
                                   headers={"retry-after": str(math.ceil(wait)),
                                            "x-ratelimit-limit-requests": str(tenant.rpm),
                                            "x-ratelimit-remaining-requests": "0"})
            return await endpoint(request)

        return checked

    async def chat_completions(self, request: Request) -> Response:
        settings = self.settings
        body = await read_json(request, settings.max_body_bytes)
        model, messages, stream = await run_in_threadpool(chat_request, body, settings.aliases)
        where = await destination(self.router, settings.aliases, model, messages,
                                  named_models=settings.allow_named_models, tenant=_tenant(request),
                                  needs=needs_of(body))
        return await self._forward(where, body, stream)

    async def responses(self, request: Request) -> Response:
        return await self._translated(request, responses_request, response_object, ResponseEvents)

    async def completions(self, request: Request) -> Response:
        return await self._translated(request, completions_request, completion_object, CompletionEvents)

    async def embeddings(self, request: Request) -> Response:
        settings = self.settings
        provider = settings.embeddings_provider
        if provider is None:
            raise APIError(501, "this proxy passes no embeddings on: start it with --embeddings-provider NAME "
                                "(create_app(embeddings_provider=...)), a provider of the model registry",
                           code="embeddings_not_configured", retry=False)
        body = await read_json(request, settings.max_body_bytes)
        model, texts = await run_in_threadpool(embeddings_request, body)
        where = await embeddings_destination(self.router, provider, model, texts, _tenant(request))
        return await forward(self.upstream.client, self.router, where, body, False, settings.max_answer_bytes)

    async def messages(self, request: Request) -> Response:
        return await self._translated(request, messages_request, message_object, AnthropicEvents)

    async def count_tokens(self, request: Request) -> Response:
        body = await read_json(request, self.settings.max_body_bytes)
        _, chat, _, _ = await run_in_threadpool(messages_request, {**body, "stream": None}, self.settings.aliases)
        return JSONResponse({"input_tokens": await run_in_threadpool(input_tokens, chat)})

    async def _translated(self, request: Request, read: Callable[..., Any], retell: Callable[..., Any],
                          stream_events: Callable[..., Any]) -> Response:
        """An endpoint of another API: its request read into a chat body, routed and forwarded like a
        chat completion, the answer retold by ``retell`` (a stream by ``stream_events``)."""
        settings = self.settings
        body = await read_json(request, settings.max_body_bytes)
        model, chat, messages, stream = await run_in_threadpool(read, body, settings.aliases)
        where = await destination(self.router, settings.aliases, model, messages,
                                  named_models=settings.allow_named_models, tenant=_tenant(request),
                                  needs=needs_of(chat))
        return await self._forward(where, chat, stream, Translation(body, retell, stream_events))

    async def _forward(self, where: Destination, body: dict[str, Any], stream: bool,
                       translation: Translation | None = None) -> Response:
        """Forward to ``where``; when its provider fails before answering and the request was
        routed, to the next of its fallbacks (at most ``settings.fallbacks``). The answer's
        ``x-dmr-fallback`` header names each model that failed and why."""
        failed: list[str] = []
        others: list[Destination] | None = None
        while True:
            try:
                response = await forward(self.upstream.client, self.router, where, body, stream,
                                         self.settings.max_answer_bytes, translation=translation,
                                         adaptations=self.adaptations)
            except APIError as error:
                if where.decision is None or len(failed) >= self.settings.fallbacks or not _may_fall_back(error):
                    raise _with_fallbacks(error, failed)
                if others is None:
                    others = await run_in_threadpool(fallback_destinations, self.router, where,
                                                     self.settings.escalate_on_failure, needs_of(body),
                                                     body.get("messages"))
                if not others:
                    raise _with_fallbacks(error, failed)
                # llama.cpp's error code is the status again: its type says more.
                why = error.code if isinstance(error.code, str) and error.code else error.type
                failed.append(f"{where.provider}/{where.model} ({error.status} {why})")
                log.warning("dmr: %s/%s failed (%s %s): trying %s/%s", where.provider, where.model, error.status,
                            why, others[0].provider, others[0].model)
                where = others.pop(0)
                continue
            if failed and where.decision is not None:
                self.answers.note(self.router.registry, where.decision, where.provider, where.model)
            response.headers.update(_fallback_header(failed))
            return response

    def _catalogue(self, tenant: Tenant | None) -> list[dict[str, Any]]:
        return catalogue(self.router, self.settings.aliases, named_models=self.settings.allow_named_models,
                         tenant=tenant)

    async def list_models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": self._catalogue(_tenant(request))})

    async def retrieve_model(self, request: Request) -> Response:
        name = request.path_params["model"]
        for entry in self._catalogue(_tenant(request)):
            if entry["id"] == name:
                return JSONResponse(entry)
        raise APIError(404, f"the model {name!r} does not exist here (see GET /v1/models)", param="model",
                       type="invalid_request_error", code="model_not_found")

    async def classify(self, request: Request) -> Response:
        body = await read_json(request, self.settings.max_body_bytes)
        task, history = await run_in_threadpool(classify_request, body)
        needs = classify_needs(body)
        tenant = _tenant(request)
        decision = await run_in_threadpool(lambda: self.router.classify(
            task, history=history, tenant_config=tenant.config if tenant is not None else None, needs=needs or None))
        headers = decision_headers(decision)
        if tenant is not None:  # as a routed call's answer says whose it was
            headers.update(header_safe({"x-dmr-tenant": tenant.name}))
        return JSONResponse(decision.to_dict(), headers=headers)

    async def record_outcome(self, request: Request) -> Response:
        outcome = await run_in_threadpool(outcome_request, await read_json(request, self.settings.max_body_bytes))
        outcome = self.answers.fill(outcome)
        try:
            tenant = _tenant(request)
            await run_in_threadpool(lambda: self.router.record_outcome(
                **outcome, tenant_config=tenant.config if tenant is not None else None))
        except ConfigError as exc:
            raise APIError(501, str(exc), code="no_decision_log", retry=False) from None
        return JSONResponse({"object": "dmr.outcome", "decision_id": outcome["decision_id"], "recorded": True},
                            status_code=202)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})
