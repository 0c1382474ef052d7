"""REST routes for A/B experiments (airflow_dagops/experiments, docs/experiments.md), added to the API blueprint (JWT
auth, CSRF check, error envelope; GET needs read, POST write, as promotion does).

    GET  /experiments                             -> {"items": [Experiment]}: running first, then recent ended ones
    GET  /experiments/{id}                        -> Experiment
    GET  /repositories/{name}/experiments         -> {"items": [Experiment]} of one repository
    POST /repositories/{name}/experiments         {dag_id, release?, split?, rule?} -> 201 Experiment
    POST /repositories/{name}/experiments/promote {winner?, dag_id?} -> Experiment: the winner goes live / stays
    POST /repositories/{name}/experiments/stop    {dag_id?} -> Experiment: ended without a winner

A refused start (a split that does not add up, a DAG the releases do not define, schedules that differ) answers 422
or 409 with the reason and changes nothing.
"""

from __future__ import annotations

from flask import jsonify

from airflow_dagops.api.blueprint import actor_name, api_blueprint, read_body
from airflow_dagops.api.openapi import (
    ID_PARAM,
    NAME_PARAM,
    NULLABLE_STRING,
    RELEASE_REF,
    TIME,
    json_content,
    operation,
    register,
    write_operation,
)
from airflow_dagops.api.openapi import schema_ref as ref
from airflow_dagops.experiments import service
from airflow_dagops.statuses import ExperimentStatus


@api_blueprint.get("/experiments")
def list_experiments():
    return jsonify({"items": service.status()})


@api_blueprint.get("/experiments/<int:experiment_id>")
def get_experiment(experiment_id: int):
    return jsonify(service.get(experiment_id))


@api_blueprint.get("/repositories/<name>/experiments")
def repository_experiments(name: str):
    return jsonify({"items": service.status(name)})


@api_blueprint.post("/repositories/<name>/experiments")
def start_experiment(name: str):
    body = read_body("ExperimentStart")
    started = service.start(
        name,
        body["dag_id"],
        actor=actor_name(),
        release=body.get("release"),
        split=body.get("split", "alternate"),
        rule=body.get("rule"),
    )
    return jsonify(started), 201


@api_blueprint.post("/repositories/<name>/experiments/promote")
def promote_experiment(name: str):
    body = read_body("ExperimentPromote")
    return jsonify(service.promote(name, actor=actor_name(), winner=body.get("winner"), dag_id=body.get("dag_id")))


@api_blueprint.post("/repositories/<name>/experiments/stop")
def stop_experiment(name: str):
    body = read_body("ExperimentStop")
    return jsonify(service.stop(name, actor=actor_name(), dag_id=body.get("dag_id")))


