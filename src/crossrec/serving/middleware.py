"""Plain ASGI middleware (no per-request task overhead): request-body size limit and JSON access log."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AccessLogMiddleware", "BodySizeLimitMiddleware"]

access_logger = logging.getLogger("crossrec.access")

_METHODS_WITHOUT_BODY = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


async def _send_json(send: Send, status: int, payload: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimitMiddleware:
    """Answer 413 to a request whose body is larger than ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before reading; a chunked body is
    read up to the limit and refused as soon as it passes it. An accepted body is buffered and
    handed to the app in one message.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, send: Send) -> object:
        detail = f"request body too large: the limit is {self.max_bytes} bytes"
        return _send_json(send, 413, {"detail": detail}, [(b"connection", b"close")])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _METHODS_WITHOUT_BODY:
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await _send_json(send, 400, {"detail": "invalid Content-Length header"})
                    return
                if int(value) > self.max_bytes:
                    await self._too_large(send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class AccessLogMiddleware:
    """One JSON line per request on logger ``crossrec.access``.

    Logged: time, request id, method, route template (``/v1/users/{user_id}/recommendations``,
    not the raw path), status, duration, response bytes. Never logged: ids in the path, the
    query string, request bodies (user attributes, item ids) and headers (API keys). The
    request id (the client's ``X-Request-ID`` when it is a plain token, otherwise a new one) is
    echoed in the ``X-Request-ID`` response header.
    """

    def __init__(self, app: ASGIApp, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"")
        if not _REQUEST_ID.match(request_id):
            request_id = uuid.uuid4().hex[:16].encode()
        status = 500
        sent = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id)]}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if self.enabled and access_logger.isEnabledFor(logging.INFO):
                route = scope.get("route")
                record = {
                    "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "request_id": request_id.decode(),
                    "method": scope["method"],
                    "route": getattr(route, "path_format", None) or "<unmatched>",
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "bytes": sent,
                }
                access_logger.info(json.dumps(record))
