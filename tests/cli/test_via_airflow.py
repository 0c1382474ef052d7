"""`dagops sync NAME --via-airflow` queues a real dagops_sync run in Airflow (the session's metadata DB)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from airflow_dagops.cli.main import app
from airflow_dagops.sync.runs import get_sync_run
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source
from tests.helpers.web import airflow_runs_of_sync_dag


@pytest.fixture
def cli(flask_app, dagops_env):  # flask_app: the Airflow DB with dagops_sync serialized
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


def test_sync_via_airflow_queues_a_run_and_the_task_finishes_it(cli, git_remote):
    remote = git_remote({"dags/a.py": dag_source("a")})
    assert cli("repos", "add", "team", remote.url).exit_code == 0
    result = cli("sync", "team", "--via-airflow", "--json")
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)
    assert run["status"] == "queued" and run["trigger"] == "cli"
    airflow_run = next(r for r in airflow_runs_of_sync_dag() if r["run_id"] == run["airflow_run_id"])
    assert airflow_run["conf"]["repository"] == "team" and airflow_run["conf"]["trigger"] == "cli"

    busy = cli("sync", "team", "--via-airflow")
    assert busy.exit_code == 1 and "already queued" in busy.stderr

    sync_repository("team", trigger="cli", airflow_run_id=run["airflow_run_id"])  # what the task does
    assert get_sync_run(run["id"])["status"] == "success"
