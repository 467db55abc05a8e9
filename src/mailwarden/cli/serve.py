"""`mailwarden serve`: the web console, the portal and the HTTP API under uvicorn."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from typing import Annotated, Any

import typer

from mailwarden.api.metrics import MULTIPROCESS_ENV
from mailwarden.setup import service as setup

from .context import CliState, state_of

_EPILOG = (
    "The web console answers at /, the self-service portal for mailbox users at /portal, "
    "and the public registration page at /register. On the first start (no admin yet) serve "
    "prints a one-time setup link that creates the first superadmin; set MAILWARDEN_PUBLIC_URL "
    "when people reach the console at another address than --host/--port.\n\n"
    "The API lives under /api/v1 (OpenAPI document at /api/v1/openapi.json, interactive docs "
    "at /api/docs); /healthz answers without a key, /metrics takes a superadmin key.\n\n"
    "Requests authenticate with an API key: `mailwarden apikey create --admin NAME`.\n\n"
    "Behind a reverse proxy, list it in MAILWARDEN_TRUSTED_PROXIES so that its "
    "X-Forwarded-For names the client; otherwise those headers are ignored.\n\n"
    "Examples:\n\n"
    "  mailwarden serve\n\n"
    "  mailwarden serve --host 0.0.0.0 --port 8080 --workers 4"
)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (one per core is a good start).")
    ] = 1,
    log_level: Annotated[
        str, typer.Option(help="critical, error, warning, info or debug.")
    ] = "info",
) -> None:
    """Serve the web console, the portal and the REST API over HTTP until interrupted."""
    import uvicorn

    state = state_of(ctx)
    # Fail here, with one clear line, rather than in every worker.
    state.check_schema()
    metrics_dir = None
    if workers > 1 and not os.environ.get(MULTIPROCESS_ENV):
        # Each worker counts its own requests; a shared directory lets any worker report all.
        metrics_dir = tempfile.mkdtemp(prefix="mailwarden-metrics-")
        os.environ[MULTIPROCESS_ENV] = metrics_dir
    base = state.settings.public_url.rstrip("/") or f"http://{host}:{port}"
    typer.echo(
        f"mailwarden: console at {base}/, portal at {base}/portal, API at {base}/api/v1 "
        f"(docs: /api/docs), {workers} worker{'s' if workers > 1 else ''}",
        err=True,
    )
    _announce_setup_link(state, base)
    try:
        uvicorn.run(
            "mailwarden.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            # Forwarding headers count only from MAILWARDEN_TRUSTED_PROXIES (see create_app),
            # never from uvicorn's default of trusting 127.0.0.1.
            proxy_headers=False,
            server_header=False,
            log_config=_log_config(),
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _announce_setup_link(state: CliState, base: str) -> None:
    """With no admin yet, print a fresh one-time link that creates the first superadmin."""
    with state.unit_of_work(dry_run=False) as uow:
        token = setup.issue_link_token(uow)
        uow.finish()
    if token is not None:
        minutes = state.settings.setup_link_minutes
        # stdout, unlike the other lines: it is the one thing to copy.
        typer.echo(
            f"No admin exists yet. Open this one-time link within {minutes} minutes to create "
            f"the first superadmin:\n\n    {base}/setup?token={token}\n"
        )


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus mailwarden's own loggers (errors, and each API key's use)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["mailwarden"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


SERVE_EPILOG = _EPILOG
