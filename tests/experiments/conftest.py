"""Fixtures of the A/B experiment tests: a repository whose prod release and candidate both define the DAG `report`
(@daily) beside `other` (@hourly), a fake of Airflow's list of finished DAG runs, and gates asked as Airflow's tasks
would."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_dagops.airflow import experiment_gate
from airflow_dagops.releases import promotion
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release
from airflow_dagops.sync.sync import sync_repository
from tests.events.conftest import airflow_run

DAG = """from airflow.sdk import dag, task
import pendulum


@dag(dag_id="{dag_id}", schedule="{schedule}", start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def {dag_id}():
    @task
    def work():
        return "{version}"

    work()


{dag_id}()
"""


def dag_file(dag_id: str, *, schedule: str = "@daily", version: str = "1") -> str:
    return DAG.format(dag_id=dag_id, schedule=schedule, version=version)


class FakeRuns:
    """Finished DAG runs as Airflow's REST API lists them to the event collector (events/dag_runs.py): the test adds
    them, the collector reads those that ended after its cursor."""

    def __init__(self):
        self.runs: list[dict] = []
        self.asked: list[list[str]] = []

    def add(self, dag_id: str, run_id: str, state: str = "success", seconds: float = 60.0) -> None:
        ended = datetime.now(timezone.utc) + timedelta(minutes=len(self.runs), seconds=seconds)
        self.runs.append(airflow_run(dag_id, run_id, state, ended, seconds=seconds))

    def finished_runs(self, dag_ids, *, end_date_gt):
        self.asked.append(list(dag_ids))
        return [r for r in self.runs if r["dag_id"] in dag_ids and _ended(r) > end_date_gt]

    def tagged_dags(self, tag):
        return []


def _ended(run: dict) -> datetime:
    return datetime.fromisoformat(run["end_date"].replace("Z", "+00:00"))


@pytest.fixture
def runs() -> FakeRuns:
    return FakeRuns()


def make_candidate(git_remote, *, real_structure: bool):
    """`team` with stages [staging, prod]: release 1 in prod, release 2 (a new `report`) waiting in staging.
    Returns (remote, prod release id, candidate release id).

    The experiments read each release's DAG list (dag_id, file, schedule) from validation's structure step, which
    imports every DAG file in the sandbox: about 10 s a release here. `real_structure` runs it; otherwise the list
    is recorded as that step records it, from the files the test wrote."""
    remote = git_remote({"dags/report.py": dag_file("report"), "dags/other.py": dag_file("other", schedule="@hourly")})
    add_repository("team", remote.url, promotion={"stages": ["staging", "prod"], "soak_runs": 0})
    first = sync_and_list(real_structure, {"report": "@daily", "other": "@hourly"})
    promotion.promote("team", actor="test")
    remote.commit("report v2", {"dags/report.py": dag_file("report", version="2")})
    second = sync_and_list(real_structure, {"report": "@daily", "other": "@hourly"})
    return remote, first, second


def sync_and_list(real_structure: bool, schedules: dict[str, str]) -> int:
    """Sync `team`; returns the new release's id, its DAG list as the structure step records it."""
    outcome = sync_repository("team")
    assert outcome.status == "published", outcome.message
    if not real_structure:
        with session_scope() as session:
            release = session.get(Release, outcome.release_id)
            dags = [{"dag_id": dag_id, "file": f"dags/{dag_id}.py", "schedule": s} for dag_id, s in schedules.items()]
            release.validation_summary = {**(release.validation_summary or {}), "dags": dags, "structure": True}
    return outcome.release_id


@pytest.fixture
def candidate(dagops_env, git_remote):
    return make_candidate(git_remote, real_structure=False)


@pytest.fixture
def validated_candidate(dagops_env, git_remote, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")  # structure lists DAGs
    return make_candidate(git_remote, real_structure=True)


def ask(experiment_id: int, variant: str, day: int, *, run_type: str = "scheduled", run_id: str | None = None):
    """A gate of `variant` asking about the scheduled run of day `day` (days from now, so after the start)."""
    logical_date = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=day)
    return experiment_gate.assign(
        experiment_id,
        variant,
        run_type=run_type,
        logical_date=logical_date,
        run_id=run_id or f"{run_type}__{logical_date.isoformat()}",
    )


def split_runs(experiment_id: int, days: range) -> dict[int, str]:
    """Both variants' gates ask about each day, A first; the owner of each day."""
    owners = {}
    for day in days:
        owner = ask(experiment_id, "A", day).owner
        assert ask(experiment_id, "B", day).owner == owner
        owners[day] = owner
    return owners
