"""``dmr serve``: the OpenAI-compatible proxy (:mod:`dmr.server`) under uvicorn."""

from __future__ import annotations

import importlib
import ipaddress
from pathlib import Path

import click

from dmr.cli._common import build_router, config_option
from dmr.cli.main import cli
from dmr.errors import NotAvailableError


def _require_server_extra() -> None:
    for module in ("starlette", "uvicorn"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise NotAvailableError(f"`dmr serve` needs {module}: pip install 'dynamic-model-router[server]'") from None


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback exposes the proxy (set --api-key).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@config_option
@click.option("--preset", help="Use a domain preset (see `dmr presets`).")
@click.option("--api-key", default=None,
              help="Key clients must send as 'Authorization: Bearer <key>' (default: $DMR_SERVER_API_KEY; "
                   "unset: none). Prefer the variable: a key on the command line is visible to other users "
                   "in `ps`.")
@click.option("--alias", "aliases", multiple=True,
              help="A model name that asks for routing (repeatable; default: dmr, dmr-auto, auto).")
@click.option("--upstream-timeout", type=click.FloatRange(min=0.1), default=300.0, show_default=True,
              help="Seconds to wait on a provider to connect and for each read of its answer.")
@click.option("--max-upstream-connections", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Connections open to providers at once; a request that finds all busy for --upstream-timeout "
                   "gets 503 proxy_busy.")
@click.option("--max-answer-bytes", type=click.IntRange(min=1), default=64 * 1024 * 1024, show_default=True,
              help="The largest plain (not streamed) answer a provider may send; past it: 502.")
@click.option("--named-models/--no-named-models", default=True, show_default=True,
              help="Let clients name a registry model and skip routing (still under the PII block and a spent "
                   "on_stop: raise budget); --no-named-models serves the aliases only.")
@click.option("--embeddings-provider", metavar="NAME", default=None,
              help="A provider of the model registry that POST /v1/embeddings is passed to, unrouted (default: "
                   "none; the endpoint answers 501).")
@click.option("--fallbacks", type=click.IntRange(min=0), default=2, show_default=True,
              help="How many other providers of the router's `providers` list a routed request may go to when "
                   "its provider fails before answering (unreachable, timeout, 429, 5xx); 0: none.")
@click.option("--escalate-on-failure/--no-escalate-on-failure", default=False, show_default=True,
              help="Let a failed routed request go on to the higher tiers of its own provider (after the other "
                   "providers, within --fallbacks; never past a budget cap or a tenant's max_tier).")
@click.option("--tenants", "tenants_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A tenants file: each tenant's key (key_env or key_sha256) and the tenant_config its requests "
                   "are routed with (providers, tier bounds, residency, its own budget_usd).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True, help="uvicorn's log level.")
def serve(host: str, port: int, config_path: Path | None, preset: str | None, api_key: str | None,
          aliases: tuple[str, ...], upstream_timeout: float, max_upstream_connections: int, max_answer_bytes: int,
          named_models: bool, embeddings_provider: str | None, fallbacks: int, escalate_on_failure: bool,
          tenants_path: Path | None,
          log_level: str) -> None:
    """Serve the OpenAI-compatible proxy: point any OpenAI client at http://HOST:PORT/v1 and ask
    for the model "dmr"."""
    _require_server_extra()
    import uvicorn

    from dmr.server import create_app

    router = build_router(config_path, preset)
    # The app's shutdown closes the Router (flushing its decision log): uvicorn ends the process
    # with the signal that stopped it, so nothing after uvicorn.run would run.
    try:
        app = create_app(router, aliases=aliases or None, api_key=api_key, upstream_timeout=upstream_timeout,
                         max_upstream_connections=max_upstream_connections, max_answer_bytes=max_answer_bytes,
                         allow_named_models=named_models, embeddings_provider=embeddings_provider,
                         fallbacks=fallbacks, escalate_on_failure=escalate_on_failure, tenants=tenants_path,
                         close_router=True)
    except BaseException:
        router.close()
        raise
    if app.state.settings.api_key is None and tenants_path is None and not _loopback(host):
        click.echo(f"warning: serving on {host} without a key: anyone who can reach it spends your provider "
                   "credit (set --api-key or DMR_SERVER_API_KEY)", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, ws="none", lifespan="on")
