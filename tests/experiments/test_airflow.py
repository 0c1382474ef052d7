"""An experiment in a real Airflow (the shared instance of tests/helpers/airflow.py): prod's `abjob` and the
candidate's `abjob__ab` both get every scheduled run; the gate on their tasks, run by Airflow's task runner on the
worker, lets one of the two run each logical date and skips the other; the split is recorded; `dagops ab status
--check` reads both variants' runs through Airflow's REST API, and `dagops ab promote` puts the candidate live."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from tests.helpers.servers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]  # scheduled runs: a minute each

NAME = "abtest"  # this test's repository in the shared instance
JOB = """import pendulum
from airflow.sdk import dag, task


@dag(dag_id="abjob", schedule="* * * * *", start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def abjob():
    @task
    def work():
        return "{version}"

    work()


abjob()
"""
RUNS = 2  # split scheduled runs to wait for (a minute each): one of each variant, alternately


@pytest.fixture
def airflow(real_airflow, request):
    yield real_airflow
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(real_airflow.logs())
    for dag_id in ("abjob", "abjob__ab"):
        real_airflow.api("PATCH", f"dags/{dag_id}", json={"is_paused": True})
    try:
        real_airflow.run("dagops", "repos", "remove", NAME)
    except RuntimeError as error:  # never registered (the test failed early)
        print(error)


def _state_db(airflow, query: str, **params) -> list[tuple]:
    engine = create_engine(f"sqlite:///{airflow.home / 'dagops' / 'dagops.db'}")
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query), params)]
    finally:
        engine.dispose()


def _split(airflow) -> list[tuple]:
    return _state_db(
        airflow,
        "SELECT r.run_key, r.owner, r.a_run_id, r.b_run_id FROM dagops_experiment_run r WHERE r.kind = 'split' "
        "ORDER BY r.id",
    )


def _task_state(airflow, dag_id: str, run_id: str) -> str | None:
    answer = airflow.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    states = [ti["state"] for ti in answer.json().get("task_instances", [])] if answer.ok else []
    return states[0] if states and states[0] in ("success", "skipped", "failed") else None


def test_scheduled_runs_are_split_between_prod_and_the_candidate(airflow, git_remote):
    remote = git_remote({"dags/abjob.py": JOB.format(version="1")}, name=NAME)
    airflow.run("dagops", "repos", "add", NAME, remote.url, "--promotion", "staging,prod:0")
    airflow.run("dagops", "sync", NAME)
    airflow.run("dagops", "promote", NAME)  # release 1 in prod
    remote.commit("abjob v2", {"dags/abjob.py": JOB.format(version="2")})
    airflow.run("dagops", "sync", NAME)  # release 2 waits in staging: the candidate

    started = json.loads(airflow.run("dagops", "ab", "start", NAME, "abjob", "--min-runs", "2", "--json").stdout)
    assert started["variants"]["B"]["dag_id"] == "abjob__ab"
    wait_for(lambda: {"abjob", "abjob__ab"} <= airflow.dag_ids(), timeout=180, what="abjob and abjob__ab in Airflow")
    assert airflow.api("GET", "dags/abjob__ab").json()["is_paused"] is False  # created unpaused by the policy
    assert airflow.api("PATCH", "dags/abjob", json={"is_paused": False}).status_code == 200

    def split_and_done():
        rows = _split(airflow)
        done = [
            row for row in rows
            if row[2] and row[3] and _task_state(airflow, "abjob", row[2]) and _task_state(airflow, "abjob__ab", row[3])
        ]  # fmt: skip
        return done if len(done) >= RUNS else None

    done = wait_for(split_and_done, timeout=420, what=f"{RUNS} logical dates asked by both variants and finished")
    for _key, owner, a_run, b_run in done:
        ran, skipped = ("abjob", a_run), ("abjob__ab", b_run)
        if owner == "B":
            ran, skipped = skipped, ran
        assert _task_state(airflow, *ran) == "success", (owner, ran)
        assert _task_state(airflow, *skipped) == "skipped", (owner, skipped)
    assert [row[1] for row in _split(airflow)][:RUNS] == ["A", "B"] * (RUNS // 2)

    (status,) = json.loads(airflow.run("dagops", "ab", "status", NAME, "--check", "--json").stdout)
    assert status["variants"]["A"]["success"] >= RUNS // 2 and status["variants"]["B"]["success"] >= RUNS // 2
    assert status["variants"]["A"]["failed"] == status["variants"]["B"]["failed"] == 0
    assert status["verdict"]["summary"]

    promoted = json.loads(airflow.run("dagops", "ab", "promote", NAME, "--winner", "B", "--json").stdout)
    assert promoted["status"] == "promoted"
    live = _state_db(airflow, "SELECT live_release_id FROM dagops_repository WHERE name = :name", name=NAME)
    assert live == [(started["variants"]["B"]["release_id"],)]
