"""Who is calling, and may they? Airflow does not protect plugin routes, so every route asks here.

Identity is Airflow's own JWT, from an `Authorization: Bearer` header (scripts) or the `_token` cookie
the Airflow UI sets at login (the page). It is resolved and authorized by whichever auth manager
Airflow runs (Simple, FAB, Keycloak, ...), so roles and permissions stay Airflow's. The mapping of
actions to Airflow permissions is documented in docs/api.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from dataclasses import dataclass

from flask import request

log = logging.getLogger(__name__)

TOKEN_COOKIE = "_token"  # noqa: S105 (a cookie name) - airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN
CSRF_HEADER = "X-DagOps-CSRF"
ACTIONS = ("read", "write", "delete", "connections", "admin")


@dataclass(frozen=True)
class Principal:
    user: object
    name: str
    token: str
    via_cookie: bool


def _auth_manager():
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def _token_from_request() -> tuple[str | None, bool]:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        return (value.strip() or None, False) if scheme.lower() == "bearer" else (None, False)
    return request.cookies.get(TOKEN_COOKIE) or None, True


def current_principal() -> Principal | None:
    """The signed-in user of this request, or None (no token, or an invalid/expired/revoked one)."""
    token, via_cookie = _token_from_request()
    if not token:
        return None
    # The auth manager's API is async; a WSGI request runs in a worker thread with no event loop.
    return asyncio.run(principal_of_token(token, via_cookie=via_cookie))


async def principal_of_token(token: str, *, via_cookie: bool = False) -> Principal | None:
    """The user an Airflow JWT stands for, or None (invalid, expired, revoked). The MCP face, an ASGI app with
    its own event loop, awaits this directly."""
    try:
        user = await _auth_manager().get_user_from_token(token)
    except Exception as err:  # any failure to resolve a token means "not authenticated", never a 500
        log.info("rejected a token: %s", type(err).__name__)
        return None
    return Principal(user=user, name=user.get_name(), token=token, via_cookie=via_cookie)


def is_allowed(principal: Principal, action: str) -> bool:
    """Map a dagops action onto the auth manager's permission checks (table in docs/api.md)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView

    manager = _auth_manager()
    user = principal.user
    if action == "read":
        return manager.is_authorized_view(access_view=AccessView.PLUGINS, user=user)
    if action == "write":
        return manager.is_authorized_dag(method="PUT", user=user)
    if action == "delete":
        return manager.is_authorized_dag(method="DELETE", user=user)
    if action == "connections":
        return manager.is_authorized_connection(method="GET", user=user)
    if action == "admin":
        # Auth managers have no "is an admin" question. An administrator manages Airflow's connections and
        # either may change its configuration (SimpleAuthManager ADMIN and OP) or edit its roles (FAB Admin:
        # only it has "can edit on Roles"; FAB's configuration is read-only for everyone).
        return manager.is_authorized_connection(method="DELETE", user=user) and (
            manager.is_authorized_configuration(method="PUT", user=user)
            or manager.is_authorized_custom_view(method="PUT", resource_name="Roles", user=user)
        )
    raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")


def _secret() -> bytes:
    from airflow.configuration import conf

    return (conf.get("api", "secret_key", fallback="") or "dagops").encode()


def csrf_token_for(principal: Principal) -> str:
    """An HMAC of the session's JWT: a page embeds it, another site cannot compute it."""
    return hmac.new(_secret(), b"dagops-csrf:" + principal.token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(principal: Principal) -> bool:
    """Header-authenticated requests need no token (browsers never add that header by themselves)."""
    if not principal.via_cookie:
        return True
    sent = request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(sent.encode(), csrf_token_for(principal).encode())


def login_url(next_url: str) -> str:
    try:
        return _auth_manager().get_url_login(next_url=next_url)
    except Exception:  # an auth manager that cannot build one: Airflow's default login route
        return "/auth/login"
