"""End to end in real Airflow: dagops_sync triggered through the REST API publishes a repository's DAGs."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tests.helpers.repos import dag_source
from tests.helpers.servers import wait_for

# First among the tests sharing the instance: its quiet cycle expects no other repository with changes. It
# removes its repositories when done.
pytestmark = [pytest.mark.e2e, pytest.mark.real_airflow_first]


REPOSITORIES = ("team", "tested")  # what this test registers in the shared instance


@pytest.fixture
def airflow(real_airflow, request):
    """The worker's shared real Airflow (tests/helpers/airflow.py; dagops_sync runs only when triggered), its
    process logs printed when the test fails. Its repositories are removed afterwards: the tests that share the
    instance after this one start from an empty list (tests/browser)."""
    yield real_airflow
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(real_airflow.logs())
    for name in REPOSITORIES:
        try:
            real_airflow.run("dagops", "repos", "remove", name)
        except RuntimeError as error:  # never registered (the test failed early): nothing to remove
            print(error)


def _trigger_sync(airflow, repository: str) -> str:
    response = airflow.api(
        "POST", "dags/dagops_sync/dagRuns", json={"logical_date": None, "conf": {"repository": repository}}
    )
    assert response.status_code == 200, response.text
    return response.json()["dag_run_id"]


def _run_state(airflow, run_id: str) -> str | None:
    state = airflow.api("GET", f"dags/dagops_sync/dagRuns/{run_id}").json()["state"]
    return state if state in ("success", "failed") else None


def _task_states(airflow, run_id: str) -> list[tuple[str, int, str]]:
    instances = airflow.api("GET", f"dags/dagops_sync/dagRuns/{run_id}/taskInstances").json()["task_instances"]
    return sorted((ti["task_id"], ti["map_index"], ti["state"]) for ti in instances)


def test_dagops_sync_in_airflow_publishes_then_republishes(airflow, git_remote):
    remote = git_remote({"dags/team_hello.py": dag_source("team_hello")})
    airflow.run("dagops", "repos", "add", "team", remote.url, "--namespace", "team")
    wait_for(lambda: "dagops_sync" in airflow.dag_ids(), timeout=90, what="the dagops_sync system DAG")

    first_run = _trigger_sync(airflow, "team")
    wait_for(lambda: "team_hello" in airflow.dag_ids(), timeout=120, what="team_hello in GET /api/v2/dags")
    assert wait_for(lambda: _run_state(airflow, first_run), timeout=60, what="the first run") == "success"
    # A run that names its repository syncs it in its first task and maps no `sync` task: the release goes live
    # without waiting for a second task to be scheduled and started.
    assert _task_states(airflow, first_run) == [("sense", -1, "success"), ("sync", -1, "skipped")]
    dag = airflow.api("GET", "dags/team_hello").json()
    # Parsed once, by the dagops-releases bundle (publish_mode = bundle, the default), from namespace `team`.
    assert (dag["bundle_name"], dag["relative_fileloc"]) == ("dagops-releases", "team/dags/team_hello.py")
    # The cluster policy (airflow.policy entry point) tagged it with its namespace and repository.
    assert {"dagops:team", "dagops-repo:team", "test"} <= {tag["name"] for tag in dag["tags"]}

    remote.commit("second dag", {"dags/team_second.py": dag_source("team_second")})
    second_run = _trigger_sync(airflow, "team")
    wait_for(lambda: "team_second" in airflow.dag_ids(), timeout=120, what="team_second after the new commit")
    assert wait_for(lambda: _run_state(airflow, second_run), timeout=60, what="the second run") == "success"

    # The sync history records the Airflow runs that did the work.
    engine = create_engine(f"sqlite:///{airflow.home / 'dagops' / 'dagops.db'}")
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT r.airflow_run_id, r.status, r.trigger FROM dagops_sync_run r"
                " JOIN dagops_repository p ON p.id = r.repository_id WHERE p.name = 'team' ORDER BY r.id"
            )
        )
        runs = [tuple(row) for row in rows]
    assert runs == [(first_run, "success", "manual"), (second_run, "success", "manual")]

    # A broken commit fails the task and leaves both DAGs in place.
    remote.commit("broken", {"dags/team_second.py": "def oops(:  # an Airflow DAG\n"})
    broken_run = _trigger_sync(airflow, "team")
    assert wait_for(lambda: _run_state(airflow, broken_run), timeout=90, what="the broken run") == "failed"
    assert {"team_hello", "team_second"} <= airflow.dag_ids()
    assert _task_states(airflow, broken_run) == [("sense", -1, "failed"), ("sync", -1, "upstream_failed")]

    # A cycle in which nothing changed maps no sync task at all.
    quiet = airflow.api("POST", "dags/dagops_sync/dagRuns", json={"logical_date": None}).json()["dag_run_id"]
    assert wait_for(lambda: _run_state(airflow, quiet), timeout=90, what="the quiet run") == "success"
    assert _task_states(airflow, quiet) == [("sense", -1, "success"), ("sync", -1, "skipped")]

    # A repository whose tests gate its releases: the sync leaves the release waiting, the asset it updates
    # schedules dagops_test, whose mapped task runs the test module and whose last task publishes it.
    tested = git_remote(
        {
            "dags/tested_dag.py": dag_source("tested_dag"),
            ".dagops.yaml": "tests: required\n",
            "tests/test_sum.py": "def test_sum():\n    assert sum([1, 2]) == 3\n",
        },
        name="tested",
    )
    airflow.run("dagops", "repos", "add", "tested", tested.url)
    tested_run = _trigger_sync(airflow, "tested")
    assert wait_for(lambda: _run_state(airflow, tested_run), timeout=90, what="the tested sync") == "success"
    wait_for(lambda: "tested_dag" in airflow.dag_ids(), timeout=180, what="tested_dag, published by dagops_test")

    def finished_test_runs():
        runs = airflow.api("GET", "dags/dagops_test/dagRuns").json()["dag_runs"]
        return [(run["run_type"], run["state"]) for run in runs if run["state"] in ("success", "failed")] or None

    done = wait_for(finished_test_runs, timeout=60, what="the dagops_test run")
    assert ("asset_triggered", "success") in done, done
