"""A pushed commit that fails validation: one `validation_failed` alert naming its author, files and first errors,
and a red `dagops/validate` commit status on the Git host (a local fake of its API, as the pull-request checks'
tests use), once per commit."""

from __future__ import annotations

import pytest

from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.alerts.conftest import WEBHOOK_ALERTS, alerts_received, env_connection
from tests.helpers.repos import dag_source
from tests.helpers.servers import start_fake_api, start_git_server

TOKEN = "ghp_fAkEt0kEn5ecr3tValue000111222333"
BASE_URL = "https://airflow.example.com"


@pytest.fixture
def git_host(tmp_path):
    api = start_fake_api()
    served = start_git_server(tmp_path / "served")
    yield api, served
    api.server.shutdown()
    served.server.shutdown()


def test_a_pushed_commit_that_fails_validation_is_announced_once_with_a_red_status(
    dagops_env, git_remote, git_host, receiver, monkeypatch
):
    api, served = git_host
    monkeypatch.setenv("AIRFLOW__DAGOPS__ALLOWED_PROTOCOLS", "https:http:ssh:git:file")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    env_connection(
        monkeypatch, "team_git", conn_type="git", password=TOKEN, extra={"api_url": api.url, "provider": "github"}
    )
    remote = git_remote({"dags/a.py": dag_source("a")})
    served.publish(remote.path, "acme/dags.git", "main")
    add_repository("team", served.url("acme/dags.git"), conn_id="team_git", alerts=WEBHOOK_ALERTS)
    assert sync_repository("team").ok
    assert api.calls == []  # a commit that passes gets no status from a sync

    bad = remote.commit("add b", {"dags/b.py": "def oops(:  # an Airflow DAG\n"})
    served.publish(remote.path, "acme/dags.git", "main")
    assert not sync_repository("team").ok

    (status,) = api.calls
    assert status.path == f"/repos/acme/dags/statuses/{bad}"
    assert status.headers["Authorization"] == f"Bearer {TOKEN}"
    assert status.body == {
        "state": "failure",
        "context": "dagops/validate",
        "description": "1 error in 1 file",
        "target_url": f"{BASE_URL}/pluginsv2/dagops/repositories/team",
    }
    (alert,) = alerts_received(receiver)
    assert alert["event"] == "validation_failed"
    assert alert["details"]["commit"] == bad and alert["details"]["files"] == ["dags/b.py"]
    assert "Dana Author" in alert["details"]["author"]
    assert alert["details"]["errors"] and alert["details"]["errors"][0].startswith("dags/b.py:1 ")
    assert "Dana Author" in alert["message"] and "dags/b.py" in alert["message"]
    assert TOKEN not in str(receiver.calls)

    # The same commit again (a forced sync): nothing new to say, nothing posted twice.
    assert not sync_repository("team", force=True).ok
    assert len(api.calls) == 1 and len(alerts_received(receiver)) == 1


def test_without_alerts_a_failed_commit_still_gets_its_red_status(dagops_env, git_remote, git_host, monkeypatch):
    api, served = git_host
    monkeypatch.setenv("AIRFLOW__DAGOPS__ALLOWED_PROTOCOLS", "https:http:ssh:git:file")
    env_connection(
        monkeypatch, "team_git", conn_type="git", password=TOKEN, extra={"api_url": api.url, "provider": "gitlab"}
    )
    remote = git_remote({"dags/a.py": "def oops(:  # an Airflow DAG\n"})
    served.publish(remote.path, "acme/dags.git", "main")
    add_repository("team", served.url("acme/dags.git"), conn_id="team_git")
    assert not sync_repository("team").ok
    (status,) = api.calls
    assert status.path == f"/projects/acme%2Fdags/statuses/{remote.head()}"
    assert status.body["state"] == "failed" and status.body["name"] == "dagops/validate"
