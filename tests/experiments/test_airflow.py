"""An experiment in a real Airflow (the shared instance of tests/helpers/airflow.py): prod's `abjob` and the
candidate's `abjob__ab` both get every scheduled run; the gate on their tasks, run by Airflow's task runner on the
worker, lets one of the two run each logical date and skips the other, every instance of its mapped tasks included;
the split is recorded; `dagops ab status --check` collects both variants' runs through Airflow's REST API into the
event feed (each against its variant's release) and judges them, and `dagops ab promote` puts the candidate live."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from tests.helpers.servers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]  # scheduled runs: a minute each

NAME = "abtest"  # this test's repository in the shared instance
JOB = """import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import dag, task, task_group


@dag(dag_id="abjob", schedule="* * * * *", start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def abjob():
    @task
    def work():
        return "{version}"

    @task
    def parts():
        return [1, 2, 3]

    @task
    def part(n):
        return n * 2

    @task_group
    def each(x):
        @task
        def step(x):
            return x

        step(x)

    work() >> part.expand(n=parts())
    PythonOperator.partial(task_id="fixed", python_callable=lambda n: n).expand(op_args=[[1], [2]])
    each.expand(x=[1, 2])


abjob()
"""
# Mapped tasks (over an upstream's output, over a literal, in a mapped task group): their instances in a run that runs.
MAPPED = {"part": 3, "fixed": 2, "each.step": 2}
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


def _dag_run_events(airflow) -> dict[tuple[str, str], tuple[int, str]]:
    """(dag_id, run_id) -> (release id, outcome) of the feed's `dag_run` events."""
    rows = _state_db(airflow, "SELECT release_id, outcome, detail FROM dagops_event WHERE kind = 'dag_run'")
    found = {}
    for release_id, outcome, detail in rows:
        facts = json.loads(detail)
        found[(facts["dag_id"], facts["run_id"])] = (release_id, outcome)
    return found


def _task_states(airflow, dag_id: str, run_id: str) -> dict[tuple[str, int], str] | None:
    """(task_id, map_index) -> state of every task instance of a run, once all of them have finished."""
    answer = airflow.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
    found = answer.json().get("task_instances", []) if answer.ok else []
    states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in found}
    finished = states and all(state in ("success", "skipped", "failed") for state in states.values())
    return states if finished else None


def test_scheduled_runs_are_split_between_prod_and_the_candidate(airflow, git_remote):
    remote = git_remote({"dags/abjob.py": JOB.format(version="1")}, name=NAME)
    airflow.run("dagops", "repos", "add", NAME, remote.url, "--promotion", "staging,prod:0")
    airflow.run("dagops", "sync", NAME)
    airflow.run("dagops", "promote", NAME)  # release 1 in prod
    remote.commit("abjob v2", {"dags/abjob.py": JOB.format(version="2")})
    airflow.run("dagops", "sync", NAME)  # release 2 waits in staging: the candidate

    started = json.loads(airflow.run("dagops", "ab", "start", NAME, "abjob", "--min-runs", "2", "--json").stdout)
    assert started["variants"]["B"]["dag_id"] == "abjob__ab"
    wait_for(lambda: {"abjob", "abjob__ab"} <= airflow.dag_ids(), timeout=300, what="abjob and abjob__ab in Airflow")
    assert airflow.api("GET", "dags/abjob__ab").json()["is_paused"] is False  # created unpaused by the policy
    assert airflow.api("PATCH", "dags/abjob", json={"is_paused": False}).status_code == 200

    def split_and_done():
        done = []
        for _key, owner, a_run, b_run in _split(airflow):
            if not (a_run and b_run):
                continue  # a variant's gate has not asked yet
            states = {"A": _task_states(airflow, "abjob", a_run), "B": _task_states(airflow, "abjob__ab", b_run)}
            if states["A"] and states["B"]:
                done.append((owner, {"A": a_run, "B": b_run}, states))
        return done if len(done) >= RUNS else None

    done = wait_for(split_and_done, timeout=420, what=f"{RUNS} logical dates asked by both variants and finished")
    for owner, _run_ids, states in done:
        ran, skipped = states[owner], states["B" if owner == "A" else "A"]
        # Every instance of a mapped task took its run's variant: all ran in the owner, none in the other.
        assert set(ran.values()) == {"success"}, (owner, ran)
        assert {task: sum(1 for t, _ in ran if t == task) for task in MAPPED} == MAPPED, ran
        assert set(skipped.values()) == {"skipped"}, (owner, skipped)
    assert [row[1] for row in _split(airflow)][:RUNS] == ["A", "B"] * (RUNS // 2)

    (status,) = json.loads(airflow.run("dagops", "ab", "status", NAME, "--check", "--json").stdout)
    assert status["variants"]["A"]["success"] >= RUNS // 2 and status["variants"]["B"]["success"] >= RUNS // 2
    assert status["variants"]["A"]["failed"] == status["variants"]["B"]["failed"] == 0
    assert status["verdict"]["summary"]
    # The check collected both DAGs' runs into the event feed: each against its variant's release, the copy the gate
    # skipped as `skipped`; release health reads the same events.
    releases = {variant: started["variants"][variant]["release_id"] for variant in ("A", "B")}
    recorded = _dag_run_events(airflow)
    for owner, run_ids, _states in done:
        for variant, dag_id in (("A", "abjob"), ("B", "abjob__ab")):
            expected = (releases[variant], "success" if variant == owner else "skipped")
            assert recorded[(dag_id, run_ids[variant])] == expected, (owner, variant)

    promoted = json.loads(airflow.run("dagops", "ab", "promote", NAME, "--winner", "B", "--json").stdout)
    assert promoted["status"] == "promoted"
    live = _state_db(airflow, "SELECT live_release_id FROM dagops_repository WHERE name = :name", name=NAME)
    assert live == [(started["variants"]["B"]["release_id"],)]
