"""The OpenAPI 3.1 document of the REST API. Request bodies are validated against these very schemas
(see `validate_body`), and a test checks that every route is documented and every path exists."""

from __future__ import annotations

from functools import cache

from airflow_dagops import __version__
from airflow_dagops.repositories import options as repo_options
from airflow_dagops.statuses import ReleaseStatus, RepositoryStatus, SyncRunStatus

NAME = repo_options.NAME_SCHEMA
NULLABLE_STRING = {"type": ["string", "null"]}
TIME = {"type": ["string", "null"], "format": "date-time"}
RELEASE_REF = {
    "description": "a release id, or a commit sha (7 or more hex digits)",
    "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1, "maxLength": 64}],
}
VERIFY = {"type": "boolean", "description": "check URL, ref and credentials with git ls-remote first"}
# The repository options (repositories/options.py): all of them when registering and in a Repository, the
# updatable ones in a change.
OPTIONS = {option.name: option.json_schema() for option in repo_options.OPTIONS}
SETTINGS = {name: schema for name, schema in OPTIONS.items() if name in repo_options.UPDATABLE}

SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                },
            }
        },
    },
    "RepositoryCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "url"],
        "properties": {"name": NAME, **OPTIONS, "verify": VERIFY},
    },
    "RepositoryUpdate": {"type": "object", "additionalProperties": False, "properties": {**SETTINGS, "verify": VERIFY}},
    "SyncRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"force": {"type": "boolean", "description": "validate again even if nothing changed"}},
    },
    "RollbackRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "release": RELEASE_REF,
            "pin": {
                "type": "boolean",
                "description": "pin an unpinned repository to this release; a pinned one stays pinned, to this release",
            },
        },
    },
    "PinRequest": {"type": "object", "additionalProperties": False, "properties": {"release": RELEASE_REF}},
    "Empty": {"type": "object", "additionalProperties": False, "properties": {}},
    "LiveRelease": {
        "type": ["object", "null"],
        "properties": {
            "release_id": {"type": "integer"},
            "commit": {"type": "string"},
            "short_commit": {"type": "string"},
            "message": NULLABLE_STRING,
            "author": NULLABLE_STRING,
            "committed_at": TIME,
        },
    },
    "SyncRun": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "repository": {"type": "string"},
            "status": {"type": "string", "enum": [status.value for status in SyncRunStatus]},
            "trigger": {"type": "string"},
            "airflow_run_id": NULLABLE_STRING,
            "commit": NULLABLE_STRING,
            "release_id": {"type": ["integer", "null"]},
            "error": NULLABLE_STRING,
            "error_code": NULLABLE_STRING,
            "status_message": NULLABLE_STRING,
            "started_at": TIME,
            "ended_at": TIME,
            "duration_seconds": {"type": ["number", "null"]},
            "coalesced": {"type": "boolean", "description": "joined a sync that was already queued"},
            "links": {"type": "object"},
        },
    },
    "Repository": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            **OPTIONS,
            "status": {"type": "string", "enum": [status.value for status in RepositoryStatus]},
            "status_message": NULLABLE_STRING,
            "live": {"$ref": "#/components/schemas/LiveRelease"},
            "pinned_release_id": {"type": ["integer", "null"]},
            "dag_count": {"type": "integer"},
            "last_sync": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/SyncRun"}]},
            "links": {"type": "object"},
        },
    },
    "Finding": {
        "type": "object",
        "properties": {
            "rule": {"type": "string"},
            "severity": {"type": "string", "enum": ["error", "warning", "info"]},
            "file": NULLABLE_STRING,
            "line": {"type": ["integer", "null"]},
            "message": {"type": "string"},
            "hint": NULLABLE_STRING,
        },
    },
    "Release": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "repository": {"type": "string"},
            "commit": {"type": "string"},
            "short_commit": {"type": "string"},
            "ref": {"type": "string"},
            "status": {"type": "string", "enum": [status.value for status in ReleaseStatus]},
            "author": NULLABLE_STRING,
            "message": {"type": "string"},
            "committed_at": TIME,
            "created_at": TIME,
            "file_count": {"type": "integer"},
            "on_disk": {"type": "boolean"},
            "pinned": {"type": "boolean"},
            "validation": {"type": ["object", "null"]},
            "findings": {"type": "array", "items": {"$ref": "#/components/schemas/Finding"}},
            "links": {"type": "object"},
        },
    },
    "DagEntry": {
        "type": "object",
        "properties": {
            "dag_id": {"type": "string"},
            "file": {"type": "string"},
            "airflow_url": {"type": "string"},
            "import_errors": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Connection": {
        "type": "object",
        "properties": {
            "conn_id": {"type": "string"},
            "conn_type": {"type": "string"},
            "host": NULLABLE_STRING,
            "description": NULLABLE_STRING,
        },
    },
    "Health": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "version": {"type": "string"},
            "state_db": {"type": "string"},
            "dags_folder": {"type": "string"},
        },
    },
    "Message": {"type": "object", "properties": {"message": {"type": "string"}}},
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _page(item: str) -> dict:
    return {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    }


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": {"$ref": "#/components/responses/MalformedJson"},
    "401": {"$ref": "#/components/responses/Unauthenticated"},
    "403": {"$ref": "#/components/responses/Forbidden"},
    "404": {"$ref": "#/components/responses/NotFound"},
    "422": {"$ref": "#/components/responses/Unprocessable"},
}
WRITE_ERRORS = {
    **ERRORS,
    "409": {"$ref": "#/components/responses/Conflict"},
    "413": {"$ref": "#/components/responses/TooLarge"},
}
# A write that asks Airflow for a run (a sync, a deploy) answers 503 when Airflow cannot take it.
AIRFLOW_RUN_ERRORS = {**WRITE_ERRORS, "503": {"$ref": "#/components/responses/AirflowUnavailable"}}
# A write that calls a Git host's API (webhook registration, discovery's scan) answers 502 when the host fails it.
GIT_HOST_ERRORS = {**WRITE_ERRORS, "502": _json(_ref("Error"), "The Git host's API refused or did not answer")}
NAME_PARAM = {"name": "name", "in": "path", "required": True, "schema": NAME}
ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
PAGING = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 1000000000, "default": 0}},
]


