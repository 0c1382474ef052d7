"""REST route of the event feed, added to the dagops API blueprint (its JWT auth and error envelope apply;
reading needs the plugin's read permission). docs/automation.md shows how to poll it.

    GET /events?repository=&kind=&since=&until=&cursor=&limit=
        -> {"events": [...], "next_cursor": id|null}, oldest first. `kind` may repeat or be comma-separated;
           `since`/`until` are ISO 8601 times; `cursor` is the `next_cursor` (or last id) of the previous
           page. Poll with the id of the last event seen to get only what happened since.
    GET /repositories/{name}/events?limit=
        -> {"events": [...], "total": N}: the repository's newest events, newest first (the page's feed)
"""

from __future__ import annotations

from flask import jsonify, request

from airflow_dagops.api.blueprint import api_blueprint
from airflow_dagops.api.errors import ApiError
from airflow_dagops.api.openapi import NAME_PARAM, json_content, operation, register, schema_ref
from airflow_dagops.events import feed as events


@api_blueprint.get("/events")
def list_events():
    kinds = [k for value in request.args.getlist("kind") for k in value.split(",")]
    return jsonify(
        events.list_events(
            repository=request.args.get("repository") or None,
            kinds=kinds,
            since=request.args.get("since"),
            until=request.args.get("until"),
            after=_int_arg("cursor", None, 0, events.MAX_ID),
            limit=_int_arg("limit", 100, 1, events.MAX_LIMIT),
        )
    )


@api_blueprint.get("/repositories/<name>/events")
def repository_events(name: str):
    items = events.recent_events(name, limit=_int_arg("limit", 30, 1, 200) or 30)
    return jsonify({"events": items, "total": len(items)})


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if not raw:  # absent or empty
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(422, "invalid_query", f"{name} must be an integer from {low} to {high}")
    return int(raw)


# -- OpenAPI ------------------------------------------------------------------------------------------------------
SCHEMAS = {
    "Event": {
        "type": "object",
        "required": ["id", "created_at", "kind", "actor", "outcome", "summary"],
        "properties": {
            "id": {"type": "integer", "description": "the cursor: events are ordered by it"},
            "created_at": {"type": "string", "format": "date-time"},
            "kind": {"type": "string", "enum": list(events.KINDS)},
            "repository": {"type": ["string", "null"]},
            "release_id": {"type": ["integer", "null"]},
            "actor": {"type": "string"},
            "outcome": {"type": "string", "description": "success / failed / passed / unchanged / soaking / ..."},
            "summary": {"type": "string"},
            "detail": {"type": "object", "description": "kind-specific facts (commit, findings, dag_id, run_id, ...)"},
        },
    },
    "EventPage": {
        "type": "object",
        "required": ["events", "next_cursor"],
        "properties": {
            "events": {"type": "array", "items": schema_ref("Event")},
            "next_cursor": {"type": ["integer", "null"], "description": "set when more events follow"},
        },
    },
}
_TIME = {"type": "string", "format": "date-time"}
register(
    paths={
        "/events": {
            "get": operation(
                "list_events",
                "The event feed: syncs, validations, publishes, rollbacks, deploys, promotions, proposals and DAG "
                "runs, oldest first, with cursor pagination",
                json_content(schema_ref("EventPage")),
                params=[
                    {"name": "repository", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "kind",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": f"one or more of {', '.join(events.KINDS)} (comma-separated or repeated)",
                    },
                    {"name": "since", "in": "query", "schema": _TIME},
                    {"name": "until", "in": "query", "schema": _TIME},
                    {"name": "cursor", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                ],
            )
        },
        "/repositories/{name}/events": {
            "get": operation(
                "repository_events",
                "A repository's newest events, newest first",
                json_content(
                    {
                        "type": "object",
                        "properties": {
                            "events": {"type": "array", "items": schema_ref("Event")},
                            "total": {"type": "integer"},
                        },
                    }
                ),
                params=[
                    NAME_PARAM,
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                ],
            )
        },
    },
    schemas=SCHEMAS,
)
