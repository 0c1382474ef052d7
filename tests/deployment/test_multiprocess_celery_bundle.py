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
from sqlalchemy import create_engine, text

from tests.deployment.test_multiprocess_celery import postgres_databases  # noqa: F401 - a fixture
from tests.helpers.airflow import AirflowInstance, airflow_env, make_instance
from tests.helpers.servers import free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]

QUEUE = "dagops_bundle_worker"  # the only queue, served only by the worker with its own home
WORKER_NAME = "dagops-bundle-worker@%h"
REDIS_DB = 12  # its own Redis DB number (test_multiprocess_celery.py uses 11): flushed before and after

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


@pytest.fixture
def redis_broker():
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as err:
        pytest.skip(f"no Redis on 127.0.0.1:6379 ({err}): the multi-process test needs it as the Celery broker")
    client.flushdb()
    try:
        yield f"redis://127.0.0.1:6379/{REDIS_DB}"
    finally:
        client.flushdb()
        client.close()


def celery_env(databases: dict[str, str], broker: str) -> dict[str, str]:
    airflow_db = databases["airflow"]
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{airflow_db}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": QUEUE,
        "AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN": databases["state"],
        "AIRFLOW__DAGOPS__PUBLISH_MODE": "bundle",
        "AIRFLOW__DAGOPS__SYNC_SCHEDULE": "",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    }


@pytest.fixture
def control_plane(tmp_path, postgres_databases, redis_broker):  # noqa: F811 - the imported fixture
    home = tmp_path / "control" / "airflow"
    extra = {
        **celery_env(postgres_databases, redis_broker),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "bundles"),
    }
    instance = make_instance(home, extra)
    try:
        instance.start("api-server", "scheduler", "dag-processor")
        yield instance
    except BaseException:
        print(instance.logs())
        raise
    finally:
        instance.stop()


@pytest.fixture
def worker(tmp_path, control_plane, postgres_databases, redis_broker):  # noqa: F811 - the imported fixture
    """A Celery worker in a home of its own: nothing under the control plane's home is named in its environment."""
    home = tmp_path / "worker" / "airflow"
    (home / "dags").mkdir(parents=True)
    env = airflow_env(
        home,
        control_plane.port,
        {
            **celery_env(postgres_databases, redis_broker),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "bundles"),
            # The bundle list `dagops init` wrote for the control plane; its paths are the installed package's
            # (the system DAGs), not the control plane's home.
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": bundle_config_list(control_plane),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        },
    )
    assert not any(str(control_plane.home) in value for value in env.values()), env
    instance = AirflowInstance(home, control_plane.port, env)
    try:
        instance.start(f"celery worker --queues {QUEUE} --celery-hostname {WORKER_NAME}")
        wait_for(lambda: worker_ready(instance), timeout=120, what="the Celery worker on the broker")
        yield instance
    except BaseException:
        print(instance.logs())
        raise
    finally:
        instance.stop()


def bundle_config_list(instance: AirflowInstance) -> str:
    config = configparser.ConfigParser(interpolation=None)
    config.read(instance.home / "airflow.cfg")
    value = config.get("dag_processor", "dag_bundle_config_list")
    assert str(instance.home) not in value, value
    return value


def worker_ready(worker: AirflowInstance) -> bool:
    log = (worker.home / "process-logs" / "celery-worker.log").read_text(errors="replace")
    return any(WORKER_NAME.split("@")[0] in line and " ready." in line for line in log.splitlines())


def manifest_of(state_db: str, version: str | None) -> dict:
    """The namespace's entry of a bundle version, from the dagops state DB (PostgreSQL)."""
    engine = create_engine(state_db)
    try:
        with engine.connect() as connection:
            raw = connection.scalar(
                text("SELECT manifest FROM dagops_bundle_version WHERE version = :v"), {"v": version}
            )
    finally:
        engine.dispose()
    manifest = json.loads(raw) if isinstance(raw, str) else raw or {}
    return manifest.get("namespaces", {}).get("team", {})


def parsed_at(cluster: AirflowInstance, state_db: str, commit: str) -> bool:
    response = cluster.api("GET", "dags/bundle_worker/dagVersions")
    versions = response.json().get("dag_versions", []) if response.ok else []
    return any(manifest_of(state_db, v["bundle_version"]).get("commit") == commit for v in versions)


def test_a_worker_with_its_own_home_runs_the_exact_release_of_its_run(
    control_plane,
    worker,
    postgres_databases,  # noqa: F811 - the imported fixture
    git_remote,
    tmp_path,
):
    state_db = postgres_databases["state"]
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
    wait_for(lambda: parsed_at(control_plane, state_db, first), timeout=180, what="the DAG parsed at v1")

    triggered = control_plane.api("POST", "dags/bundle_worker/dagRuns", json={"logical_date": None})
    assert triggered.status_code == 200, triggered.text
    run_id = triggered.json()["dag_run_id"]
    wait_for(lambda: (flags / f"{run_id}.started").exists(), timeout=240, what="the first task on the worker")

    # A new release goes live while the run waits on the worker.
    second = publish("v2")
    wait_for(lambda: parsed_at(control_plane, state_db, second), timeout=180, what="the DAG parsed at v2")
    (flags / f"{run_id}.go").write_text("")

    def ended():
        run = control_plane.api("GET", f"dags/bundle_worker/dagRuns/{run_id}").json()
        return run if run["state"] in ("success", "failed") else None

    run = wait_for(ended, timeout=240, what=f"run {run_id} to end")
    assert run["state"] == "success", control_plane.logs() + worker.logs()
    version = run["bundle_version"]
    assert manifest_of(state_db, version)["commit"] == first

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
