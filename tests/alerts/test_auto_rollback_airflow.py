"""Auto-rollback in a real Airflow (the shared instance of tests/helpers/airflow.py): release 2 of a repository
makes its DAG fail; its runs fail in Airflow, the dagops_events DAG collects them through Airflow's REST API and
judges the release by its first runs, rolls the repository back to release 1, pins it, and the alert reaches a
local fake endpoint."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from tests.helpers.airflow_procs import parsed_at
from tests.helpers.servers import start_fake_api, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NAME = "rollme"  # this test's repository in the shared instance
JOB = """from airflow.sdk import dag, task
import pendulum


@dag(dag_id="rollme_job", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["test"])
def rollme_job():
    @task
    def work():
        if {fail}:
            raise RuntimeError("release 2 breaks the job")
        return "ok"

    work()


rollme_job()
"""


@pytest.fixture
def airflow(real_airflow, request):
    yield real_airflow
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(real_airflow.logs())
    try:
        real_airflow.run("dagops", "repos", "remove", NAME)
    except RuntimeError as error:  # never registered (the test failed early)
        print(error)


def _trigger(airflow, dag_id: str) -> str:
    response = airflow.api("POST", f"dags/{dag_id}/dagRuns", json={"logical_date": None})
    assert response.status_code == 200, response.text
    return response.json()["dag_run_id"]


def _ended(airflow, dag_id: str, run_id: str) -> str | None:
    state = airflow.api("GET", f"dags/{dag_id}/dagRuns/{run_id}").json().get("state")
    return state if state in ("success", "failed") else None


def _state_db(airflow, query: str) -> list[tuple]:
    engine = create_engine(f"sqlite:///{airflow.home / 'dagops' / 'dagops.db'}")
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query), {"name": NAME})]
    finally:
        engine.dispose()


def test_a_release_whose_dag_fails_its_runs_is_rolled_back(airflow, git_remote):
    receiver = start_fake_api()
    receiver.status = 200
    try:
        airflow.run(
            "airflow", "connections", "add", "rollme_hook", "--conn-type", "http", "--conn-host",
            f"{receiver.url}/hooks/ops",
        )  # fmt: skip
        remote = git_remote({"dags/rollme_job.py": JOB.format(fail=False)}, name=NAME)
        alerts = {"events": ["auto_rollback"], "notifiers": [{"webhook": {"conn_id": "rollme_hook"}}]}
        airflow.run(
            "dagops", "repos", "add", NAME, remote.url, "--alerts", json.dumps(alerts), "--auto-rollback", "0.5:2"
        )
        airflow.run("dagops", "sync", NAME)  # release 1: the job succeeds
        wait_for(lambda: "rollme_job" in airflow.dag_ids(), timeout=120, what="rollme_job in GET /api/v2/dags")
        assert airflow.api("PATCH", "dags/rollme_job", json={"is_paused": False}).status_code == 200

        broken = remote.commit("break the job", {"dags/rollme_job.py": JOB.format(fail=True)})
        airflow.run("dagops", "sync", NAME)  # release 2 goes live by itself: the rule may judge it
        # A run is pinned to the bundle version Airflow last parsed: trigger once the processor has parsed release 2.
        wait_for(lambda: parsed_at(airflow, "rollme_job", NAME, broken), timeout=120, what="rollme_job at release 2")
        ((first, second),) = _state_db(
            airflow,
            "SELECT MIN(r.id), MAX(r.id) FROM dagops_release r JOIN dagops_repository p ON p.id = r.repository_id"
            " WHERE p.name = :name",
        )
        assert _state_db(airflow, "SELECT live_release_id FROM dagops_repository WHERE name = :name") == [(second,)]

        runs = [_trigger(airflow, "rollme_job") for _ in range(2)]
        for run_id in runs:
            state = wait_for(lambda run_id=run_id: _ended(airflow, "rollme_job", run_id), timeout=180, what=run_id)
            assert state == "failed"

        collect = _trigger(airflow, "dagops_events")  # collects the outcomes, then judges the live release
        assert wait_for(lambda: _ended(airflow, "dagops_events", collect), timeout=180, what="dagops_events") == (
            "success"
        )
        live, pinned = _state_db(
            airflow, "SELECT live_release_id, pinned_release_id FROM dagops_repository WHERE name = :name"
        )[0]
        assert (live, pinned) == (first, first)
        sent = [call.body["dagops"] for call in receiver.calls if call.path == "/hooks/ops"]
        assert [alert["event"] for alert in sent] == ["auto_rollback"]
        assert sent[0]["details"]["runs"] == ["failed", "failed"] and sent[0]["details"]["to_release_id"] == first
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
