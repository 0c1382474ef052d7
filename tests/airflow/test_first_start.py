"""What a first start needs from `dagops init` and the system DAGs (issue 19): the API connection created for a local
SimpleAuthManager (or explained), no needless "restart the dag-processor", and tasks that skip with a reason, retry
what may pass, and fail at once on refusals."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from airflow_dagops import paths
from airflow_dagops.airflow.rest_client import AirflowApiRunSource
from airflow_dagops.airflow.task_errors import DEFAULT_ARGS, task_error
from airflow_dagops.errors import (
    AirflowApiUnavailable,
    ConnectionMissing,
    LockBusy,
    NotFound,
    StateDBUnavailable,
    ValidationFailed,
)
from tests.helpers.airflow import BIN, migrate_metadata_db
from tests.helpers.web import SIMPLE


def _run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def fresh_airflow(dagops_env, tmp_path) -> dict[str, str]:
    """A new Airflow home with its metadata DB and no airflow.cfg of dagops' making, as before a first `make run`."""
    env = {k: v for k, v in dagops_env.env().items() if k != "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"}
    env.update({"AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__API__PORT": "18080"})
    # Airflow's default auth manager, as a first `make run` has, whatever an earlier test of this worker chose.
    env["AIRFLOW__CORE__AUTH_MANAGER"] = SIMPLE
    migrate_metadata_db(env, lambda *args: _run(env, *args))
    return env


def test_init_creates_the_api_connection_for_simple_auth_managers_least_privileged_user(fresh_airflow):
    env = {**fresh_airflow, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,watcher:viewer"}
    home = Path(env["AIRFLOW_HOME"])
    (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": "a", "watcher": "w"}))
    said = _run(env, str(BIN / "dagops"), "init")
    assert "created connection 'dagops_airflow_api'" in said and "'watcher'" in said
    # No dag-processor runs yet (as in `make run`, which runs init first): nothing to restart.
    assert "the dag-processor loads it when it starts" in said and "restart" not in said
    connection = json.loads(_run(env, str(BIN / "airflow"), "connections", "get", "dagops_airflow_api", "-o", "json"))
    row = connection[0] if isinstance(connection, list) else connection
    assert (row["conn_type"], row["host"], row["login"]) == ("http", "http://localhost:18080", "watcher")
    assert row["password"] == "w"  # what Airflow's own login checks against; kept in the Connection only
    assert "is set (metadata db)" in _run(env, str(BIN / "dagops"), "init")  # a second init leaves it alone


def test_init_explains_the_connection_when_it_cannot_know_a_login(fresh_airflow):
    said = _run(fresh_airflow, str(BIN / "dagops"), "init")  # SimpleAuthManager, but no password file yet
    assert "connection 'dagops_airflow_api' does not exist" in said
    assert "airflow connections add dagops_airflow_api --conn-type http" in said
    listed = _run(fresh_airflow, str(BIN / "airflow"), "connections", "list", "-o", "json")
    assert "dagops_airflow_api" not in listed


def test_a_missing_api_connection_skips_the_task_and_says_how_to_create_it(dagops_env):
    with pytest.raises(ConnectionMissing) as missing:
        AirflowApiRunSource.from_connection("dagops_airflow_api")
    skip = task_error(missing.value)
    assert isinstance(skip, AirflowSkipException)
    assert "'dagops_airflow_api'" in str(skip) and "airflow connections add dagops_airflow_api" in str(skip)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (AirflowApiUnavailable("api down"), "retry"),
        (StateDBUnavailable("db restarting"), "retry"),
        (LockBusy("another sync"), "retry"),
        (ValidationFailed("syntax error"), "fail"),
        (NotFound("no such version"), "fail"),
    ],
)
def test_dagops_errors_become_retries_or_immediate_failures(error, outcome):
    raised = task_error(error)
    assert isinstance(raised, AirflowException) and not isinstance(raised, AirflowSkipException)
    assert isinstance(raised, AirflowFailException) == (outcome == "fail")


def test_every_system_dag_retries_its_tasks(dagops_env):
    """A worker that cannot reach the execution API yet (or is killed) fails its try before dagops runs: the
    try is repeated instead of failing the run."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(paths.meta_dags_dir()))
    assert bag.import_errors == {} and {"dagops_sync", "dagops_events", "dagops_marketplace_check"} <= set(bag.dags)
    for dag in bag.dags.values():
        for task in dag.tasks:
            assert (task.retries, task.retry_delay) == (DEFAULT_ARGS["retries"], DEFAULT_ARGS["retry_delay"]), task
