"""REST routes for versions, added to the dagops API blueprint (its JWT auth, CSRF check and error envelope apply):

    POST /repositories/{name}/deploy   {"version": SHA|TAG}            -> 202: a `dagops_deploy` run was created
                                       {"version": ..., "dry_run": true} -> 200: the structural diff, nothing changes
    GET  /repositories/{name}/diff?from=A&to=B                         -> the structural diff between two releases

A deploy fetches and validates the version, which can take minutes, so like "Sync Now" it runs in Airflow, not
in the request: the `dagops_deploy` run calls `versions_service.deploy_version` (the service `dagops deploy`
calls), and its outcome is in the run and in `GET .../releases` and the deploy log. The dry run and the diff only
read releases (`diff.live_diff` / `diff.release_diff`, as `dagops deploy --dry-run` and `dagops diff` do).
"""

from __future__ import annotations

from flask import jsonify, request

from airflow_dagops.airflow import bridge as airflow_bridge
from airflow_dagops.api.blueprint import actor_name, api_blueprint, read_body
from airflow_dagops.api.errors import ApiError
from airflow_dagops.api.openapi import (
    AIRFLOW_RUN_ERRORS,
    NAME_PARAM,
    json_content,
    operation,
    register,
    schema_ref,
    write_operation,
)
from airflow_dagops.errors import InvalidInput, NotFound
from airflow_dagops.releases import diff as diff_module
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.safety import validate_ref
from airflow_dagops.store.models import utcnow

DEPLOY_DAG_ID = "dagops_deploy"


@api_blueprint.post("/repositories/<name>/deploy")
def deploy(name: str):
    body = read_body("DeployRequest")
    version = body["version"].strip()
    validate_ref(version)  # a bad version is refused here, not in a failed Airflow run
    if body.get("dry_run"):
        return jsonify(_dry_run(name, version))
    get_repository(name)  # 404 before asking Airflow for a run
    run_id = f"dagops_deploy__{name}__{utcnow().strftime('%Y%m%dT%H%M%S.%fZ')}"
    conf = {"repository": name, "action": "deploy", "version": version, "requested_by": actor_name()}
    run_id = airflow_bridge.trigger_dag(DEPLOY_DAG_ID, run_id=run_id, conf=conf, user=actor_name())
    accepted = {
        "repository": name,
        "version": version,
        "airflow_run_id": run_id,
        "links": {"airflow_run": airflow_bridge.run_url(DEPLOY_DAG_ID, run_id)},
    }
    return jsonify(accepted), 202


def _dry_run(name: str, version: str) -> dict:
    """What deploying `version` would change, from its release; a version never validated has none yet."""
    try:
        return diff_module.live_diff(name, version, rollback=False)
    except (InvalidInput, NotFound) as exc:
        get_repository(name)  # an unknown repository stays a 404
        raise ApiError(
            404,
            "not_found",
            f"{name}: {version!r} has no release yet, so there is nothing to diff ({exc}); deploy it to validate it",
        ) from exc


@api_blueprint.get("/repositories/<name>/diff")
def release_diff(name: str):
    from_release, to_release = _release_arg("from"), _release_arg("to")
    return jsonify(diff_module.release_diff(name, from_release, to_release))


def _release_arg(key: str) -> str:
    value = (request.args.get(key) or "").strip()
    if not value or len(value) > 64:
        raise ApiError(422, "invalid_query", f"{key} must be a release id or a commit sha (7+ hex digits)")
    return value


# -- OpenAPI ------------------------------------------------------------------------------------------------------
RELEASE_SIDE = {
    "type": ["object", "null"],
    "properties": {"id": {"type": "integer"}, "commit": {"type": "string"}, "status": {"type": "string"}},
}
SCHEMAS = {
    "DeployRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["version"],
        "properties": {
            "version": {
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "description": "a commit sha (7+ hex digits) or a tag",
            },
            "dry_run": {
                "type": "boolean",
                "description": "only answer the structural diff from the live release to the version's release",
            },
        },
    },
    "DeployAccepted": {
        "type": "object",
        "required": ["repository", "version", "airflow_run_id"],
        "properties": {
            "repository": {"type": "string"},
            "version": {"type": "string"},
            "airflow_run_id": {"type": "string", "description": "the dagops_deploy run doing the deploy"},
            "links": {"type": "object"},
        },
    },
    "ReleaseDiff": {
        "type": "object",
        "required": ["from", "to", "complete", "notes", "dags_added", "dags_removed", "changed"],
        "properties": {
            "from": RELEASE_SIDE,
            "to": RELEASE_SIDE,
            "complete": {"type": "boolean", "description": "false when a side has no recorded structure"},
            "notes": {"type": "array", "items": {"type": "string"}},
            "dags_added": {"type": "array", "items": {"type": "string"}},
            "dags_removed": {"type": "array", "items": {"type": "string"}},
            "changed": {
                "type": "object",
                "description": "per dag_id: tasks_added, tasks_removed, schedule/owners/retries [old, new], tags",
            },
        },
    },
}
_RELEASE_QUERY = {"type": "string", "minLength": 1, "maxLength": 64}
register(
    paths={
        "/repositories/{name}/deploy": {
            "post": write_operation(
                "deploy_version",
                "Deploy a commit or tag through a dagops_deploy run (validated first, then pinned); "
                "with dry_run, only the diff",
                json_content(schema_ref("DeployAccepted"), "Accepted: the Airflow run was created"),
                errors={
                    "200": json_content(schema_ref("ReleaseDiff"), "dry_run: what the deploy would change"),
                    **AIRFLOW_RUN_ERRORS,
                },
                body="DeployRequest",
                status="202",
            )
        },
        "/repositories/{name}/diff": {
            "get": operation(
                "release_diff",
                "Structural diff between two releases: DAGs and tasks added/removed, schedule, owners, retries, tags",
                json_content(schema_ref("ReleaseDiff")),
                params=[
                    NAME_PARAM,
                    {"name": "from", "in": "query", "required": True, "schema": _RELEASE_QUERY},
                    {"name": "to", "in": "query", "required": True, "schema": _RELEASE_QUERY},
                ],
            )
        },
    },
    schemas=SCHEMAS,
)
