"""Webhook receiver and pull-request check reports: thin HTTP faces over `webhook_service` and `checks`.

- `POST /pluginsv2/dagops/api/v1/webhooks/{github|gitlab|gitea|bitbucket}`: its own blueprint,
  `webhook_blueprint`, because Git hosts cannot log in to Airflow: each delivery proves itself with
  its signature instead (see airflow_dagops/webhook_service.py for the order of checks).
- `GET /pluginsv2/dagops/api/v1/checks/{id}`: a route of the REST API blueprint, behind Airflow's login
  like every other API route; it is the "Details" link of the commit status.

Import this module before the API blueprint is registered with an app (plugin.py does), so the check
route is part of it.
"""

from __future__ import annotations

from functools import partial

from flask import Blueprint, jsonify, request, url_for

from airflow_dagops import metrics
from airflow_dagops.airflow import bridge as airflow_bridge
from airflow_dagops.api.blueprint import PREFIX, api_blueprint
from airflow_dagops.api.errors import answer_in_the_envelope, exempt_from_form_csrf
from airflow_dagops.api.openapi import json_content, operation, register, schema_ref
from airflow_dagops.checks import service as checks
from airflow_dagops.statuses import CheckStatus
from airflow_dagops.webhooks import PROVIDERS
from airflow_dagops.webhooks import service as webhook_service

MAX_BODY = webhook_service.MAX_BODY

webhook_blueprint = Blueprint("dagops_webhooks", __name__, url_prefix=f"{PREFIX}/webhooks")


exempt_from_form_csrf(webhook_blueprint)  # the signature authenticates a delivery instead
answer_in_the_envelope(webhook_blueprint)


@webhook_blueprint.after_request
def _count_delivery(response):
    """Every answer, refusals included (a bad signature is 401 here and nowhere else): `dagops.webhook.deliveries`."""
    provider = (request.view_args or {}).get("provider")
    metrics.incr(
        "webhook.deliveries",
        tags={"provider": provider if provider in PROVIDERS else "unknown", "status": response.status_code},
    )
    return response


@webhook_blueprint.post("/<provider>")
def receive(provider: str):
    answer = webhook_service.receive(provider, dict(request.headers), _raw_body())
    return jsonify(answer.body), answer.status


def _raw_body() -> bytes:
    """The exact bytes the sender signed, at most MAX_BODY of them."""
    too_large = webhook_service.PayloadTooLarge(f"webhook bodies are limited to {MAX_BODY // 1024} KiB")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise too_large
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise too_large
    return raw


# -- check reports (Airflow login, read permission) -------------------------------------------------------------
@api_blueprint.get("/checks/<int:run_id>")
def get_check(run_id: int):
    checks.reconcile_check(run_id, partial(airflow_bridge.dag_run_states, airflow_bridge.VALIDATE_DAG_ID))
    check = checks.get_check(run_id)
    links = {"self": url_for("dagops_api.get_check", run_id=run_id)}
    if check["airflow_run_id"]:
        links["airflow_run"] = airflow_bridge.run_url(airflow_bridge.VALIDATE_DAG_ID, check["airflow_run_id"])
    return jsonify({**check, "links": links})


# -- OpenAPI ------------------------------------------------------------------------------------------------------
_NULLABLE = {"type": ["string", "null"]}
_ANSWER = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["triggered", "queued", "ignored", "duplicate", "pong"]},
        "delivery": {"type": "string", "description": "the provider's delivery id (or a hash of the body)"},
        "reason": {"type": "string", "description": "why nothing was started (ignored)"},
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "repository": {"type": "string"},
                    "commit": {"type": "string"},
                    "sync_id": {"type": "integer"},
                    "airflow_run_id": {"type": "string"},
                    "status": {"type": "string"},
                    "coalesced": {"type": "boolean", "description": "joined a sync that was already queued"},
                },
            },
        },
        "skipped": {"type": "array", "items": {"type": "object"}},
        "checks": {"type": "array", "items": schema_ref("CheckRun")},
    },
}
_CHECK = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "repository": {"type": "string"},
        "provider": {"type": "string", "enum": ["github", "gitlab", "gitea"]},
        "number": {"type": "integer", "description": "pull / merge request number"},
        "ref": {"type": "string", "description": "refs/pull/N/head or refs/merge-requests/N/head"},
        "head_sha": {"type": "string"},
        "status": {"type": "string", "enum": [status.value for status in CheckStatus]},
        "description": {"type": "string", "description": "what the commit status says"},
        "summary": {"type": ["object", "null"]},
        "findings": {"type": "array", "items": schema_ref("Finding")},
        "error": _NULLABLE,
        "reported": {"type": "boolean", "description": "the Git host accepted the last commit status"},
        "report_error": _NULLABLE,
        "airflow_run_id": _NULLABLE,
        "created_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "duplicate": {"type": "boolean", "description": "this head was already checked"},
        "links": {"type": "object"},
    },
}


def _webhook_error(description: str) -> dict:
    return json_content(schema_ref("Error"), description)


register(
    paths={
        "/webhooks/{provider}": {
            "post": {
                "operationId": "receive_webhook",
                "summary": "Receive a push or pull/merge request webhook from a Git host (docs/webhooks.md)",
                "description": "Authenticated by the delivery's signature (GitHub X-Hub-Signature-256, GitLab "
                "X-Gitlab-Token, Gitea X-Gitea-Signature, Bitbucket X-Hub-Signature) with the secret in an Airflow "
                "connection, not by an Airflow login.",
                "security": [],
                "parameters": [
                    {"name": "provider", "in": "path", "required": True, "schema": {"enum": list(PROVIDERS)}}
                ],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {
                    "200": json_content(schema_ref("WebhookAnswer"), "Ping answered, or a replayed delivery"),
                    "202": json_content(schema_ref("WebhookAnswer"), "Sync or check started, or event ignored"),
                    "400": _webhook_error("Signed, but not a JSON object"),
                    "401": _webhook_error("Missing or invalid signature (the same answer whatever was wrong)"),
                    "404": _webhook_error("Unknown provider"),
                    "413": _webhook_error(f"Body larger than {MAX_BODY // 1024} KiB"),
                    "503": _webhook_error("Airflow cannot run dagops_sync / dagops_validate now; retry"),
                },
            }
        },
        "/checks/{id}": {
            "get": operation(
                "get_check",
                "One pull-request check: status, findings, commit status report",
                json_content(schema_ref("CheckRun")),
                params=[{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}],
            )
        },
    },
    schemas={"WebhookAnswer": _ANSWER, "CheckRun": _CHECK},
)
