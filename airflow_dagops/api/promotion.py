"""REST routes for a repository's promotion stages, added to the dagops API blueprint (its JWT auth, CSRF
check and error envelope apply; GET needs read, POST write). docs/promotion.md explains the flow.

    GET  /repositories/{name}/promotion   stages, what is live in each, the open promotion, recent history
    POST /repositories/{name}/promote     move the open promotion one stage on now ({"force": true} over a
                                          failed run); 409 when nothing waits, when blocked without force,
                                          or when the repository is pinned
"""

from __future__ import annotations

from flask import jsonify

from airflow_dagops.api.blueprint import actor_name, api_blueprint, read_body
from airflow_dagops.api.openapi import NAME_PARAM, NULLABLE_STRING, json_content, operation, register, write_operation
from airflow_dagops.api.openapi import schema_ref as ref
from airflow_dagops.releases import promotion
from airflow_dagops.statuses import PromotionStatus


@api_blueprint.get("/repositories/<name>/promotion")
def promotion_status(name: str):
    return jsonify(promotion.status(name))


@api_blueprint.post("/repositories/<name>/promote")
def promote(name: str):
    body = read_body("PromoteRequest")
    return jsonify(promotion.promote(name, actor=actor_name(), force=body.get("force", False)))


# -- OpenAPI ------------------------------------------------------------------------------------------------------
NULLABLE_INT = {"type": ["integer", "null"]}
SCHEMAS = {
    "PromoteRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"force": {"type": "boolean", "description": "promote even though a run failed in the stage"}},
    },
    "PromotionRecord": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "repository": {"type": "string"},
            "release_id": NULLABLE_INT,
            "commit": NULLABLE_STRING,
            "stage": {"type": "string", "description": "the stage the release is live in (the last: prod)"},
            "status": {"type": "string", "enum": [status.value for status in PromotionStatus]},
            "successes": {"type": "integer", "description": "successful runs counted in the stage"},
            "soak_runs": NULLABLE_INT,
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "updated_at": {"type": ["string", "null"], "format": "date-time"},
            "detail": {
                "type": "object",
                "description": "failed_dag_id / failed_run_id when blocked; promoted_by, forced; stages passed",
            },
            "message": {"type": "string"},
        },
    },
    "PromotionStatus": {
        "type": "object",
        "properties": {
            "repository": {"type": "string"},
            "soak_runs": NULLABLE_INT,
            "stages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "stage": {"type": "string"},
                        "namespace": {"type": "string"},
                        "dag_id_suffix": NULLABLE_STRING,
                        "release_id": NULLABLE_INT,
                        "commit": NULLABLE_STRING,
                    },
                },
            },
            "current": {"oneOf": [{"type": "null"}, ref("PromotionRecord")]},
            "history": {"type": "array", "items": ref("PromotionRecord")},
        },
    },
}
register(
    paths={
        "/repositories/{name}/promotion": {
            "get": operation(
                "promotion_status",
                "Promotion stages: what is live in each, the release soaking or blocked, recent history",
                json_content(ref("PromotionStatus")),
                params=[NAME_PARAM],
            )
        },
        "/repositories/{name}/promote": {
            "post": write_operation(
                "promote",
                "Move the release waiting in a stage one stage on now (force: over a failed run)",
                json_content(ref("PromotionRecord")),
                body="PromoteRequest",
            )
        },
    },
    schemas=SCHEMAS,
)
