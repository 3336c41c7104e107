"""Run the service with uvicorn: JSON access logs on stderr, SIGHUP reloads the artifact, and
connections that are slow to send a request or too many are cut off.

uvicorn arms no timer while a request's headers or body are arriving (only between requests, the
keep-alive timeout), and its ``limit_concurrency`` answers 503 to new requests once the slow
connections fill it. :class:`GuardedProtocol` adds what a proxy would: a request must arrive
completely within ``request_timeout_s`` of the connection opening (or of its first byte on a
kept-alive connection), else the connection gets 408 and is closed; past ``max_connections`` open
connections a new one gets 503 and is closed at once. The process's open-file limit is raised so that
``max_connections`` sockets fit.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from crossrec.serving.app import create_app
from crossrec.serving.settings import ServeSettings

__all__ = ["GuardedProtocol", "configure_logging", "guarded_protocol", "raise_open_file_limit", "run_server"]

logger = logging.getLogger("crossrec.serving")

_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
_BUSY_RESPONSE = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request read timeout and a cap on open connections."""

    request_timeout_s: float = 10.0
    max_connections: int = 2048

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._read_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(_BUSY_RESPONSE)
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_timer is None:
            self._arm()

    def on_message_complete(self) -> None:
        self._disarm()  # the whole request is in: the app's time is not the client's
        super().on_message_complete()

    def _arm(self) -> None:
        self._read_timer = self.loop.call_later(self.request_timeout_s, self._timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


def guarded_protocol(request_timeout_s: float, max_connections: int) -> type[GuardedProtocol]:
    """A :class:`GuardedProtocol` class with these limits (uvicorn builds one instance per connection)."""
    return type(
        "GuardedProtocol",
        (GuardedProtocol,),
        {"request_timeout_s": float(request_timeout_s), "max_connections": int(max_connections)},
    )


def raise_open_file_limit(needed: int) -> int:
    """Raise the soft open-file limit towards ``needed`` (never above the hard limit); the new limit."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return needed
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


def configure_logging(level: str = "info") -> None:
    """Access lines (already JSON) and service messages to stderr, one per line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("crossrec.access", "crossrec.serving"):
        target = logging.getLogger(name)
        target.handlers[:] = [handler]
        target.setLevel(level.upper())
        target.propagate = False


def uvicorn_config(settings: ServeSettings, app: Any, *, log_level: str = "info") -> uvicorn.Config:
    """The uvicorn configuration of the service (timeouts, connection cap, no server header)."""
    limit = raise_open_file_limit(settings.max_connections + 256)
    max_connections = settings.max_connections
    if limit < max_connections + 64:
        max_connections = max(1, limit - 64)
        logger.warning(
            "the open-file limit is %d: serving at most %d connections instead of %d",
            limit,
            max_connections,
            settings.max_connections,
        )
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(settings.request_timeout_s, max_connections),
        timeout_keep_alive=max(1, round(settings.keep_alive_s)),
        access_log=False,  # ours is JSON and leaves ids out
        log_level=log_level,
        lifespan="on",
        server_header=False,
    )


def run_server(settings: ServeSettings, *, log_level: str = "info") -> None:
    """Load the artifact, then serve until SIGINT/SIGTERM (one process, one event loop)."""
    configure_logging(log_level)
    app = create_app(settings.artifact, settings)
    uvicorn.Server(uvicorn_config(settings, app, log_level=log_level)).run()
