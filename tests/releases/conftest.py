"""Fixtures of the promotion tests: a repository with stages, and a fake source of DAG run outcomes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_dagops.airflow.rest_client import RunOutcome, RunSource
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source


class FakeRuns(RunSource):
    """Run outcomes the test hands out; like Airflow's API, only finished runs started since `since`."""

    def __init__(self):
        self.outcomes: list[RunOutcome] = []
        self.asked: list[tuple[list[str], datetime]] = []

    def add(self, dag_id: str, state: str = "success", run_id: str | None = None, when: datetime | None = None):
        run_id = run_id or f"manual__{len(self.outcomes)}"
        self.outcomes.append(RunOutcome(dag_id, run_id, state, when or datetime.now(timezone.utc)))

    def runs(self, dag_ids, since):
        self.asked.append((list(dag_ids), since))
        return [o for o in self.outcomes if o.dag_id in dag_ids and o.ended_at >= since]


@pytest.fixture
def runs() -> FakeRuns:
    return FakeRuns()


@pytest.fixture
def structure_on(monkeypatch):
    """The structure step lists each release's DAGs: promotion reads their dag_ids from it."""
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")


@pytest.fixture
def staged_repo(dagops_env, git_remote, structure_on):
    """`team` (namespace `team`) with stages [staging, prod], soak_runs 2, and one release in staging."""
    remote = git_remote({"dags/a.py": dag_source("a"), "dags/b.py": dag_source("b")})
    add_repository("team", remote.url, promotion={"stages": ["staging", "prod"], "soak_runs": 2})
    outcome = sync_repository("team")
    assert outcome.status == "published", outcome.message
    return remote, outcome


def long_ago() -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=1)
