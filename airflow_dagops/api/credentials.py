"""REST routes for a repository's credentials, added to the dagops API blueprint (its JWT auth, CSRF check
and error envelope apply). No response carries a secret: access verdicts, connection ids, public keys.

    POST /repositories/{name}/credentials/test            git ls-remote with the connection -> AccessResult
    GET  /repositories/{name}/credentials/deploy-key      the public SSH key of the connection (404: none)
    POST /repositories/{name}/credentials/rotate          SSH: a new key pair in a new connection -> public key
    POST /repositories/{name}/credentials/rotate/confirm  verify access with it, then switch (or abort)

Rotation in two calls, because a person adds the deploy key in between: `rotate` creates the pending
connection (the repository does not use it yet) and answers its public key and a `rotation_id`; `confirm`
checks access with it (polling up to `wait` seconds) and only then switches the repository and deletes the
old connection. A failed confirm (422 `access_failed`) changes nothing and keeps the pending connection for
another try; `{"abort": true}` deletes it. Starting a new rotation drops an unfinished one. Both rotation
calls create or delete Airflow connections, so they also need Airflow's connection edit permission.
"""

from __future__ import annotations

from flask import g, jsonify

from airflow_dagops.api import auth
from airflow_dagops.api.blueprint import actor_name, api_blueprint, read_body
from airflow_dagops.api.errors import ApiError
from airflow_dagops.api.openapi import (
    NAME_PARAM,
    NULLABLE_STRING,
    json_content,
    operation,
    register,
    schema_ref,
    write_operation,
)
from airflow_dagops.credentials import access, connections, deploy_keys, rotation
from airflow_dagops.errors import RotationFailed
from airflow_dagops.repositories.info import get_repository

BASE = "/repositories/<name>/credentials"


def _require_connection_rights(*methods: str, why: str) -> None:
    """Beyond DAG edit (checked by the blueprint): Airflow's own permission on connections."""
    user = g.dagops_principal.user
    manager = auth._auth_manager()
    if not all(manager.is_authorized_connection(method=method, user=user) for method in methods):
        raise ApiError(403, "forbidden", f"{why}: your Airflow role has no such right on connections")


def _require_connection_edit() -> None:
    _require_connection_rights("POST", "DELETE", why="rotating credentials creates and deletes Airflow connections")


@api_blueprint.post("/connections")
def create_connection():
    """The page's "New connection": a token connection, or a generated deploy key (public half answered)."""
    body = read_body("ConnectionCreate")
    _require_connection_rights("POST", why="creating a connection")
    created = connections.create_connection(
        body["conn_id"],
        kind=body["kind"],
        actor=actor_name(),
        host=body.get("host"),
        login=body.get("login"),
        token=body.get("token"),
        description=body.get("description"),
    )
    return jsonify(created), 201


@api_blueprint.post(f"{BASE}/test")
def credentials_test(name: str):
    body = read_body("CredentialsTestRequest")
    conn_id = body.get("conn_id")
    if conn_id and conn_id != get_repository(name).conn_id:
        # Using a connection the repository does not name is using its secret: Airflow must allow it.
        _require_connection_rights("GET", why=f"testing with connection {conn_id!r} uses its credentials")
    return jsonify(access.test_access(name, conn_id=conn_id).to_dict())


@api_blueprint.get(f"{BASE}/deploy-key")
def credentials_deploy_key(name: str):
    conn_id, public_key = deploy_keys.deploy_key_info(name)
    if public_key is None:
        raise ApiError(
            404,
            "not_found",
            f"the connection of {name!r} ({conn_id or 'none'}) holds no SSH key: it uses a token, a GitHub App, "
            "or nothing",
        )
    return jsonify({"conn_id": conn_id, "public_key": public_key})


@api_blueprint.post(f"{BASE}/rotate")
def credentials_rotate(name: str):
    _require_connection_edit()
    read_body("Empty")
    pending = rotation.start_rotation(name, actor=actor_name())
    return jsonify(pending.to_dict()), 201


@api_blueprint.post(f"{BASE}/rotate/confirm")
def credentials_rotate_confirm(name: str):
    _require_connection_edit()
    body = read_body("RotationConfirm")
    if body.get("abort"):
        return jsonify(rotation.abort_rotation(name, body["rotation_id"]).to_dict())
    try:
        outcome = rotation.confirm_rotation(
            name,
            body["rotation_id"],
            actor=actor_name(),
            wait=body.get("wait", 0),
            keep_old=body.get("keep_old", False),
        )
    except RotationFailed as failure:
        raise ApiError(
            422,
            "access_failed",
            str(failure),
            {"access": failure.access.to_dict(), "rotation_id": failure.rotation_id, "pending_kept": True},
        ) from None
    return jsonify(outcome.to_dict())


