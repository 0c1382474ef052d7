"""Options every face offers now: `isolated_env` through the REST API and `dagops repos add/update`, shown by
both; and the CLI's `repos list/show` report the sync status the API reports (reconciled with Airflow)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.exc import OperationalError

from airflow_dagops.airflow import bridge as airflow_bridge
from airflow_dagops.repositories.info import get_repository

SIMPLE_ONLY = pytest.mark.parametrize("web", ["simple"], indirect=True)  # the CLI does not depend on it


def _shown(cli, name: str) -> dict:
    result = cli("repos", "show", name, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_isolated_env_through_the_api_create_and_update(web, cli, git_remote):
    created = web.api("POST", "repositories", json={"name": "team", "url": git_remote().url, "isolated_env": True})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["isolated_env"] is True
    assert web.api("GET", "repositories/team", as_="reader").get_json()["isolated_env"] is True
    assert _shown(cli, "team")["isolated_env"] is True

    off = web.api("PATCH", "repositories/team", json={"isolated_env": False})
    assert off.status_code == 200 and off.get_json()["isolated_env"] is False, off.get_json()
    on = web.api("PATCH", "repositories/team", json={"isolated_env": True, "verify": False})
    assert on.status_code == 200 and on.get_json()["isolated_env"] is True, on.get_json()
    assert get_repository("team").isolated_env is True


def test_only_an_admin_turns_isolated_env_on_through_the_api(web, git_remote):
    assert web.api("POST", "repositories", json={"name": "team", "url": git_remote().url}).status_code == 201
    refused = web.api("PATCH", "repositories/team", as_="editor", json={"isolated_env": True})
    assert refused.status_code == 403, refused.get_json()
    assert (
        refused.get_json()["error"]["code"] == "forbidden" and "isolated_env" in refused.get_json()["error"]["message"]
    )
    assert get_repository("team").isolated_env is False  # nothing changed
    allowed = web.api("PATCH", "repositories/team", as_="editor", json={"isolated_env": False, "priority": 5})
    assert allowed.status_code == 200, allowed.get_json()  # turning it off, or other options, needs no more
    assert web.api("PATCH", "repositories/team", json={"isolated_env": True}).status_code == 200  # an admin
    same = web.api("PATCH", "repositories/team", as_="editor", json={"isolated_env": True, "priority": 6})
    assert same.status_code == 200, same.get_json()  # re-sending the value it has chooses nothing new


def test_openapi_body_refuses_a_non_boolean_isolated_env(web, git_remote):
    response = web.api("POST", "repositories", json={"name": "team", "url": git_remote().url, "isolated_env": "yes"})
    assert response.status_code == 422
    assert "isolated_env" in [entry["field"] for entry in response.get_json()["error"]["details"]["errors"]]


@SIMPLE_ONLY
def test_isolated_env_through_the_cli_add_and_update(web, cli, git_remote):
    added = cli("repos", "add", "team", git_remote().url, "--isolated-env", "--priority", "7")
    assert added.exit_code == 0, added.output
    assert get_repository("team").isolated_env is True
    assert web.api("GET", "repositories/team").get_json()["isolated_env"] is True

    changed = cli("repos", "update", "team", "--no-isolated-env", "--on-conflict", "block")
    assert changed.exit_code == 0, changed.output
    assert "isolated_env False" in changed.stdout and "on_conflict block" in changed.stdout
    shown = web.api("GET", "repositories/team").get_json()
    assert (shown["isolated_env"], shown["on_conflict"], shown["priority"]) == (False, "block", 7)  # the rest stays


def test_cli_update_changes_mappings_and_clears_them(cli, git_remote):
    assert cli("repos", "add", "team", git_remote().url).exit_code == 0
    changed = cli(
        "repos", "update", "team",
        "--access-control", "data-eng=can_read",
        "--promotion", "staging,prod:2",
        "--conn-id", "team_git",
        "--no-verify",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    info = get_repository("team")
    assert info.access_control == {"data-eng": ["can_read"]} and info.conn_id == "team_git"
    assert info.promotion == {"stages": ["staging", "prod"], "soak_runs": 2}
    cleared = cli("repos", "update", "team", "--access-control", "none", "--promotion", "none", "--conn-id", "")
    assert cleared.exit_code == 0, cleared.output
    info = get_repository("team")
    assert (info.access_control, info.promotion, info.conn_id) == (None, None, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to change"),
        (["--promotion", "staging,prod:many"], "--promotion takes STAGE,STAGE"),
        (["--priority", "-1"], "priority must be a whole number"),
        (["--namespace", "other"], "No such option"),  # fixed once registered
    ],
)
def test_cli_update_refuses_bad_input_and_changes_nothing(cli, git_remote, args, message):
    assert cli("repos", "add", "team", git_remote().url).exit_code == 0
    before = get_repository("team")
    result = cli("repos", "update", "team", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert get_repository("team") == before


@SIMPLE_ONLY
def test_cli_list_and_show_report_the_status_the_api_reports(web, cli, git_remote):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    assert cli("repos", "add", "team", git_remote().url).exit_code == 0
    queued = cli("sync", "team", "--via-airflow", "--json")
    assert queued.exit_code == 0, queued.output
    (run,) = json.loads(queued.stdout)
    assert "syncing" in cli("repos", "list").stdout  # Airflow's run is still queued: nothing to reconcile

    with create_session() as session:  # the worker died before the sync task could record anything
        session.query(DagRun).filter_by(
            dag_id="dagops_sync", run_id=run["airflow_run_id"]
        ).one().state = DagRunState.FAILED
    listed = cli("repos", "list")
    assert listed.exit_code == 0, listed.output
    assert "failed:" in listed.stdout and "crashed" in listed.stdout, listed.stdout  # 'failed: Sync crashed', wrapped
    shown = _shown(cli, "team")
    assert shown["status"] == "failed" and shown["last_sync"]["error_code"] == "unexpected"
    assert shown["sync_runs"][0]["status"] == "failed"
    api = web.api("GET", "repositories/team").get_json()
    assert (api["status"], api["status_message"]) == (shown["status"], shown["status_message"])


def test_cli_without_airflow_shows_the_stored_status(cli, git_remote, monkeypatch):
    assert cli("repos", "add", "team", git_remote().url).exit_code == 0

    def unreachable(run_ids):
        raise OperationalError("SELECT", {}, Exception("no such table: dag_run"))

    _queue_a_run("team", "manual__gone")
    monkeypatch.setattr(airflow_bridge, "sync_run_states", unreachable)
    listed = cli("repos", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)[0]["status"] == "syncing"  # stored, not reconciled
    assert "could not ask Airflow" in listed.stderr


def _queue_a_run(name: str, airflow_run_id: str) -> None:
    """A sync run as `request_sync` records it, without asking Airflow to create one."""
    from airflow_dagops.store.db import session_scope
    from airflow_dagops.store.models import SyncRun
    from airflow_dagops.store.queries import load_repository

    with session_scope() as session:
        repo = load_repository(session, name)
        session.add(SyncRun(repository_id=repo.id, trigger="manual", airflow_run_id=airflow_run_id, status="queued"))
