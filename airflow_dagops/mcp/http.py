"""The MCP server on Airflow's api-server: streamable HTTP at /dagops/mcp, mounted through the plugin's
`fastapi_apps` (plugin.py). Airflow reserves /pluginsv2 (its Flask plugins) and mounts plugin apps before its own
UI's catch-all route, so this prefix is ours; it enters the lifespan of a mounted FastAPI app, which runs the MCP
session manager (stateless: any worker answers any request).

Every request must carry `Authorization: Bearer <Airflow JWT>` (from `POST /auth/token`, or the token the UI
holds); it is resolved by Airflow's auth manager (api/auth.principal_of_token, as the REST API resolves its own)
before the MCP layer sees the request: no token or a bad one is a 401 with `WWW-Authenticate: Bearer`, and no tool
runs. Each tool then asks `api/auth.is_allowed` for the REST API's permission of the same work (server.py).
Cookies are not accepted: a browser adds them to cross-site requests by itself, a header it never does.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from airflow_dagops import settings
from airflow_dagops.api import auth
from airflow_dagops.errors import Unauthenticated

URL_PREFIX = "/dagops"  # the mount: Airflow refuses plugin apps under /api/v2, /ui, /execution, /auth, /pluginsv2
PATH = "/mcp"
PRINCIPAL = "dagops_principal"  # the key of the resolved caller in the request's ASGI state


def mcp_app() -> FastAPI:
    """The ASGI app the plugin mounts. The MCP SDK loads when the api-server starts it (its lifespan), not when
    Airflow imports the plugin in a scheduler or a worker that never serves it."""
    holder: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        from airflow_dagops.mcp.server import build_server  # lazy: the MCP SDK loads only where it is served

        server = build_server(identify_http, max_body=_max_body())
        manager = StreamableHTTPSessionManager(
            app=server._mcp_server,
            stateless=True,
            json_response=True,
            security_settings=server.settings.transport_security,
            max_request_body_size=server.settings.max_request_body_size,
        )
        async with manager.run():
            holder["manager"] = manager
            try:
                yield
            finally:
                holder.pop("manager", None)

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        manager = holder.get("manager")
        if manager is None:  # lifespan not run (an app server without lifespan support)
            await _answer(send, 503, {"error": {"code": "unavailable", "message": "the MCP server is not started"}})
            return
        token = _bearer(scope)
        principal = await auth.principal_of_token(token) if token else None
        if principal is None:
            message = "send Authorization: Bearer <Airflow JWT> (POST /auth/token); see docs/assistants.md"
            await _answer(send, 401, {"error": {"code": "unauthenticated", "message": message}}, bearer=True)
            return
        scope.setdefault("state", {})[PRINCIPAL] = principal
        await manager.handle_request(scope, receive, send)

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    app.router.routes.append(Route(PATH, endpoint=_AsgiEndpoint(endpoint)))
    return app


async def identify_http(ctx):
    """The Caller of a tool call over HTTP: the principal the endpoint resolved for this request."""
    from airflow_dagops.mcp.tools import Caller  # lazy: the MCP SDK loads only where it is served

    request = ctx.request_context.request
    principal = getattr(request.state, PRINCIPAL, None) if request is not None else None
    if principal is None:  # the endpoint answers 401 before this; kept so no path runs a tool without a caller
        raise Unauthenticated("send Authorization: Bearer <Airflow JWT>")
    return Caller(
        name=principal.name,
        airflow_token=principal.token,
        allowed=lambda action: auth.is_allowed(principal, action),
    )


class _AsgiEndpoint:
    """A Starlette route endpoint that is an ASGI app (a plain function would be wrapped as request/response)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _bearer(scope: Scope) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
    return None


def _max_body() -> int:
    """A proposal's files, JSON-escaped (up to twice their size), plus the rest of the request."""
    return 64 * 1024 + 2 * settings.get_int("proposal_max_total_size")


async def _answer(send: Send, status: int, body: dict, *, bearer: bool = False) -> None:
    raw = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    if bearer:
        headers.append((b"www-authenticate", b'Bearer realm="dagops"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