# -- OpenAPI ------------------------------------------------------------------------------------------------------
ACCESS_RESULT = {
    "type": "object",
    "required": ["repository", "ok", "kind", "message", "latency"],
    "properties": {
        "repository": {"type": "string"},
        "ok": {"type": "boolean"},
        "kind": {"type": "string", "enum": list(access.KINDS)},
        "message": {"type": "string"},
        "hint": NULLABLE_STRING,
        "latency": {"type": "number", "description": "seconds the check took"},
        "conn_id": NULLABLE_STRING,
        "url": {"type": "string", "description": "without userinfo"},
        "ref": {"type": "string"},
        "transport": {"type": "string"},
        "commit": NULLABLE_STRING,
        "public_key": {**NULLABLE_STRING, "description": "the connection's public SSH key, if it has one"},
    },
}
SCHEMAS = {
    "ConnectionCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["conn_id", "kind"],
        "properties": {
            "conn_id": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,250}$"},
            "kind": {"type": "string", "enum": ["token", "ssh_key"], "description": "ssh_key: dagops generates it"},
            "host": {**NULLABLE_STRING, "maxLength": 2048},
            "login": {**NULLABLE_STRING, "maxLength": 250},
            "token": {**NULLABLE_STRING, "maxLength": 4096, "description": "written to the password; never answered"},
            "description": {**NULLABLE_STRING, "maxLength": 500},
        },
    },
    "ConnectionCreated": {
        "type": "object",
        "properties": {
            "conn_id": {"type": "string"},
            "conn_type": {"type": "string"},
            "kind": {"type": "string"},
            "public_key": {**NULLABLE_STRING, "description": "ssh_key: add it as a read-only deploy key"},
        },
    },
    "CredentialsTestRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "conn_id": {
                **NULLABLE_STRING,
                "maxLength": 250,
                "description": "test this connection instead of the repository's own",
            }
        },
    },
    "AccessResult": ACCESS_RESULT,
    "DeployKey": {
        "type": "object",
        "required": ["conn_id", "public_key"],
        "properties": {"conn_id": {"type": "string"}, "public_key": {"type": "string"}},
    },
    "PendingRotation": {
        "type": "object",
        "properties": {
            "repository": {"type": "string"},
            "rotation_id": {"type": "string", "description": "the new connection's id; give it to confirm"},
            "conn_id": {"type": "string"},
            "replaces": {"type": "string"},
            "kind": {"type": "string", "enum": ["ssh_key", "token"]},
            "public_key": NULLABLE_STRING,
            "host": {"type": "string"},
            "instructions": {"type": "string"},
        },
    },
    "RotationConfirm": {
        "type": "object",
        "additionalProperties": False,
        "required": ["rotation_id"],
        "properties": {
            "rotation_id": {"type": "string", "minLength": 1, "maxLength": 250},
            "wait": {
                "type": "integer",
                "minimum": 0,
                "maximum": 30,
                "description": "seconds to keep checking access before giving up",
            },
            "keep_old": {"type": "boolean", "description": "keep the old connection instead of deleting it"},
            "abort": {"type": "boolean", "description": "give the rotation up: delete the pending connection"},
        },
    },
    "RotationOutcome": {
        "type": "object",
        "properties": {
            "repository": {"type": "string"},
            "status": {"type": "string", "enum": ["switched", "aborted"]},
            "conn_id": {"type": "string"},
            "new_conn_id": {"type": "string"},
            "old_conn_id": {"type": "string"},
            "old_conn_removed": {"type": "boolean"},
            "note": NULLABLE_STRING,
            "access": {"oneOf": [{"type": "null"}, schema_ref("AccessResult")]},
            "public_key": NULLABLE_STRING,
        },
    },
}
_PATH = "/repositories/{name}/credentials"
register(
    paths={
        "/connections": {
            "post": write_operation(
                "create_connection",
                "Create an Airflow connection of type git: a token, or a generated SSH deploy key",
                json_content(schema_ref("ConnectionCreated"), "Created (for a key: its public half)"),
                body="ConnectionCreate",
                status="201",
                params=(),
            )
        },
        f"{_PATH}/test": {
            "post": write_operation(
                "credentials_test",
                "Test access: git ls-remote of the repository's ref with its connection",
                json_content(schema_ref("AccessResult"), "The verdict (ok or the kind of failure, with a hint)"),
                body="CredentialsTestRequest",
            )
        },
        f"{_PATH}/deploy-key": {
            "get": operation(
                "credentials_deploy_key",
                "The public SSH key of the repository's connection (404 when it holds none)",
                json_content(schema_ref("DeployKey")),
                params=[NAME_PARAM],
            )
        },
        f"{_PATH}/rotate": {
            "post": write_operation(
                "credentials_rotate",
                "SSH: put a new key pair in a new connection; add its public key as deploy key, then confirm",
                json_content(schema_ref("PendingRotation"), "Created: the pending connection and its public key"),
                body="Empty",
                status="201",
            )
        },
        f"{_PATH}/rotate/confirm": {
            "post": write_operation(
                "credentials_rotate_confirm",
                "Verify access with the pending connection, then switch the repository to it (or abort)",
                json_content(schema_ref("RotationOutcome")),
                body="RotationConfirm",
            )
        },
    },
    schemas=SCHEMAS,
)
