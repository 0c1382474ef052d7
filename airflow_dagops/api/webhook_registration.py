"""REST routes for dagops' webhook on the Git host (webhooks/registration.py), added to the API blueprint (its JWT
auth, CSRF check and error envelope apply). Registering and removing change the Git host with the connection's
admin-scoped token: they need write and Airflow's connection read permission (as choosing a connection does);
reading the deliveries needs read.

    POST   /repositories/{name}/webhook/registration   {"provider"?}  -> 200 {action: created|updated, hook, ...}
    DELETE /repositories/{name}/webhook/registration   ?provider=     -> 200 {action: deleted|absent, deleted}
    GET    /repositories/{name}/webhook/deliveries     ?provider=&limit= -> {registered, hook, deliveries, ...}

Answers never hold the secret ("secret": "set") or the token. A token without the scope to manage webhooks is 422
`host_permission_denied`, naming the scope; the host unreachable or refusing otherwise is 502 `host_api_failed`.
"""

from __future__ import annotations

from flask import jsonify, request

from airflow_dagops.api.blueprint import api_blueprint, read_body, require_connection_use
from airflow_dagops.api.errors import ApiError
from airflow_dagops.api.openapi import (
    GIT_HOST_ERRORS,
    NAME_PARAM,
    NULLABLE_STRING,
    json_content,
    operation,
    register,
    write_operation,
)
from airflow_dagops.api.openapi import schema_ref as ref
from airflow_dagops.webhooks import registration

_PROVIDER_PARAM = {"name": "provider", "in": "query", "schema": {"enum": list(registration.HOSTS)}}
_LIMIT_PARAM = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}}


@api_blueprint.post("/repositories/<name>/webhook/registration")
def register_webhook(name: str):
    body = read_body("WebhookRegistrationRequest")
    require_connection_use("registering a webhook")
    return jsonify(registration.register(name, provider=body.get("provider")))


@api_blueprint.delete("/repositories/<name>/webhook/registration")
def unregister_webhook(name: str):
    require_connection_use("removing a webhook")
    return jsonify(registration.unregister(name, provider=_provider()))


@api_blueprint.get("/repositories/<name>/webhook/deliveries")
def webhook_deliveries(name: str):
    raw = request.args.get("limit", str(registration.DELIVERIES))
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise ApiError(422, "invalid_query", "limit: a whole number from 1 to 100")
    return jsonify(registration.check(name, provider=_provider(), limit=int(raw)))


def _provider() -> str | None:
    provider = request.args.get("provider") or None
    if provider is not None and provider not in registration.HOSTS:
        raise ApiError(422, "invalid_query", f"provider: one of {', '.join(registration.HOSTS)}")
    return provider


# -- OpenAPI ------------------------------------------------------------------------------------------------------
_HOOK = {
    "type": "object",
    "properties": {
        "id": {"type": ["integer", "string"]},
        "url": {"type": "string"},
        "events": {"type": "array", "items": {"type": "string"}},
        "active": {"type": "boolean"},
    },
}
SCHEMAS = {
    "WebhookRegistrationRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "provider": {
                "enum": list(registration.HOSTS),
                "description": "default: the connection's `provider` extra, else the repository URL's host",
            }
        },
    },
    "WebhookRegistration": {
        "type": "object",
        "properties": {
            "repository": {"type": "string"},
            "provider": {"type": "string", "enum": list(registration.HOSTS)},
            "project": {"type": "string"},
            "action": {"type": "string", "enum": ["created", "updated"]},
            "hook": _HOOK,
            "url": {"type": "string", "description": "the payload URL: [api] base_url + the webhook path"},
            "content_type": {"type": "string", "enum": ["json"]},
            "events": {"type": "array", "items": {"type": "string"}},
            "secret": {"type": "string", "enum": ["set"], "description": "never the secret itself"},
            "secret_conn_id": {"type": "string"},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "duplicates": {"type": "array", "items": {"type": ["integer", "string"]}},
        },
    },
    "WebhookUnregistration": {
        "type": "object",
        "properties": {
            "repository": {"type": "string"},
            "provider": {"type": "string"},
            "action": {"type": "string", "enum": ["deleted", "absent"]},
            "deleted": {"type": "array", "items": {"type": ["integer", "string"]}},
        },
    },
    "WebhookDeliveries": {
        "type": "object",
        "properties": {
            "repository": {"type": "string"},
            "provider": {"type": "string"},
            "registered": {"type": "boolean"},
            "hook": {"oneOf": [_HOOK, {"type": "null"}]},
            "deliveries_available": {"type": "boolean"},
            "unavailable_reason": NULLABLE_STRING,
            "deliveries": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": ["integer", "string", "null"]},
                        "event": NULLABLE_STRING,
                        "delivered_at": NULLABLE_STRING,
                        "status_code": {"type": ["integer", "null"], "description": "what dagops answered"},
                        "ok": {"type": "boolean"},
                        "duration": {"type": ["number", "null"]},
                        "redelivery": {"type": "boolean"},
                    },
                },
            },
        },
    },
}
register(
    paths={
        "/repositories/{name}/webhook/registration": {
            "post": write_operation(
                "register_webhook",
                "Create dagops' webhook on GitHub, GitLab or Gitea with the repository's connection token, or update "
                "the one with the same payload URL (idempotent); the secret is never returned",
                json_content(ref("WebhookRegistration")),
                errors=GIT_HOST_ERRORS,
                body="WebhookRegistrationRequest",
            ),
            "delete": write_operation(
                "unregister_webhook",
                "Delete every webhook with dagops' payload URL from the repository on its Git host",
                json_content(ref("WebhookUnregistration")),
                errors=GIT_HOST_ERRORS,
                params=[NAME_PARAM, _PROVIDER_PARAM],
            ),
        },
        "/repositories/{name}/webhook/deliveries": {
            "get": operation(
                "webhook_deliveries",
                "dagops' webhook on the Git host and its last deliveries with the status dagops answered (GitHub, "
                "GitLab 17+; Gitea's API lists none: `unavailable_reason` says so)",
                json_content(ref("WebhookDeliveries")),
                errors=GIT_HOST_ERRORS,
                params=[NAME_PARAM, _PROVIDER_PARAM, _LIMIT_PARAM],
            )
        },
    },
    schemas=SCHEMAS,
)
