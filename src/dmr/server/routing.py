"""Where one chat completion goes: a routing alias is classified by the Router and sent to the
model its decision names; a model of the registry goes to its provider unrouted (unless the app
turns named models off), still under the PII block and a spent ``on_stop: raise`` budget
(:mod:`dmr.server.guards`).

Every provider is reached at its registry ``base_url`` + ``/chat/completions`` (``/embeddings`` for
the embeddings the proxy passes on) with OpenAI's wire format. Anthropic and Google speak their own APIs at their native endpoints; the proxy reaches
them only when the registry points them at an OpenAI-compatible one (theirs, or a gateway's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool

from dmr.integrations.target import NATIVE_PROVIDERS
from dmr.registry import ModelRegistry
from dmr.server.bodies import conversation
from dmr.server.errors import APIError
from dmr.server.guards import refuse_personal_data, refuse_personal_texts, refuse_when_spent
from dmr.server.tenants import Tenant
from dmr.types import Decision

__all__ = ["Destination", "catalogue", "decision_headers", "destination", "embeddings_destination",
           "fallback_destinations", "header_safe"]

# Each native provider's own host, and the path its OpenAI-compatible endpoint ends with there.
_OPENAI_COMPATIBLE_AT = {"anthropic": ("api.anthropic.com", "/v1"),
                         "google": ("generativelanguage.googleapis.com", "/openai")}
_COMPATIBLE_EXAMPLE = {"anthropic": "https://api.anthropic.com/v1",
                       "google": "https://generativelanguage.googleapis.com/v1beta/openai"}
_UNSAFE_HEADER_CHARS = re.compile(r"[^\x20-\x7e]")


@dataclass(frozen=True)
class Destination:
    """The upstream call for one request; ``decision`` is None for a model named by the client;
    ``key_env`` is the variable the provider's key comes from (None: a provider without a key)."""

    provider: str
    model: str
    url: str
    api_key: str | None
    decision: Decision | None
    key_env: str | None = None
    tenant: Tenant | None = None

    def headers(self) -> dict[str, str]:
        """The ``x-dmr-*`` response headers that say how the request was routed."""
        # The model that answers: the decision's, or a fallback's (:func:`fallback_destinations`).
        named = {"x-dmr-model": self.model, "x-dmr-provider": self.provider}
        if self.tenant is not None:
            named["x-dmr-tenant"] = self.tenant.name
        if self.decision is not None:
            return {**decision_headers(self.decision), **header_safe(named)}
        return header_safe(named)


def decision_headers(decision: Decision) -> dict[str, str]:
    return header_safe({
        "x-dmr-decision-id": decision.decision_id, "x-dmr-tier": str(decision.tier),
        "x-dmr-model": decision.model_name or "", "x-dmr-provider": decision.provider or "",
        "x-dmr-task-type": str(decision.task_type), "x-dmr-complexity": str(decision.complexity)})


def header_safe(headers: dict[str, str]) -> dict[str, str]:
    # Registry names are free text; an HTTP header value is not (Latin-1, no control characters).
    return {name: _UNSAFE_HEADER_CHARS.sub("?", value) for name, value in headers.items()}


async def destination(router: Any, aliases: tuple[str, ...], model: str, messages: list[dict[str, Any]], *,
                      named_models: bool = True, tenant: Tenant | None = None, needs: list[str] | None = None
                      ) -> Destination:
    """Classify (for an alias) or look up (for a model name) where the request goes; a tenant's
    request is routed with its ``tenant_config``, and may name only the models it could be routed to.
    ``needs``: what the request needs of its model (:func:`dmr.server.bodies.needs_of`)."""
    registry: ModelRegistry = router.registry
    if model in aliases:
        # Reading the conversation and classifying it are CPU work (and Layer 2 a blocking call):
        # off the event loop, so that streams in flight keep flowing.
        decision = await run_in_threadpool(_routed, router, messages, tenant, needs)
        if not decision.model_name or not decision.provider:
            raise APIError(500, f"the router chose tier {decision.tier} but the registry has no model for it: "
                                "register a provider with a model per tier", code="no_model_for_tier",
                           headers=decision_headers(decision), retry=False)
        provider, name = decision.provider, decision.model_name
    else:
        if not named_models:
            raise _no_such_model(model, aliases, "is not offered here: this proxy only routes, so")
        provider, name, decision = _provider_of(registry, model, aliases), model, None
        _refuse_outside(router, tenant, provider, name)
        await run_in_threadpool(_unrouted, router, messages, tenant)
    return _at(registry, provider, name, decision, "/chat/completions", tenant)


