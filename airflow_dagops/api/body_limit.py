"""Request bodies to dagops routes are size-limited before anything buffers them (a root ASGI middleware).

Airflow serves our Flask blueprints through Starlette's WSGIMiddleware at /pluginsv2, and that bridge reads
the whole request body into memory before Flask sees a byte of it: Flask's own limits (`read_body`, the
webhook receiver) come too late to protect the api-server. A 50 MB body took 7 s to refuse; a 300 MB
chunked upload grew the api-server by 500 MB and never got an answer.

So the plugin installs this middleware at the root of Airflow's FastAPI app (`fastapi_root_middlewares`).
For paths under /pluginsv2/dagops/ only, it

1. answers 413 from `Content-Length` alone, before reading the body at all;
2. counts the bytes of `http.request` messages as a chunked (or unannounced) body streams in, and past the
   limit answers 413 and stops reading: the application's read is abandoned (`_TooLarge`), and the answer
   says `Connection: close`, so the server drops the rest of the upload instead of reading it.

The answer is the API's error envelope (`{"error": {"code": "body_too_large", ...}}`). The limit is the
largest body the route can accept (see `body_limit`); the in-Flask checks stay as a second line, with each
route's exact limit. Other paths, and other scope types (websocket, lifespan), pass through untouched.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow_dagops import settings
from airflow_dagops.api.blueprint import MAX_BODY
from airflow_dagops.api.blueprint import PREFIX as API_PREFIX
from airflow_dagops.webhooks import service as webhook_service

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MOUNT = "/pluginsv2"  # where Airflow mounts the FAB provider's Flask app (airflow/api_fastapi/core_api/app.py)
PREFIX = MOUNT + "/dagops/"
_PROPOSALS = re.compile(r"^/dagops/api/v1/repositories/[^/]+/proposals/?$")


def body_limit(path: str) -> int:
    """The largest body (bytes) the dagops route at `path` (relative to /pluginsv2) may receive."""

    if path.startswith(f"{API_PREFIX}/webhooks/"):
        return webhook_service.MAX_BODY
    if _PROPOSALS.match(path):
        # The limit api/proposals.py passes to read_body: file contents may double in size as JSON.
        return MAX_BODY + 2 * settings.get_int("proposal_max_total_size")
    return MAX_BODY


class BodyLimitMiddleware:
    """Refuse request bodies larger than `limit_for(path)` to paths under `prefix`, before they are buffered."""

    def __init__(
        self, app: ASGIApp, *, limit_for: Callable[[str], int] = body_limit, prefix: str = PREFIX, mount: str = MOUNT
    ) -> None:
        self.app, self.limit_for, self.prefix, self.mount = app, limit_for, prefix, mount

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        if not path.startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(path[len(self.mount) :])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            # Refused before the first byte of the body is read: the client may not even have sent it yet
            # (Expect: 100-continue is never answered, since nothing asks for the body).
            log.info("refused a %d-byte body to %s before reading it (limit %d)", declared, path, limit)
            await _refuse(send, limit)
            return

        received = 0
        exceeded = False
        responded = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _TooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal responded
            if exceeded and not responded:
                # The application's answer to its abandoned read (an error page, from an exception handler
                # such as Starlette's ServerErrorMiddleware) is replaced by the 413.
                return
            if message["type"] == "http.response.start":
                responded = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except Exception:
            # Our _TooLarge, however the application wrapped it on its way out (an exception group, a
            # re-raise): once the limit was passed, this is the answer. Anything else is not ours to handle.
            if not exceeded:
                raise
        if exceeded:
            log.info("refused a streamed body to %s after %d bytes (limit %d)", path, received, limit)
            if not responded:
                await _refuse(send, limit)


class _TooLarge(Exception):
    """Raised from `receive` to the application: stop reading, the body is over the limit."""


def _route_path(scope: Scope) -> str:
    """The path without the app's root path (Airflow's `[api] base_url` path), as Starlette routes it."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "") or ""
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path


def _content_length(scope: Scope) -> int | None:
    """The declared body size; None when there is none (chunked) or it is not a number (counted instead)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, limit: int) -> None:
    message = f"request bodies to this route are limited to {_size(limit)}; nothing was read or done (see docs/api.md)"
    body = json.dumps(
        {"error": {"code": "body_too_large", "message": message, "details": {"limit_bytes": limit}}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the upload is never read: the connection cannot carry another request.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _size(limit: int) -> str:
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    return f"{limit // 1024} KiB" if limit >= 1024 else f"{limit} bytes"