def _op(op_id: str, summary: str, ok: dict, *, errors=ERRORS, params=(), body: str | None = None, status="200"):
    operation = {
        "operationId": op_id,
        "summary": summary,
        "parameters": list(params),
        "responses": {status: ok, **errors},
    }
    if body:
        operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": _ref(body)}}}
    return operation


def _write(
    op_id: str,
    summary: str,
    ok: dict,
    *,
    body: str | None = None,
    status="200",
    params=(NAME_PARAM,),
    errors=WRITE_ERRORS,
):
    """An operation that changes something, most often one repository's (its `name` in the path): besides the read
    errors it may answer 409 (the current state refuses it) and 413 (a body too large)."""
    return _op(op_id, summary, ok, errors=errors, params=params, body=body, status=status)


def _paths() -> dict:
    repo = [NAME_PARAM]
    return {
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Is dagops able to work (no authentication)",
                "security": [],
                "responses": {"200": _json(_ref("Health")), "503": _json(_ref("Health"), "Unavailable")},
            }
        },
        "/openapi.json": {
            "get": _op("openapi", "This document", _json({"type": "object"}), errors={"401": ERRORS["401"]})
        },
        "/repositories": {
            "get": _op("list_repositories", "List repositories", _json(_page("Repository")), params=PAGING),
            "post": _write(
                "create_repository",
                "Register a repository",
                _json(_ref("Repository"), "Created"),
                body="RepositoryCreate",
                status="201",
                params=(),
            ),
        },
        "/repositories/{name}": {
            "get": _op("get_repository", "One repository", _json(_ref("Repository")), params=repo),
            "patch": _write(
                "update_repository",
                "Change a repository's settings",
                _json(_ref("Repository")),
                body="RepositoryUpdate",
            ),
            "delete": _write(
                "delete_repository",
                "Unregister a repository",
                _json(_ref("Message")),
                params=[*repo, {"name": "keep_dags", "in": "query", "schema": {"type": "boolean", "default": False}}],
            ),
        },
        "/repositories/{name}/sync": {
            "post": _write(
                "sync_repository",
                "Trigger a dagops_sync run in Airflow for this repository",
                _json(_ref("SyncRun"), "Accepted: the Airflow run was created"),
                errors=AIRFLOW_RUN_ERRORS,
                body="SyncRequest",
                status="202",
            )
        },
        "/repositories/{name}/syncs": {
            "get": _op("list_syncs", "Sync history, newest first", _json(_page("SyncRun")), params=[*repo, *PAGING])
        },
        "/syncs/{id}": {"get": _op("get_sync", "One sync run", _json(_ref("SyncRun")), params=[ID_PARAM])},
        "/repositories/{name}/releases": {
            "get": _op("list_releases", "Releases, newest first", _json(_page("Release")), params=[*repo, *PAGING])
        },
        "/releases/{id}": {
            "get": _op("get_release", "One release with its findings", _json(_ref("Release")), params=[ID_PARAM])
        },
        "/repositories/{name}/rollback": {
            "post": _write(
                "rollback", "Make an earlier release live", _json(_ref("Repository")), body="RollbackRequest"
            )
        },
        "/repositories/{name}/pin": {
            "post": _write("pin", "Stay on the live (or given) release", _json(_ref("Repository")), body="PinRequest")
        },
        "/repositories/{name}/unpin": {
            "post": _write("unpin", "Follow the branch again", _json(_ref("Repository")), body="Empty")
        },
        "/repositories/{name}/dags": {
            "get": _op(
                "list_dags",
                "DAGs of the live release, with Airflow links and import errors",
                _json({"type": "object", "properties": {"items": {"type": "array", "items": _ref("DagEntry")}}}),
                params=repo,
            )
        },
        "/connections": {
            "get": _op(
                "list_connections",
                "Airflow connections of type git (no secrets)",
                _json({"type": "object", "properties": {"items": {"type": "array", "items": _ref("Connection")}}}),
            )
        },
    }