async def embeddings_destination(router: Any, provider: str, model: str, texts: list[str],
                                 tenant: Tenant | None = None) -> Destination:
    """Where ``POST /v1/embeddings`` goes: ``provider``'s ``/embeddings``, unrouted, once the
    texts pass the PII block and the budget (and the tenant's) is not spent with ``on_stop: raise``."""
    _refuse_outside(router, tenant, provider, model)
    await run_in_threadpool(_unrouted_texts, router, texts, tenant)
    return _at(router.registry, provider, model, None, "/embeddings", tenant)


def fallback_destinations(router: Any, where: Destination, higher_tiers: bool = False,
                          needs: list[str] | None = None,
                          messages: list[dict[str, Any]] | None = None) -> list[Destination]:
    """Where a routed request may go when ``where``'s provider fails: the Router's
    :meth:`~dmr.router.Router.fallbacks` for its decision (and tenant; with ``higher_tiers``, then
    the higher tiers of its provider), each reached like the decision's own model; one the proxy
    cannot reach (no key, no ``base_url``, a native API), that cannot do what the request ``needs``,
    or whose context window cannot hold its ``messages``, is left out. A model the client named has none."""
    if where.decision is None:
        return []
    out = []
    tenant = where.tenant
    task, history = conversation(messages) if messages else (None, None)
    for provider, model in router.fallbacks(where.decision, tenant.config if tenant is not None else None,
                                            higher_tiers=higher_tiers, needs=needs or None, text=task,
                                            history=history):
        try:
            out.append(_at(router.registry, provider, model, where.decision, "/chat/completions", tenant))
        except APIError:
            continue
    return out


def _at(registry: ModelRegistry, provider: str, name: str, decision: Decision | None, path: str,
        tenant: Tenant | None = None) -> Destination:
    spec = registry.provider(provider)
    key = spec.api_key()
    where = Destination(provider, name, "", key, decision, spec.api_key_env, tenant)
    url = _endpoint(provider, spec.base_url, where, path)
    if spec.api_key_env and not key:
        raise APIError(500, f"the proxy has no API key for provider {provider!r}: set {spec.api_key_env} in the "
                            "environment of `dmr serve`", code="provider_key_missing",
                       headers=where.headers(), retry=False)
    return Destination(provider, name, url, where.api_key, decision, spec.api_key_env, tenant)


def _routed(router: Any, messages: list[dict[str, Any]], tenant: Tenant | None, needs: list[str] | None) -> Decision:
    refuse_personal_data(router, messages)
    task, history = conversation(messages)
    return router.classify(task, history=history, tenant_config=tenant.config if tenant is not None else None,
                           needs=needs or None)


def _unrouted(router: Any, messages: list[dict[str, Any]], tenant: Tenant | None) -> None:
    refuse_personal_data(router, messages)
    _refuse_when_spent(router, tenant)


def _unrouted_texts(router: Any, texts: list[str], tenant: Tenant | None) -> None:
    refuse_personal_texts(router, texts, "input")
    _refuse_when_spent(router, tenant)


def _refuse_when_spent(router: Any, tenant: Tenant | None) -> None:
    refuse_when_spent(router)
    if tenant is not None:
        tenant.refuse_when_spent(router)


