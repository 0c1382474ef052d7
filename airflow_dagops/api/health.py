"""Monitoring routes, added to the dagops API blueprint (docs/operations.md):

    GET /health            is dagops able to work (no authentication: state DB, dags folder, version); with a
                           monitoring token or an Airflow JWT, also every repository's health and the overall one
    GET /health/{name}     one repository's health (token or JWT)
    GET /metrics           Prometheus text exposition, computed from the state DB (token or JWT)

Monitors, probes and scrapers have no browser session: they send `Authorization: Bearer <token>`, with either
`[dagops] metrics_token` (compared in constant time; it opens these three routes and nothing else) or an Airflow
JWT from `POST /auth/token` whose user may read the plugin. The blueprint's own login check lets these routes
through (PUBLIC_ENDPOINTS) because they check for themselves, here.
"""

from __future__ import annotations

import hmac

from flask import Response, jsonify, request

from airflow_dagops import settings
from airflow_dagops.api import auth
from airflow_dagops.api.blueprint import api_blueprint
from airflow_dagops.api.errors import ApiError
from airflow_dagops.api.openapi import NAME_PARAM, SCHEMAS, json_content, register, schema_ref
from airflow_dagops.health import prometheus
from airflow_dagops.health import service as health_service
from airflow_dagops.repositories import info as repo_info
from airflow_dagops.statuses import FailureReason, HealthState, OverallHealth


@api_blueprint.get("/health")
def health():
    result = repo_info.health()
    if result["status"] == "ok" and _monitor_allowed(required=False):
        result.update(health_service.health_report().to_dict())
    return jsonify(result), 200 if result["status"] == "ok" else 503


@api_blueprint.get("/health/<name>")
def health_of_repository(name: str):
    _monitor_allowed(required=True)
    return jsonify(health_service.repository_health(name).to_dict())


@api_blueprint.get("/metrics")
def metrics():
    _monitor_allowed(required=True)
    return Response(prometheus.render(), mimetype=None, content_type=prometheus.CONTENT_TYPE)


def _monitor_allowed(*, required: bool) -> bool:
    """The monitoring token, or an Airflow login that may read the plugin. Without either: False, or (required)
    401 / 403 in the API's envelope."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    token = settings.get("metrics_token")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
        return True
    principal = auth.current_principal()
    if principal is not None and auth.is_allowed(principal, "read"):
        return True
    if not required:
        return False
    if principal is None:
        raise ApiError(401, "unauthenticated", "send Authorization: Bearer <[dagops] metrics_token or Airflow JWT>")
    raise ApiError(403, "forbidden", "your Airflow role does not allow this (read); see docs/api.md")


# -- OpenAPI ------------------------------------------------------------------------------------------------------
_TIME = {"type": ["string", "null"], "format": "date-time"}
_REPOSITORY_HEALTH = {
    "type": "object",
    "properties": {
        "repository": {"type": "string"},
        "state": {"type": "string", "enum": [state.value for state in HealthState]},
        "reason": {
            "type": ["string", "null"],
            "description": "failing: why the newest sync failed; paused: disabled or pinned",
            "enum": [*(reason.value for reason in FailureReason), "disabled", "pinned", None],
        },
        "since": _TIME,
        "message": {"type": "string"},
        "consecutive_failures": {"type": "integer"},
        "last_success_at": _TIME,
        "last_failure": {"type": ["object", "null"]},
        "poll_interval": {"type": "integer", "description": "seconds, as judged (at least sync_schedule's period)"},
        "stale_after": {"type": "integer", "description": "seconds without a successful check before stale"},
    },
}
_HEALTH = {
    "type": "object",
    "properties": {
        **SCHEMAS["Health"]["properties"],
        "overall": {
            "type": "string",
            "enum": [each.value for each in OverallHealth],
            "description": "with a token or a login only",
        },
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "repositories": {"type": "array", "items": schema_ref("RepositoryHealth")},
    },
}
# The repository routes add it (api/blueprint.py); null when health settings cannot be read.
SCHEMAS["Repository"]["properties"]["health"] = {"oneOf": [{"type": "null"}, schema_ref("RepositoryHealth")]}
_TOKEN_OR_LOGIN: list[dict] = [{"bearer": []}, {"cookie": []}]  # the bearer token may also be [dagops] metrics_token
_401 = json_content(schema_ref("Error"), "No monitoring token and no Airflow login")
_403 = json_content(schema_ref("Error"), "An Airflow login without read access to the plugin")

register(
    paths={
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Is dagops able to work; with a token or a login, every repository's health too",
                "description": "No authentication needed for the installation's own status; with `[dagops] "
                "metrics_token` or an Airflow JWT, also `overall` and `repositories` (docs/operations.md).",
                "security": [{}, *_TOKEN_OR_LOGIN],
                "responses": {"200": json_content(schema_ref("Health")), "503": json_content(schema_ref("Health"))},
            }
        },
        "/health/{name}": {
            "get": {
                "operationId": "health_of_repository",
                "summary": "One repository's health",
                "security": _TOKEN_OR_LOGIN,
                "parameters": [NAME_PARAM],
                "responses": {
                    "200": json_content(schema_ref("RepositoryHealth")),
                    "401": _401,
                    "403": _403,
                    "404": json_content(schema_ref("Error"), "No such repository"),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus text exposition of dagops' metrics (docs/operations.md)",
                "security": _TOKEN_OR_LOGIN,
                "responses": {
                    "200": {
                        "description": "Prometheus text format 0.0.4",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _401,
                    "403": _403,
                },
            }
        },
    },
    schemas={"RepositoryHealth": _REPOSITORY_HEALTH, "Health": _HEALTH},
)
