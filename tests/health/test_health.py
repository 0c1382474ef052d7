"""Health of a repository through each state and transition, on real remotes: a smart-HTTP git server that starts
refusing the credentials, a stream of commits that fail validation, recoveries, time passing (stored timestamps
moved back), a pause. Syncs and polls are the real services the dagops_sync DAG calls."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from airflow_dagops.health.reasons import failure_reason
from airflow_dagops.health.service import HealthRules, health_report, repository_health, schedule_period
from airflow_dagops.releases import rollback
from airflow_dagops.repositories.registry import add_repository, update_repository
from airflow_dagops.statuses import FailureReason, HealthState, OverallHealth
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Repository, SyncRun, utcnow
from airflow_dagops.sync.runs import get_sync_run
from airflow_dagops.sync.sense import sense
from airflow_dagops.sync.sync import sync_repository
from tests.health.conftest import CONN_ID
from tests.helpers.repos import dag_source

BROKEN = "from airflow.sdk import dag\n\n@dag(\ndef broken(:\n"


def _ended(sync_run_id: int) -> str:
    return get_sync_run(sync_run_id)["ended_at"]


def test_a_remote_that_starts_refusing_credentials_is_failing_auth_after_three_syncs_then_recovers(http_remote):
    add_repository("team", http_remote.url, conn_id=CONN_ID)
    assert sync_repository("team", trigger="schedule").status == "published"
    health = repository_health("team")
    assert (health.state, health.consecutive_failures, health.last_failure) == (HealthState.OK, 0, None)

    http_remote.refuse_credentials()
    outcomes = []
    for attempt in (1, 2):
        outcomes.append(sync_repository("team", trigger="schedule"))
        health = repository_health("team")
        assert health.state == HealthState.OK and health.consecutive_failures == attempt
        assert health.last_failure["reason"] == "auth" and health.last_failure["code"] == "authentication_failed"
    third = sync_repository("team", trigger="schedule")
    assert third.status == "failed"

    health = repository_health("team")
    assert health.state == HealthState.FAILING and health.reason == FailureReason.AUTH
    assert health.consecutive_failures == 3
    assert health.to_dict()["since"] == _ended(third.sync_run_id)  # when the third failure crossed the threshold
    assert "3 syncs in a row failed (auth)" in health.message
    report = health_report()
    assert report.overall == OverallHealth.FAILING and report.counts()["failing"] == 1

    # The credentials work again and nothing was pushed: the next poll finds the branch unchanged, and says so.
    http_remote.accept_credentials()
    results = sense(respect_poll_interval=False)
    assert [(r.repository, r.changed) for r in results] == [("team", False)]
    health = repository_health("team")
    assert health.state == HealthState.OK and health.consecutive_failures == 0 and health.last_failure is None
    with session_scope() as session:
        recovery = session.query(SyncRun).order_by(SyncRun.id.desc()).first()
        assert (recovery.status, recovery.trigger) == ("unchanged", "schedule")
        recovered_id = recovery.id
    assert health.to_dict()["since"] == _ended(recovered_id)
    assert health_report().overall == OverallHealth.OK


def test_a_stream_of_commits_that_fail_validation_is_failing_validation_until_a_good_one(git_remote, dagops_env):
    remote = git_remote()
    add_repository("team", str(remote.path))
    assert sync_repository("team", trigger="schedule").status == "published"
    for number in range(3):
        remote.commit(f"broken {number}", {"dags/broken.py": BROKEN + f"# {number}\n"})
        outcome = sync_repository("team", trigger="schedule")
        assert outcome.status == "failed"
        expected = HealthState.FAILING if number == 2 else HealthState.OK
        assert repository_health("team").state == expected
    health = repository_health("team")
    assert health.reason == FailureReason.VALIDATION and health.consecutive_failures == 3
    assert health.to_dict()["since"] == _ended(outcome.sync_run_id)
    # A retry of the refused head is a `rejected` sync: still failing, for the same reason.
    assert sync_repository("team", trigger="manual").status == "rejected"
    health = repository_health("team")
    assert (health.state, health.reason, health.consecutive_failures) == ("failing", "validation", 4)

    remote.commit("fixed", {"dags/broken.py": dag_source("fixed")})
    good = sync_repository("team", trigger="schedule")
    assert good.status == "published"
    health = repository_health("team")
    assert (health.state, health.consecutive_failures) == (HealthState.OK, 0)
    assert health.to_dict()["since"] == _ended(good.sync_run_id)


def test_no_successful_check_for_three_poll_intervals_is_stale_and_the_next_poll_heals_it(git_remote, dagops_env):
    remote = git_remote()
    add_repository("team", str(remote.path), poll_interval=120)
    sync_repository("team", trigger="schedule")
    sense(respect_poll_interval=False)
    assert repository_health("team").state == HealthState.OK

    # Time passes with nobody polling (the dagops_sync DAG paused, the scheduler down): move the records back.
    checked = utcnow() - timedelta(seconds=3 * 120 + 30)
    with session_scope() as session:
        session.execute(update(Repository).values(last_checked_at=checked, created_at=checked))
        session.execute(update(SyncRun).values(started_at=checked, ended_at=checked))
    health = repository_health("team")
    assert health.state == HealthState.STALE and health.reason is None
    assert (health.poll_interval, health.stale_after) == (120, 360)
    assert health.since == checked + timedelta(seconds=360)
    assert health_report().overall == OverallHealth.DEGRADED

    sense(respect_poll_interval=True)  # due again: checked, nothing new
    assert repository_health("team").state == HealthState.OK


def test_the_poll_interval_is_at_least_the_period_of_the_sync_schedule(git_remote, dagops_env, monkeypatch):
    add_repository("team", str(git_remote().path), poll_interval=10)
    monkeypatch.setenv("AIRFLOW__DAGOPS__SYNC_SCHEDULE", "*/5 * * * *")
    health = repository_health("team")
    assert (health.poll_interval, health.stale_after) == (300, 900)
    assert schedule_period("@hourly") == 3600 and schedule_period("") == 0 and schedule_period("@continuous") == 0


def test_checks_that_cannot_reach_the_remote_count_against_staleness(dagops_env, git_remote, monkeypatch):
    """With a threshold above the stale window, a remote that stopped answering shows as stale before failing."""
    remote = git_remote()
    add_repository("team", str(remote.path), poll_interval=60)
    sync_repository("team", trigger="schedule")
    sense(respect_poll_interval=False)
    monkeypatch.setenv("AIRFLOW__DAGOPS__HEALTH_FAILING_AFTER", "10")
    moved = remote.path.with_name("moved")
    remote.path.rename(moved)  # the remote is gone: every check fails without reaching it
    for _ in range(2):
        sense(respect_poll_interval=False)
        assert sync_repository("team", trigger="schedule").status == "failed"
    health = repository_health("team")
    assert health.state == HealthState.OK and health.last_failure["reason"] == "unreachable"
    assert health.consecutive_failures == 2
    # Four minutes later, the polls still answer (last_checked_at is recent) but none reached the remote.
    with session_scope() as session:
        earlier = utcnow() - timedelta(minutes=4)
        session.execute(update(SyncRun).values(started_at=earlier, ended_at=earlier))
    health = repository_health("team")
    assert health.state == HealthState.STALE and health.consecutive_failures == 2


@pytest.mark.parametrize("how", ["disabled", "pinned"])
def test_a_paused_repository_is_paused_whatever_its_failures(git_remote, dagops_env, how):
    remote = git_remote()
    add_repository("team", str(remote.path))
    sync_repository("team", trigger="schedule")
    for number in range(3):
        remote.commit(f"broken {number}", {"dags/broken.py": BROKEN + f"# {number}\n"})
        sync_repository("team", trigger="schedule")
    assert repository_health("team").state == HealthState.FAILING
    if how == "disabled":
        update_repository("team", verify=False, enabled=False)
    else:
        rollback.pin("team", actor="tester")
    health = repository_health("team")
    assert (health.state, health.reason) == (HealthState.PAUSED, how)
    assert health.since is not None and health.consecutive_failures == 3
    # A pause is a decision, not a fault: the overall health does not count it.
    assert health_report().overall == OverallHealth.OK


def test_failure_reasons_from_codes_and_from_old_messages():
    assert failure_reason("authentication_failed") == FailureReason.AUTH
    assert failure_reason("credential_host_refused") == FailureReason.AUTH
    assert failure_reason("remote_unreachable") == FailureReason.UNREACHABLE
    assert failure_reason("ref_not_found") == FailureReason.UNREACHABLE
    assert failure_reason("validation_failed") == FailureReason.VALIDATION
    assert failure_reason("tests_failed") == FailureReason.TESTS
    assert failure_reason("no_space") == FailureReason.NO_SPACE
    assert failure_reason("lock_busy", "timed out waiting for the lock") == FailureReason.OTHER
    assert failure_reason(None, "fatal: write error: No space left on device") == FailureReason.NO_SPACE
    assert failure_reason("git_error", "fatal: Authentication failed for 'https://x/'") == FailureReason.AUTH
    assert failure_reason(None, "something else") == FailureReason.OTHER


@pytest.mark.parametrize(("factor", "after"), [("0", "3"), ("x", "3"), ("nan", "3"), ("3", "0"), ("3", "2.5")])
def test_health_settings_are_checked(monkeypatch, dagops_env, factor, after):
    monkeypatch.setenv("AIRFLOW__DAGOPS__HEALTH_STALE_FACTOR", factor)
    monkeypatch.setenv("AIRFLOW__DAGOPS__HEALTH_FAILING_AFTER", after)
    with pytest.raises(Exception, match=r"\[dagops\] health_"):
        HealthRules.from_settings()
