"""Exactly one alert per change of a repository's health, through a real sync history and a local fake endpoint:
ok → failing (three failed syncs, one alert) → still failing (none) → recovered (one)."""

from __future__ import annotations

import threading

from airflow_dagops.alerts import service as alerts
from airflow_dagops.alerts import state
from airflow_dagops.repositories.registry import add_repository, update_repository
from airflow_dagops.statuses import AlertEvent, HealthState
from airflow_dagops.sync.sync import sync_repository
from tests.alerts.conftest import WEBHOOK_ALERTS, alerts_received


def _events(receiver) -> list[str]:
    return [alert["event"] for alert in alerts_received(receiver)]


def test_one_alert_when_failing_starts_none_while_it_lasts_one_on_recovery(dagops_env, git_remote, receiver, tmp_path):
    remote = git_remote()
    add_repository("team", remote.url, alerts=WEBHOOK_ALERTS)
    assert sync_repository("team").ok
    assert _events(receiver) == []

    update_repository("team", url=f"file://{tmp_path / 'gone'}", verify=False)  # the remote disappears
    outcomes = [sync_repository("team") for _ in range(2)]
    assert not any(o.ok for o in outcomes)
    assert _events(receiver) == []  # two failures: below [dagops] health_failing_after (3)

    assert not sync_repository("team").ok  # the third: failing
    assert _events(receiver) == ["failing"]
    failing = alerts_received(receiver)[0]
    assert failing["repository"] == "team" and "failing (unreachable)" in failing["title"]
    assert "docs/operations.md#unreachable" in failing["message"]
    assert failing["details"]["health"]["state"] == "failing"

    for _ in range(2):  # failing more: nothing new to say
        assert not sync_repository("team").ok
    assert _events(receiver) == ["failing"]

    update_repository("team", url=remote.url, verify=False)  # back
    assert sync_repository("team").ok
    assert _events(receiver) == ["failing", "recovered"]
    recovered = alerts_received(receiver)[1]
    assert recovered["title"] == "dagops: team recovered"

    # Every POST went to the connection's URL with its token, and carried a Slack-compatible text.
    calls = [call for call in receiver.calls if call.path == "/hooks/ops"]
    assert [call.headers["Authorization"] for call in calls] == ["Bearer hook-token-1234"] * 2
    assert calls[0].body["text"] == failing["message"]
    assert state.read_state(1)["last_event"] == "recovered" and state.read_state(1)["last_error"] is None


def test_a_change_seen_by_many_processes_at_once_is_announced_once(
    dagops_env, git_remote, receiver, tmp_path, monkeypatch
):
    remote = git_remote()
    add_repository("team", remote.url, alerts=WEBHOOK_ALERTS)
    assert sync_repository("team").ok
    update_repository("team", url=f"file://{tmp_path / 'gone'}", verify=False)
    for _ in range(3):
        sync_repository("team")
    assert _events(receiver) == ["failing"]
    update_repository("team", url=remote.url, verify=False)
    # Recovery recorded without the sync's own hook judging it, then judged by eight processes at once (threads
    # here, each with its own transactions): one wins the compare-and-set.
    assert state.read_state(1)["health"] == HealthState.FAILING
    monkeypatch.setattr(alerts, "after_sync", lambda *_run: None)
    assert sync_repository("team").ok
    results: list[AlertEvent | None] = []
    barrier = threading.Barrier(8)

    def judge():
        barrier.wait()
        results.append(alerts.check_health("team"))

    threads = [threading.Thread(target=judge) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(AlertEvent.RECOVERED) == 1 and results.count(None) == 7
    assert _events(receiver) == ["failing", "recovered"]


def test_a_paused_repository_is_silenced(dagops_env, git_remote, receiver, tmp_path):
    """Pinning a failing repository (the runbook's way to stop alerts) pauses it: no recovery is announced later."""
    from airflow_dagops.releases.rollback import pin, unpin

    remote = git_remote()
    add_repository("team", remote.url, alerts=WEBHOOK_ALERTS)
    assert sync_repository("team").ok
    update_repository("team", url=f"file://{tmp_path / 'gone'}", verify=False)
    for _ in range(3):
        sync_repository("team")
    pin("team", actor="ops")
    assert alerts.check_health("team") is None
    assert state.read_state(1)["health"] == "paused"
    unpin("team", actor="ops")
    update_repository("team", url=remote.url, verify=False)
    assert sync_repository("team").ok
    assert _events(receiver) == ["failing"]


def test_health_is_judged_only_for_alerts_that_hear_of_it(dagops_env, git_remote, receiver, tmp_path):
    """A repository without failing/recovered listeners is not judged after its syncs (nobody would be told); once
    such alerts are set, the next sync's judgement announces the failure that is going on."""
    remote = git_remote()
    add_repository("team", remote.url)
    assert sync_repository("team").ok
    update_repository("team", url=f"file://{tmp_path / 'gone'}", verify=False)
    for _ in range(3):
        assert not sync_repository("team").ok
    assert state.read_state(1) is None  # never judged: no alert state was kept

    update_repository("team", alerts={"events": ["validation_failed"], **WEBHOOK_ALERTS})
    assert not sync_repository("team").ok
    assert state.read_state(1) is None and _events(receiver) == []  # its alerts hear of no change of health

    update_repository("team", alerts=WEBHOOK_ALERTS)
    assert not sync_repository("team").ok
    assert _events(receiver) == ["failing"]
    assert state.read_state(1)["health"] == HealthState.FAILING
