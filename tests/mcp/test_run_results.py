"""DAG run results: one document per finished run of a published DAG (assist/run_results.py), the same documents
for `dagops events --runs` (JSON lines) and the MCP resources."""

from __future__ import annotations

import json

from airflow_dagops.assist import run_results
from airflow_dagops.errors import AirflowApiUnavailable
from airflow_dagops.events import feed as events


def _record(dag_id: str, run_id: str, state: str) -> None:
    events.record(
        "dag_run",
        repository="team",
        actor="airflow",
        outcome=state,
        summary=f"team: {dag_id} run {run_id} {state}",
        detail={
            "dag_id": dag_id,
            "run_id": run_id,
            "state": state,
            "namespace": "team",
            "run_type": "manual",
            "start_date": "2026-01-01T10:00:00+00:00",
            "end_date": "2026-01-01T10:01:30.500000+00:00",
        },
    )


def test_documents_say_outcome_duration_and_the_failed_task(dagops_env):
    _record("etl", "run-1", "success")
    _record("etl", "run-2", "failed")
    asked = []

    def outcome_of(dag_id, run_id):
        asked.append((dag_id, run_id))
        return {"failed_task": "load", "log_tail": ["ERROR boom"]}

    page = run_results.run_documents(outcome_of=outcome_of)
    first, second = page["runs"]
    assert first["outcome"] == "success" and first["duration_seconds"] == 90.5 and first["failed_task"] is None
    assert second["failed_task"] == "load" and second["log_tail"] == ["ERROR boom"]
    assert asked == [("etl", "run-2")]  # only failed runs are asked about
    assert run_results.find_run("etl", "run-1")["event_id"] == first["event_id"]
    assert run_results.find_run("etl", "run-9") is None
    assert [d["run_id"] for d in run_results.newest_documents(limit=1)["runs"]] == ["run-2"]

    def unreachable(dag_id, run_id):
        raise AirflowApiUnavailable("cannot reach Airflow's API")

    failed = run_results.find_run("etl", "run-2", outcome_of=unreachable)
    assert failed["failed_task"] is None and "cannot reach" in failed["log_error"]


def test_cli_prints_run_documents_as_json_lines(cli, dagops_env):
    _record("etl", "run-1", "success")
    events.record("sync", repository="team", actor="cli", outcome="success", summary="team: synced")
    result = cli("events", "--runs")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    assert [(d["dag_id"], d["run_id"], d["outcome"]) for d in lines] == [("etl", "run-1", "success")]