# -- OpenAPI ------------------------------------------------------------------------------------------------------
DAG_ID = {"type": "string", "minLength": 1, "maxLength": 246, "description": "as the releases define it"}
COUNTS = {"type": ["object", "null"], "properties": {"A": {"type": "integer"}, "B": {"type": "integer"}}}
_VARIANT = {
    "type": "object",
    "properties": {
        "dag_id": {"type": "string", "description": "its dag_id in Airflow (B's ends in __ab)"},
        "namespace": {"type": "string"},
        "release_id": {"type": ["integer", "null"]},
        "commit": NULLABLE_STRING,
        "runs": {"type": "integer", "description": "finished scheduled runs it owned"},
        "success": {"type": "integer"},
        "failed": {"type": "integer"},
        "success_rate": {"type": ["number", "null"]},
        "median_duration_seconds": {"type": ["number", "null"], "description": "of its successful runs"},
    },
}
_VERDICT = {
    "type": ["object", "null"],
    "properties": {
        "winner": {"type": ["string", "null"], "enum": ["A", "B", None]},
        "leader": {"type": ["string", "null"], "enum": ["A", "B", None]},
        "decided": {"type": "boolean", "description": "min_runs reached by both and a difference at max_p"},
        "basis": {"type": ["string", "null"], "description": "success rate (Fisher's exact test) or duration"},
        "success_p": {"type": ["number", "null"]},
        "duration_p": {"type": ["number", "null"], "description": "Mann-Whitney U on successful runs' durations"},
        "confidence": {"type": ["number", "null"], "description": "1 - p"},
        "needs": {"type": "object", "description": "runs still needed: A, B, per_variant_for_significance"},
        "summary": {"type": "string"},
    },
}
SCHEMAS = {
    "ExperimentStart": {
        "type": "object",
        "additionalProperties": False,
        "required": ["dag_id"],
        "properties": {
            "dag_id": DAG_ID,
            "release": {**RELEASE_REF, "description": "variant B (default: the release waiting in a promotion stage)"},
            "split": {
                "description": '"alternate", {"percent": N} (B\'s share, 1-99) or {"a": N, "b": M} adding up to 100',
                "oneOf": [
                    {"type": "string", "maxLength": 20},
                    {"type": "object", "maxProperties": 2, "additionalProperties": {"type": ["integer", "string"]}},
                ],
            },
            "rule": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "min_runs": {"type": "integer", "description": "finished runs per variant (default 10)"},
                    "max_p": {"type": "number", "description": "a difference counts at this p or below (0.05)"},
                    "auto_promote": {"type": "boolean", "description": "the scheduled check acts on a verdict"},
                },
            },
        },
    },
    "ExperimentPromote": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "winner": {"type": "string", "enum": ["A", "B"], "description": "default: the last verdict's"},
            "dag_id": {**DAG_ID, "description": "only if the experiment runs on this DAG"},
        },
    },
    "ExperimentStop": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"dag_id": {**DAG_ID, "description": "only if the experiment runs on this DAG"}},
    },
    "Experiment": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "repository": {"type": "string"},
            "dag_id": {"type": "string"},
            "status": {"type": "string", "enum": [status.value for status in ExperimentStatus]},
            "winner": {"type": ["string", "null"], "enum": ["A", "B", None]},
            "split": {"type": "object", "description": '{"mode": "alternate"} or {"mode": "percent", "b": N}'},
            "split_description": {"type": "string"},
            "rule": {"type": "object"},
            "variants": {"type": "object", "properties": {"A": _VARIANT, "B": _VARIANT}},
            "assigned": {"type": "integer", "description": "scheduled runs split so far"},
            "pending": {**COUNTS, "description": "owned runs not finished yet"},
            "not_started": {**COUNTS, "description": "owned runs the owner has not started (queued, paused)"},
            "unsplit": {**COUNTS, "description": "manual and other runs, outside the split"},
            "verdict": _VERDICT,
            "detail": {"type": "object", "description": "ended_by, reason, note"},
            "actor": {"type": "string"},
            "started_at": TIME,
            "updated_at": TIME,
            "ended_at": TIME,
            "message": {"type": "string"},
        },
    },
}
_LIST = json_content({"type": "object", "properties": {"items": {"type": "array", "items": ref("Experiment")}}})
register(
    paths={
        "/experiments": {
            "get": operation("list_experiments", "A/B experiments: running first, then recent ended ones", _LIST)
        },
        "/experiments/{id}": {
            "get": operation("get_experiment", "One A/B experiment", json_content(ref("Experiment")), params=[ID_PARAM])
        },
        "/repositories/{name}/experiments": {
            "get": operation("repository_experiments", "A repository's A/B experiments", _LIST, params=[NAME_PARAM]),
            "post": write_operation(
                "start_experiment",
                "Run a candidate release of a DAG beside prod's on a split of its scheduled runs",
                json_content(ref("Experiment"), "Created"),
                body="ExperimentStart",
                status="201",
            ),
        },
        "/repositories/{name}/experiments/promote": {
            "post": write_operation(
                "promote_experiment",
                "End the running experiment with its winner: B goes live in prod, or prod keeps A",
                json_content(ref("Experiment")),
                body="ExperimentPromote",
            )
        },
        "/repositories/{name}/experiments/stop": {
            "post": write_operation(
                "stop_experiment",
                "End the running experiment without a winner (prod keeps A)",
                json_content(ref("Experiment")),
                body="ExperimentStop",
            )
        },
    },
    schemas=SCHEMAS,
)
