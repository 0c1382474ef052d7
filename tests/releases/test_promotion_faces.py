"""The faces of promotion: `dagops promote / promotion`, the dagops_promote system DAG, and the REST routes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from airflow_dagops.cli.main import app
from airflow_dagops.releases import promotion
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository


def _cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_cli_status_promote_and_a_blocked_promotion(dagops_env, staged_repo, runs):
    _remote, outcome = staged_repo
    shown = _cli("promotion", "team")
    assert shown.exit_code == 0, shown.output
    assert "stages staging → prod, soak_runs 2" in shown.stdout
    assert "team--staging" in shown.stdout and "soaking in staging: 0 of 2" in shown.stdout

    runs.add("a__staging", "failed", run_id="manual__boom")
    promotion.check(lambda: runs)
    refused = _cli("promote", "team")
    assert refused.exit_code == 1
    assert "run manual__boom of a__staging failed" in refused.stderr and "--force" in refused.stderr

    forced = _cli("promote", "team", "--force", "--json")
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["status"] == "promoted"
    data = json.loads(_cli("promotion", "team", "--json").stdout)
    assert data["current"] is None and data["stages"][1]["release_id"] == outcome.release_id


def test_cli_on_a_repository_without_stages(dagops_env, git_remote):
    add_repository("plain", git_remote().url)
    assert "no promotion stages" in _cli("promotion", "plain").stdout
    refused = _cli("promote", "plain")
    assert refused.exit_code == 1 and "has no promotion stages" in refused.stderr


def test_the_dagops_promote_system_dag_parses(dagops_env, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from airflow_dagops import paths

    monkeypatch.setenv("AIRFLOW__DAGOPS__PROMOTION_CHECK_INTERVAL", "300")
    bag = DagBag(dag_folder=str(paths.meta_dags_dir() / "dagops_promote.py"))
    assert bag.import_errors == {}
    dag = bag.dags["dagops_promote"]
    assert dag.schedule == timedelta(seconds=300)  # every promotion_check_interval seconds
    assert dag.catchup is False and dag.max_active_runs == 1 and set(dag.task_dict) == {"check_or_promote"}


@pytest.fixture
def web_staged(web, git_remote, structure_on):  # noqa: F811 - the fixture imported above
    remote = git_remote({"dags/a.py": "from airflow.sdk import DAG\nDAG('a', schedule=None)\n"})
    created = web.api(
        "POST",
        "repositories",
        json={"name": "team", "url": remote.url, "promotion": {"stages": ["staging", "prod"], "soak_runs": 1}},
    )
    assert created.status_code == 201, created.get_json()
    return web, sync_repository("team")


def test_rest_promotion_status_and_promote(web_staged):
    client, outcome = web_staged
    status = client.api("GET", "repositories/team/promotion", as_="reader")
    assert status.status_code == 200
    assert status.get_json()["current"]["status"] == "soaking"
    assert client.api("POST", "repositories/team/promote", as_="reader", json={}).status_code == 403
    assert client.api("POST", "repositories/team/promote", json={"force": "yes"}).status_code == 422
    promoted = client.api("POST", "repositories/team/promote", json={})
    assert promoted.status_code == 200, promoted.get_json()
    assert promoted.get_json()["status"] == "promoted"
    assert promoted.get_json()["detail"]["promoted_by"] == "admin"
    assert get_repository("team").live_release_id == outcome.release_id
    again = client.api("POST", "repositories/team/promote", json={})
    assert again.status_code == 409 and "waiting for promotion" in again.get_json()["error"]["message"]
    assert client.api("GET", "repositories/nope/promotion").status_code == 404
