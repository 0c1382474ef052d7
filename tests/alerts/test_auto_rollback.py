"""Release health and the auto_rollback rule, from `dag_run` events as the dagops_events DAG records them (here
recorded directly; tests/alerts/test_auto_rollback_airflow.py gets them from a real Airflow)."""

from __future__ import annotations

from datetime import timedelta

from airflow_dagops.alerts import release_health
from airflow_dagops.events import feed as events
from airflow_dagops.releases import auto_rollback
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.models import utcnow
from airflow_dagops.sync.sync import sync_repository
from tests.alerts.conftest import WEBHOOK_ALERTS, alerts_received
from tests.helpers.repos import dag_source

RULE = {"max_failure_rate": 0.5, "min_runs": 3}


def _runs(release_id: int, *outcomes: str, seconds: float = 60) -> None:
    """DAG runs of `release_id` that started after it went live, as the dagops_events DAG records them."""
    for i, outcome in enumerate(outcomes):
        start = utcnow() + timedelta(seconds=i)
        events.record(
            "dag_run",
            repository="team",
            release_id=release_id,
            actor="airflow",
            outcome=outcome,
            summary=f"team: etl run {i} {outcome}",
            detail={
                "dag_id": "etl",
                "run_id": f"manual__{release_id}_{i}",
                "state": outcome,
                "start_date": start.isoformat(),
                "end_date": (start + timedelta(seconds=seconds)).isoformat(),
            },
        )


def _two_releases(git_remote, **options) -> tuple[int, int]:
    remote = git_remote({"dags/etl.py": dag_source("etl")})
    add_repository("team", remote.url, **options)
    first = sync_repository("team").release_id
    remote.commit("second", {"dags/etl.py": dag_source("etl") + "\n# v2\n"})
    second = sync_repository("team").release_id
    assert first and second and first != second
    return first, second


def test_release_health_compares_with_the_previous_release(dagops_env, git_remote):
    first, second = _two_releases(git_remote)
    _runs(first, "success", "success")  # recorded before: they started before release 2 went live...
    _runs(second, "success", "failed", "failed", "success", seconds=90)
    answer = release_health.release_health("team")["release"]
    assert answer["release_id"] == second
    assert (answer["runs"], answer["success"], answer["failed"], answer["success_rate"]) == (4, 2, 2, 0.5)
    assert answer["mean_duration_seconds"] == 90.0
    assert answer["previous"]["release_id"] == first
    # ...and release 1's runs started after it went live: they count for it.
    assert answer["previous"]["success_rate"] == 1.0 and answer["previous"]["mean_duration_seconds"] == 60.0
    assert answer["success_rate_change"] == -0.5 and answer["mean_duration_change_seconds"] == 30.0


def test_the_rule_rolls_back_and_pins_once_after_min_runs(dagops_env, git_remote, receiver):
    first, second = _two_releases(git_remote, auto_rollback=RULE, alerts=WEBHOOK_ALERTS)
    _runs(second, "failed", "failed")
    assert auto_rollback.evaluate() == []  # two runs: the rule waits for min_runs (3)
    _runs(second, "success")
    (done,) = auto_rollback.evaluate()  # 2 of the first 3 failed: 67% > 50%
    assert done == {"repository": "team", "release_id": second, "to_release_id": first, "rolled_back": True}
    repo = get_repository("team")
    assert repo.live_release_id == first and repo.pinned_release_id == first

    (alert,) = alerts_received(receiver)
    assert alert["event"] == "auto_rollback" and alert["details"]["runs"] == ["failed", "failed", "success"]
    assert "2 of the first 3 DAG runs" in alert["message"] and "dagops unpin team" in alert["message"]
    rollbacks = events.list_events(repository="team", kinds=["rollback"])["events"]
    assert [e["actor"] for e in rollbacks] == ["dagops:auto_rollback"]

    _runs(first, "failed", "failed", "failed")  # what it rolled back to is someone's choice now: left alone
    assert auto_rollback.evaluate() == []
    assert len(alerts_received(receiver)) == 1


def test_only_the_first_runs_are_judged(dagops_env, git_remote, receiver):
    _first, second = _two_releases(git_remote, auto_rollback=RULE, alerts=WEBHOOK_ALERTS)
    _runs(second, "success", "failed", "success")  # 1 of 3: it stands
    assert auto_rollback.evaluate() == []
    _runs(second, "failed", "failed", "failed")  # later failures are the health's business, not this rule's
    assert auto_rollback.evaluate() == []
    assert get_repository("team").live_release_id == second and alerts_received(receiver) == []