def _refuse_outside(router: Any, tenant: Tenant | None, provider: str, model: str) -> None:
    """A 403 for a model outside the Router's residency, or outside what the tenant may use."""
    why = _outside(router, tenant, provider, model)
    if why is not None:
        who = f"tenant {tenant.name!r}" if tenant is not None else "this proxy"
        raise APIError(403, f"{who} may not use {provider}/{model}: {why}", param="model",
                       type="invalid_request_error", code="model_not_allowed", retry=False)


def _outside(router: Any, tenant: Tenant | None, provider: str, model: str) -> str | None:
    residency = getattr(router, "residency", None)
    if tenant is not None:
        return tenant.refusal(router.registry, provider, model, residency)
    if residency is not None and residency not in router.registry.regions_of(model, provider=provider):
        return f"{model!r} is not served in the residency region {residency}"
    return None


def _provider_of(registry: ModelRegistry, model: str, aliases: tuple[str, ...]) -> str:
    """The provider of a model the client named: the one its registry entry names, else the first
    that offers it at some tier."""
    spec = registry.model(model)
    if spec is not None and spec.provider in registry.providers():
        return spec.provider  # type: ignore[return-value]
    for provider in registry.providers():
        if model in registry.provider(provider).tiers.values():
            return provider
    raise _no_such_model(model, aliases, "is in the registry but no provider offers it;" if spec is not None
                         else "does not exist here:")


def _no_such_model(model: str, aliases: tuple[str, ...], why: str) -> APIError:
    routes = ", ".join(repr(a) for a in aliases)
    return APIError(404, f"the model {model!r} {why} use {routes} to let dmr route, or a model listed by "
                         "GET /v1/models", param="model", type="invalid_request_error", code="model_not_found")


def _endpoint(provider: str, base_url: str | None, where: Destination, path: str) -> str:
    if provider in NATIVE_PROVIDERS:
        host, compatible_path = _OPENAI_COMPATIBLE_AT.get(provider, ("", ""))
        parts = urlsplit(base_url or "")
        if base_url is None or (parts.hostname == host and not parts.path.rstrip("/").endswith(compatible_path)):
            example = _COMPATIBLE_EXAMPLE.get(provider, "an OpenAI-compatible URL")
            raise APIError(501, f"provider {provider!r} speaks its own API, which this proxy does not translate: "
                                f"give it an OpenAI-compatible base_url in the model registry (e.g. {example}, "
                                "or a gateway's URL), or route to another provider (`provider:` in dmr.yaml)",
                           code="provider_not_openai_compatible", headers=where.headers(), retry=False)
    if base_url is None:
        raise APIError(500, f"provider {provider!r} has no base_url in the model registry", code="no_base_url",
                       headers=where.headers(), retry=False)
    return base_url.rstrip("/") + path


def catalogue(router: Any, aliases: tuple[str, ...], *, named_models: bool = True,
              tenant: Tenant | None = None) -> list[dict[str, Any]]:
    """``GET /v1/models``: the aliases, then (when clients may name them) every model a provider
    offers or the registry prices, less those outside the residency or the tenant's reach."""
    entries = [{"id": alias, "object": "model", "created": 0, "owned_by": "dmr"} for alias in aliases]
    if not named_models:
        return entries
    registry: ModelRegistry = router.registry
    owners: dict[str, str] = {}
    for provider in registry.providers():
        for name in registry.provider(provider).tiers.values():
            owners.setdefault(name, provider)
    for name in registry.models():
        spec = registry.model(name)
        owner = spec.provider if spec is not None and spec.provider else None
        owners[name] = owner or owners.get(name) or "unknown"
    restricted = tenant is not None or getattr(router, "residency", None) is not None
    entries += [{"id": name, "object": "model", "created": 0, "owned_by": owner}
                for name, owner in owners.items() if name not in aliases
                and not (restricted and (owner not in registry.providers() or _outside(router, tenant, owner, name)))]
    return entries
