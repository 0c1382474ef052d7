"""DAG run outcomes into the feed: the dagops_events collector against a fake Airflow REST API (tests/events/
conftest.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_dagops.events import dag_runs as dag_run_events
from airflow_dagops.events import feed as events
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.events.conftest import FakeAirflow, airflow_run
from tests.helpers.repos import dag_source

NOW = datetime.now(timezone.utc)


def _dag_run_events() -> list[dict]:
    return events.list_events(kinds=["dag_run"])["events"]


def test_runs_of_published_dags_are_recorded_once(dagops_env, git_remote, airflow_api, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")  # lists the DAGs
    add_repository("team", git_remote({"dags/etl.py": dag_source("etl")}).url)
    release_id = sync_repository("team").release_id
    FakeAirflow.runs = [
        airflow_run("etl", "scheduled__1", "success", NOW - timedelta(minutes=10)),
        airflow_run("etl", "manual__2", "failed", NOW - timedelta(minutes=5)),
        airflow_run("someone_elses_dag", "manual__3", "failed", NOW - timedelta(minutes=4)),
    ]

    assert dag_run_events.collect(airflow_api, now=NOW) == 2
    recorded = _dag_run_events()
    assert [(e["outcome"], e["detail"]["run_id"]) for e in recorded] == [
        ("success", "scheduled__1"),
        ("failed", "manual__2"),
    ]
    assert all(e["repository"] == "team" and e["release_id"] == release_id for e in recorded)
    assert recorded[1]["detail"]["namespace"] == "team" and recorded[1]["detail"]["dag_id"] == "etl"
    asked = [body for method, path, body in FakeAirflow.requests if path.endswith("dagRuns/list")]
    assert asked[0]["dag_ids"] == ["etl"]

    # Nothing new: the look-back overlap returns manual__2 again, and it is not recorded twice.
    assert dag_run_events.collect(airflow_api, now=NOW) == 0
    FakeAirflow.runs.append(airflow_run("etl", "manual__4", "success", NOW + timedelta(minutes=1)))
    assert dag_run_events.collect(airflow_api, now=NOW) == 1
    assert [e["detail"]["run_id"] for e in _dag_run_events()] == ["scheduled__1", "manual__2", "manual__4"]


def test_without_a_dag_list_the_dags_are_found_by_their_dagops_tag(dagops_env, git_remote, airflow_api):
    add_repository("team", git_remote().url)  # structure step skipped: no DAG list
    sync_repository("team")
    FakeAirflow.tags = {"dagops-repo:team": ["hello"]}
    FakeAirflow.runs = [airflow_run("hello", "manual__1", "success", NOW - timedelta(minutes=1))]
    assert dag_run_events.collect(airflow_api, now=NOW) == 1
    assert _dag_run_events()[0]["detail"]["dag_id"] == "hello"


def test_nothing_published_means_no_api_call(dagops_env):
    def no_source():
        raise AssertionError("the API must not be asked")

    assert dag_run_events.collect(no_source) == 0


def test_the_dagops_events_system_dag_parses(dagops_env, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from airflow_dagops import paths

    monkeypatch.setenv("AIRFLOW__DAGOPS__EVENTS_INTERVAL", "600")
    bag = DagBag(dag_folder=str(paths.meta_dags_dir() / "dagops_events.py"))
    assert bag.import_errors == {}
    dag = bag.dags["dagops_events"]
    assert dag.schedule == timedelta(seconds=600)
    assert dag.catchup is False and dag.max_active_runs == 1 and set(dag.task_dict) == {"collect_dag_runs"}
