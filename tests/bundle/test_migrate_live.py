"""`dagops bundle migrate` against a running Airflow (api-server, scheduler, dag-processor): an installation that
chose symlinks moves to the dagops-releases bundle and back. Each way, after the restart the command asks for,
every DAG is parsed by the other bundle and by it only (the dag-processor finds no file of a namespace in the
dags-folder bundle once it belongs to the dagops-releases bundle, and none in the bundle after the way back), and
the DAGs keep their runs and their paused state; a run started afterwards runs on the new bundle."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from airflow_dagops import paths
from tests.helpers.airflow import make_instance
from tests.helpers.airflow_procs import bundle_mode_env, running
from tests.helpers.repos import dag_source
from tests.helpers.servers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

DAGS = ("mig_a", "mig_b")
FOUND = re.compile(r"Found (\d+) files for bundle ([\w-]+)")


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    home = tmp_path_factory.mktemp("migrate-live") / "airflow"
    instance = make_instance(
        home,
        {
            **bundle_mode_env(home),
            "AIRFLOW__DAGOPS__SYNC_SCHEDULE": "",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__API__WORKERS": "1",
        },
    )
    instance.run("dagops", "bundle", "migrate", "--to", "symlinks")  # an installation that chose symlinks
    with running(instance, "api-server", "scheduler", "dag-processor") as started:
        yield started


def restart_scheduler_and_dag_processor(airflow) -> None:
    """What the migration asks for: the processes that read the mode and the bundle list start again."""
    kept = []
    for process in airflow.processes:
        if "api-server" in process.args:
            kept.append(process)
            continue
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # On busy cores the dag-processor once took longer to wind down its parsing processes; a supervisor
            # (systemd, Kubernetes) kills after its grace period too. What matters here is that it starts again.
            os.killpg(process.pid, 9)
            process.wait(timeout=30)
    airflow.processes = kept
    airflow.start("scheduler", "dag-processor")


def dag(airflow, dag_id: str) -> dict:
    response = airflow.api("GET", f"dags/{dag_id}")
    return response.json() if response.ok else {}


def parsed_by(airflow, bundle: str) -> bool:
    found = [dag(airflow, dag_id) for dag_id in DAGS]
    return all(f.get("bundle_name") == bundle and f.get("is_stale") is False for f in found)


def runs(airflow, dag_id: str) -> list[dict]:
    return airflow.api("GET", f"dags/{dag_id}/dagRuns", params={"limit": 100}).json()["dag_runs"]


def run_once(airflow, dag_id: str) -> dict:
    response = airflow.api("POST", f"dags/{dag_id}/dagRuns", json={"logical_date": None})
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]

    def ended():
        run = airflow.api("GET", f"dags/{dag_id}/dagRuns/{run_id}").json()
        return run if run["state"] in ("success", "failed") else None

    run = wait_for(ended, timeout=240, what=f"run {run_id} of {dag_id} to end")
    assert run["state"] == "success", airflow.logs()
    return run


def files_found(airflow) -> dict[str, int]:
    """Per bundle, how many DAG files the running dag-processor found at its last listing."""
    log = (airflow.home / "process-logs" / "dag-processor.log").read_text(errors="replace")
    return {bundle: int(count) for count, bundle in FOUND.findall(log)}


def test_dags_move_to_the_bundle_and_back_with_their_runs_and_paused_state(airflow, git_remote):
    remote = git_remote({f"dags/{d}.py": dag_source(d) for d in DAGS}, name="migrate-live")
    airflow.run("dagops", "repos", "add", "mig-repo", remote.url, "--namespace", "mig-repo")
    airflow.run("dagops", "sync", "mig-repo")
    wait_for(lambda: parsed_by(airflow, "dags-folder"), timeout=240, what="the DAGs parsed from the dags folder")
    assert airflow.api("PATCH", "dags/mig_b", json={"is_paused": True}).ok
    first = run_once(airflow, "mig_a")
    assert first["bundle_version"] is None  # the dags-folder bundle has no versions

    # To the bundle.
    airflow.run("dagops", "bundle", "migrate", "--to", "bundle")
    restart_scheduler_and_dag_processor(airflow)
    wait_for(lambda: parsed_by(airflow, paths.RELEASES_BUNDLE), timeout=240, what="the DAGs parsed from the bundle")
    wait_for(lambda: paths.RELEASES_BUNDLE in files_found(airflow), timeout=120, what="the bundle's first listing")
    found = files_found(airflow)
    assert (found["dags-folder"], found[paths.RELEASES_BUNDLE]) == (0, 2)  # each DAG file parsed by one bundle
    assert dag(airflow, "mig_b")["is_paused"] is True and dag(airflow, "mig_a")["is_paused"] is False
    assert [r["dag_run_id"] for r in runs(airflow, "mig_a")] == [first["dag_run_id"]]  # history kept
    second = run_once(airflow, "mig_a")
    assert second["bundle_version"]  # a run of the versioned bundle
    assert airflow.api("GET", "importErrors").json()["total_entries"] == 0

    # And back to symlinks.
    airflow.run("dagops", "bundle", "migrate", "--to", "symlinks")
    restart_scheduler_and_dag_processor(airflow)
    wait_for(lambda: parsed_by(airflow, "dags-folder"), timeout=240, what="the DAGs parsed from the dags folder again")
    wait_for(lambda: paths.RELEASES_BUNDLE in files_found(airflow), timeout=120, what="the bundle's first listing")
    found = files_found(airflow)
    assert (found["dags-folder"], found[paths.RELEASES_BUNDLE]) == (2, 0)
    assert dag(airflow, "mig_b")["is_paused"] is True and dag(airflow, "mig_a")["is_paused"] is False
    assert {r["dag_run_id"] for r in runs(airflow, "mig_a")} == {first["dag_run_id"], second["dag_run_id"]}
    assert run_once(airflow, "mig_a")["bundle_version"] is None
    assert airflow.api("GET", "importErrors").json()["total_entries"] == 0