def _responses() -> dict:
    error = _ref("Error")
    return {
        "MalformedJson": _json(error, "Malformed JSON"),
        "Unauthenticated": _json(error, "No valid Airflow token"),
        "Forbidden": _json(error, "Missing permission, or missing CSRF token"),
        "NotFound": _json(error, "Not found"),
        "Conflict": _json(error, "Conflicts with the current state"),
        "TooLarge": _json(error, "Body larger than 64 KiB"),
        "Unprocessable": _json(error, "Invalid body or input, or the remote check failed"),
        "AirflowUnavailable": _json(error, "Airflow cannot run dagops_sync now"),
    }


# Route modules outside blueprint.py (webhooks, credentials) document their paths and schemas here,
# at import time, so the served document always matches what is mounted.
_EXTRA_PATHS: dict = {}


def register(*, paths: dict, schemas: dict | None = None) -> None:
    for path, item in paths.items():
        _EXTRA_PATHS.setdefault(path, {}).update(item)
    SCHEMAS.update(schemas or {})
    document.cache_clear()


operation, write_operation, json_content, schema_ref = _op, _write, _json, _ref  # public names for those modules


def _merged(base: dict, extra: dict) -> dict:
    """Path items of both, methods of one path side by side (e.g. GET and POST /connections)."""
    return {path: {**base.get(path, {}), **extra.get(path, {})} for path in {**base, **extra}}


@cache
def document(server_url: str = "/pluginsv2/dagops/api/v1") -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "airflow-dagops",
            "version": __version__,
            "description": "GitOps for Airflow DAGs: repositories, syncs, releases. See docs/api.md.",
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}, {"cookie": []}],
        "paths": _merged(_paths(), _EXTRA_PATHS),
        "components": {
            "schemas": SCHEMAS,
            "responses": _responses(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT from POST /auth/token"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "_token"},
            },
        },
    }


def body_schema(name: str) -> dict:
    """A request body's schema, self-contained for jsonschema."""
    return SCHEMAS[name]
