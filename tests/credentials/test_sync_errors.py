"""The sync itself (not only `credentials test`) names ssh failures correctly: git's generic trailer
("Could not read from remote repository...") must not hide ssh's reason printed before it."""

from __future__ import annotations

from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.runs import get_sync_run
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.servers import new_key_pair


def _failed_sync(url: str, conn_id: str) -> dict:
    add_repository("team", url, conn_id=conn_id, verify=False)
    outcome = sync_repository("team", trigger="manual")
    assert outcome.status == "failed", outcome
    return get_sync_run(outcome.sync_run_id)


def test_an_unknown_deploy_key_is_invalid_credentials(ssh, env_conn):
    run = _failed_sync(ssh.url, env_conn(extra=ssh.extra(new_key_pair("stranger"))))
    assert run["error_code"] == "authentication_failed", run
    assert run["status_message"] == "Invalid credentials"
    assert "Permission denied" in run["error"] and "not a git repository" not in run["error"]


def test_a_wrong_host_key_is_invalid_credentials_and_says_known_hosts(ssh, env_conn):
    run = _failed_sync(ssh.url, env_conn(extra=ssh.extra(known_hosts_file=str(ssh.wrong_known_hosts))))
    assert run["error_code"] == "authentication_failed" and "known_hosts" in run["error"], run


def test_a_good_key_syncs(ssh, env_conn):
    add_repository("team", ssh.url, conn_id=env_conn(extra=ssh.extra()), verify=False)
    assert sync_repository("team", trigger="manual").status == "published"
