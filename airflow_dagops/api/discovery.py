"""REST routes for repository discovery (airflow_dagops/discovery), added to the API blueprint (JWT auth, CSRF check,
error envelope). Reading needs read; scanning and ignoring need write, like adding a repository; registering (`apply`,
`register`) attaches the source's connection to new repositories, so it also needs Airflow's connection read
permission, as choosing a connection does. The sources themselves (which organization, which connection) are set
only by dagops.yaml: no route chooses a connection.

    GET  /discovery                                   -> {sources, repositories}
    POST /discovery/scan         {source?, apply?, verify?}  -> {configured, sources: [...], repositories}
    POST /discovery/repositories/{name}/register  {verify?}   -> {name, url, ok, reason}
    POST /discovery/repositories/{name}/ignore    {ignored?}  -> the discovered repository
"""

from __future__ import annotations

from flask import jsonify

from airflow_dagops.api.blueprint import api_blueprint, read_body, require_connection_use
from airflow_dagops.api.openapi import (
    GIT_HOST_ERRORS,
    NULLABLE_STRING,
    json_content,
    operation,
    register,
    write_operation,
)
from airflow_dagops.api.openapi import schema_ref as ref
from airflow_dagops.discovery import service as discovery
from airflow_dagops.statuses import DiscoveryStatus


@api_blueprint.get("/discovery")
def list_discovery():
    return jsonify({"sources": discovery.list_sources(), "repositories": discovery.list_discovered()})


@api_blueprint.post("/discovery/scan")
def scan_discovery():
    body = read_body("DiscoveryScanRequest")
    if body.get("apply"):
        require_connection_use("registering discovered repositories")
    if not discovery.configured():
        return jsonify({"configured": False, "sources": [], "repositories": []})
    result = discovery.scan(body.get("source"), apply=body.get("apply", False), verify=body.get("verify", True))
    return jsonify(result)


@api_blueprint.post("/discovery/repositories/<name>/register")
def register_discovered(name: str):
    body = read_body("DiscoveryRegisterRequest")
    require_connection_use("registering a discovered repository")
    outcomes = discovery.register([name], verify=body.get("verify", True))
    if not outcomes:
        found = [r for r in discovery.list_discovered() if name in (r["name"], r["full_name"])]
        status = found[0]["status"] if found else "unknown"
        return jsonify({"name": name, "ok": False, "reason": f"it is {status}, not proposed"}), 409
    return jsonify(outcomes[0]), 200 if outcomes[0]["ok"] else 409


@api_blueprint.post("/discovery/repositories/<name>/ignore")
def ignore_discovered(name: str):
    body = read_body("DiscoveryIgnoreRequest")
    return jsonify(discovery.ignore(name, ignored=body.get("ignored", True)))


# -- OpenAPI ------------------------------------------------------------------------------------------------------
_DISCOVERED = {
    "type": "object",
    "properties": {
        "source": {"type": "string"},
        "full_name": {"type": "string", "description": "owner/repo (GitLab: group/subgroup/project)"},
        "name": {**NULLABLE_STRING, "description": "the repository and namespace name derived from it"},
        "url": {"type": "string"},
        "ref": {"type": "string"},
        "topics": {"type": "array", "items": {"type": "string"}},
        "status": {"type": "string", "enum": [status.value for status in DiscoveryStatus]},
        "reason": {**NULLABLE_STRING, "description": "why it is not (or cannot be) registered as it is"},
        "repository": {**NULLABLE_STRING, "description": "the dagops repository registered for it"},
        "first_seen_at": {"type": ["string", "null"], "format": "date-time"},
        "last_seen_at": {"type": ["string", "null"], "format": "date-time"},
        "removed_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
_OUTCOME = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "url": {"type": "string"},
        "ok": {"type": "boolean"},
        "reason": NULLABLE_STRING,
    },
}
SCHEMAS = {
    "DiscoveredRepository": _DISCOVERED,
    "DiscoveryRegistration": _OUTCOME,
    "Discovery": {
        "type": "object",
        "properties": {
            "configured": {"type": "boolean"},
            "sources": {"type": "array", "items": {"type": "object"}},
            "repositories": {"type": "array", "items": ref("DiscoveredRepository")},
        },
    },
    "DiscoveryScanRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "source": {"type": "string", "minLength": 1, "maxLength": 63, "description": "default: every source"},
            "apply": {"type": "boolean", "description": "register every proposed match"},
            "verify": {"type": "boolean", "description": "reach each new remote with git ls-remote first"},
        },
    },
    "DiscoveryRegisterRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"verify": {"type": "boolean"}},
    },
    "DiscoveryIgnoreRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"ignored": {"type": "boolean", "description": "false: propose it again"}},
    },
}
register(
    paths={
        "/discovery": {
            "get": operation(
                "list_discovery",
                "Discovery sources (from dagops.yaml) and every repository their scans matched",
                json_content(ref("Discovery")),
            )
        },
        "/discovery/scan": {
            "post": write_operation(
                "scan_discovery",
                "Scan the organizations for repositories matching their rules now; with apply, register the proposed "
                "ones",
                json_content(ref("Discovery")),
                errors=GIT_HOST_ERRORS,
                body="DiscoveryScanRequest",
                params=(),
            )
        },
        "/discovery/repositories/{name}/register": {
            "post": write_operation(
                "register_discovered",
                "Register one proposed match as a dagops repository (its derived name, default branch, the source's "
                "connection)",
                json_content(ref("DiscoveryRegistration")),
                body="DiscoveryRegisterRequest",
            )
        },
        "/discovery/repositories/{name}/ignore": {
            "post": write_operation(
                "ignore_discovered",
                "Stop proposing a match (or, with ignored false, propose it again)",
                json_content(ref("DiscoveredRepository")),
                body="DiscoveryIgnoreRequest",
            )
        },
    },
    schemas=SCHEMAS,
)
