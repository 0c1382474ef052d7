"""`publish_mode = bundle` with a Celery worker that shares no files: its own AIRFLOW_HOME, dags folder, dagops
home and bundle storage. It shares with the rest only what a worker on another machine would: PostgreSQL (Airflow's
Celery results, the dagops state DB), the broker (Redis) and the Git remote.

The control plane (api-server, scheduler, dag-processor, and `dagops sync` run by the test as the publisher) runs
on one home. A two-task DAG's first task waits on the worker; a new release goes live meanwhile; the second task
must run the release the run started on. The worker has none of the release folders, so it builds that version
from git under its own bundle storage: the DAG file the task ran from is there, and its contents are the run's
release.
"""

from __future__ import annotations

import configparser
import json
import os

import pytest

from tests.helpers.airflow import AirflowInstance, airflow_env, make_instance
from tests.helpers.airflow_procs import (
    bundle_manifest,
    bundle_mode_env,
    celery_env,
    celery_worker,
    parsed_at,
    running,
    wait_run_end,
    worker_ready,
)
from tests.helpers.servers import free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]

QUEUE = "dagops_bundle_worker"  # the only queue, served only by the worker with its own home
WORKER_NAME = "dagops-bundle-worker@%h"
DAG_ID = "bundle_worker"
REDIS_DB = 12  # its own Redis DB number for the `redis_broker` fixture (test_multiprocess_celery.py uses 11)

# The first task waits for a file named after its run; the second writes what its DAG file says, and from where it
# was loaded, into another. The flags folder is the test's window into the worker, nothing the worker reads code from.
PINNED_DAG = """from pathlib import Path
import json
import os
import time

import pendulum
from airflow.sdk import dag, task

FLAGS = Path("{flags}")


@dag(dag_id="bundle_worker", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def bundle_worker():
    @task
    def wait(run_id=None):
        (FLAGS / f"{{run_id}}.started").write_text("")
        while not (FLAGS / f"{{run_id}}.go").exists():
            time.sleep(0.2)

    @task
    def second(run_id=None):
        marker = {{"code": "{code}", "file": __file__, "airflow_home": os.environ["AIRFLOW_HOME"]}}
        (FLAGS / f"{{run_id}}.out").write_text(json.dumps(marker))

    wait() >> second()


bundle_worker()
"""


def bundle_celery_env(home, databases: dict[str, str], broker: str) -> dict[str, str]:
    return {
        **celery_env(databases, broker, QUEUE),
        **bundle_mode_env(home),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    }


@pytest.fixture
def control_plane(tmp_path, request, postgres_databases, redis_broker):
    home = tmp_path / "control" / "airflow"
    instance = make_instance(home, bundle_celery_env(home, postgres_databases, redis_broker))
    with running(instance, "api-server", "scheduler", "dag-processor", request=request) as started:
        yield started


@pytest.fixture
def worker(tmp_path, request, control_plane, postgres_databases, redis_broker):
    """A Celery worker in a home of its own: nothing under the control plane's home is named in its environment."""
    home = tmp_path / "worker" / "airflow"
    (home / "dags").mkdir(parents=True)
    env = airflow_env(
        home,
        control_plane.port,
        {
            **bundle_celery_env(home, postgres_databases, redis_broker),
            # The bundle list `dagops init` wrote for the control plane; its paths are the installed package's
            # (the system DAGs), not the control plane's home.
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": bundle_config_list(control_plane),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        },
    )
    assert not any(str(control_plane.home) in value for value in env.values()), env
    instance = AirflowInstance(home, control_plane.port, env)
    with running(instance, celery_worker(QUEUE, WORKER_NAME), request=request) as started:
        wait_for(lambda: worker_ready(started, WORKER_NAME), timeout=120, what="the Celery worker on the broker")
        yield started


def bundle_config_list(instance: AirflowInstance) -> str:
    config = configparser.ConfigParser(interpolation=None)
    config.read(instance.home / "airflow.cfg")
    value = config.get("dag_processor", "dag_bundle_config_list")
    assert str(instance.home) not in value, value
    return value


def test_a_worker_with_its_own_home_runs_the_exact_release_of_its_run(
    control_plane,
    worker,
    git_remote,
    tmp_path,
):
    flags = tmp_path / "flags"
    flags.mkdir()
    remote = git_remote({"README.md": "team\n"}, name="team")
    control_plane.run("dagops", "repos", "add", "team", remote.url, "--namespace", "team")

    def publish(code: str) -> str:
        source = PINNED_DAG.format(flags=flags, code=code)
        remote.commit(f"second task writes {code}", {"dags/bundle_worker.py": source})
        control_plane.run("dagops", "sync", "team")
        return remote.head()

    first = publish("v1")
    wait_for(lambda: parsed_at(control_plane, DAG_ID, "team", first), timeout=180, what="the DAG parsed at v1")

    triggered = control_plane.api("POST", "dags/bundle_worker/dagRuns", json={"logical_date": None})
    assert triggered.status_code == 200, triggered.text
    run_id = triggered.json()["dag_run_id"]
    wait_for(lambda: (flags / f"{run_id}.started").exists(), timeout=240, what="the first task on the worker")

    # A new release goes live while the run waits on the worker.
    second = publish("v2")
    wait_for(lambda: parsed_at(control_plane, DAG_ID, "team", second), timeout=180, what="the DAG parsed at v2")
    (flags / f"{run_id}.go").write_text("")

    run = wait_run_end(control_plane, DAG_ID, run_id, timeout=240)
    assert run["state"] == "success", control_plane.logs() + worker.logs()
    version = run["bundle_version"]
    assert bundle_manifest(control_plane, version, "team")["commit"] == first

    # The second task ran v1's code, on the worker, from the version folder it built in its own bundle storage.
    marker = json.loads((flags / f"{run_id}.out").read_text())
    assert marker["code"] == "v1"
    assert marker["airflow_home"] == str(worker.home)
    version_dir = worker.home / "bundles" / "dagops-releases" / "versions" / version
    assert marker["file"] == str(version_dir / "team" / "dags" / "bundle_worker.py")
    assert (version_dir / "team" / "dags" / "bundle_worker.py").read_text() == PINNED_DAG.format(flags=flags, code="v1")
    # Built from git (the worker's own mirror, fetched from the remote), not from release folders it never had.
    assert (worker.home / "bundles" / "dagops-releases" / "mirrors" / "team.git" / "HEAD").is_file()
    assert not (worker.home / "dagops" / "releases").exists()
    assert not (worker.home / "dagops" / "live").exists()
    assert not os.listdir(worker.home / "dags")
    tasks = control_plane.api("GET", f"dags/bundle_worker/dagRuns/{run_id}/taskInstances").json()["task_instances"]
    assert {(ti["task_id"], ti["state"], ti["queue"]) for ti in tasks} == {
        ("wait", "success", QUEUE),
        ("second", "success", QUEUE),
    }
