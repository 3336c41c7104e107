"""Run the service with uvicorn: JSON access logs on stderr, SIGHUP reloads the artifact."""

from __future__ import annotations

import logging
import sys

import uvicorn

from crossrec.serving.app import create_app
from crossrec.serving.settings import ServeSettings

__all__ = ["configure_logging", "run_server"]


def configure_logging(level: str = "info") -> None:
    """Access lines (already JSON) and service messages to stderr, one per line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("crossrec.access", "crossrec.serving"):
        target = logging.getLogger(name)
        target.handlers[:] = [handler]
        target.setLevel(level.upper())
        target.propagate = False


def run_server(settings: ServeSettings, *, log_level: str = "info") -> None:
    """Load the artifact, then serve until SIGINT/SIGTERM (one process, one event loop)."""
    configure_logging(log_level)
    app = create_app(settings.artifact, settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        access_log=False,  # ours is JSON and leaves ids out
        log_level=log_level,
        lifespan="on",
        server_header=False,
    )
    uvicorn.Server(config).run()
