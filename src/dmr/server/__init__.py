"""The OpenAI-compatible proxy: ``create_app(router)`` is a Starlette app (``dmr serve`` runs it
with uvicorn). Point any OpenAI client at it and ask for the model ``"dmr"``: each request is
classified and forwarded to the cheapest adequate model. Needs the ``server`` extra:
``pip install 'dynamic-model-router[server]'``."""

from __future__ import annotations

from dmr.errors import NotAvailableError

try:
    from dmr.server.app import create_app
except ImportError as exc:  # only a missing server dependency is a clean error; anything else is a bug
    if (exc.name or "").split(".")[0] not in ("starlette", "httpx", "anyio"):
        raise
    raise NotAvailableError(f"the dmr server needs {exc.name}: pip install 'dynamic-model-router[server]'") from exc

__all__ = ["create_app"]
