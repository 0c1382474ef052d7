"""REST routes of alerts and release health, added to the dagops API blueprint (its JWT auth and error envelope
apply; reading needs the plugin's read permission). docs/operations.md describes both.

    GET /repositories/{name}/release-health?release=ID
        -> the release (default: the live one) against the release live before it: DAG runs, success rate, mean
           duration, and the differences; with the repository's `auto_rollback` rule
    GET /repositories/{name}/alerts
        -> the repository's `alerts` and `auto_rollback` options and what its alerts last said (the health they
           last knew, the last commit announced as failing validation, the last delivery and its error)

The releases list (`GET /repositories/{name}/releases`) carries each release's `run_health` too (api/blueprint.py).
"""

from __future__ import annotations

from flask import jsonify, request

from airflow_dagops.alerts import release_health
from airflow_dagops.api.blueprint import api_blueprint
from airflow_dagops.api.errors import ApiError
from airflow_dagops.api.openapi import NAME_PARAM, json_content, operation, register, schema_ref
from airflow_dagops.api.openapi import SCHEMAS as BASE_SCHEMAS

MAX_ID = 2**31 - 1


@api_blueprint.get("/repositories/<name>/release-health")
def release_health_of(name: str):
    raw = request.args.get("release")
    if raw and (not raw.isdigit() or not 0 < int(raw) <= MAX_ID):
        raise ApiError(422, "invalid_query", "release must be a release id")
    return jsonify(release_health.release_health(name, int(raw) if raw else None))


@api_blueprint.get("/repositories/<name>/alerts")
def alerts_of(name: str):
    return jsonify(release_health.alert_overview(name))


# -- OpenAPI ------------------------------------------------------------------------------------------------------
_NUMBER = {"type": ["number", "null"]}
_RUN_STATS: dict = {
    "type": "object",
    "properties": {
        "release_id": {"type": "integer"},
        "runs": {"type": "integer", "description": "DAG runs recorded that started after it went live"},
        "success": {"type": "integer"},
        "failed": {"type": "integer"},
        "success_rate": {**_NUMBER, "description": "0 to 1; null without runs"},
        "mean_duration_seconds": _NUMBER,
        "went_live_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
SCHEMAS = {
    "ReleaseRunHealth": {
        "type": "object",
        "properties": {
            **_RUN_STATS["properties"],
            "previous": {"oneOf": [{"type": "null"}, _RUN_STATS], "description": "the release live before it"},
            "success_rate_change": {**_NUMBER, "description": "this release's rate minus the previous one's"},
            "mean_duration_change_seconds": _NUMBER,
        },
    },
}
# The releases list adds it to each release (api/blueprint.py list_releases); null without runs on either side.
BASE_SCHEMAS["Release"]["properties"]["run_health"] = {
    "oneOf": [{"type": "null"}, schema_ref("ReleaseRunHealth")],
    "description": "its DAG runs against the previous live release's (docs/operations.md); null without runs",
}
register(
    paths={
        "/repositories/{name}/release-health": {
            "get": operation(
                "release_health_of",
                "A release's DAG run health (default: the live release) against the release live before it",
                json_content(
                    {
                        "type": "object",
                        "properties": {
                            "repository": {"type": "string"},
                            "release": {"oneOf": [{"type": "null"}, schema_ref("ReleaseRunHealth")]},
                            "auto_rollback": {"type": ["object", "null"]},
                        },
                    }
                ),
                params=[NAME_PARAM, {"name": "release", "in": "query", "schema": {"type": "integer", "minimum": 1}}],
            )
        },
        "/repositories/{name}/alerts": {
            "get": operation(
                "alerts_of",
                "A repository's alert rules, auto-rollback rule and what its alerts last said",
                json_content(
                    {
                        "type": "object",
                        "properties": {
                            "repository": {"type": "string"},
                            "alerts": {"type": ["object", "null"]},
                            "auto_rollback": {"type": ["object", "null"]},
                            "state": {"type": ["object", "null"]},
                        },
                    }
                ),
                params=[NAME_PARAM],
            )
        },
    },
    schemas=SCHEMAS,
)
