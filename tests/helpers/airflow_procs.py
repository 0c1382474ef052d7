"""Real Airflow processes with a configuration of their own: what the e2e tests that cannot share `real_airflow`
(tests/helpers/airflow.py) would otherwise each write again.

- `running`: start an instance's processes for a fixture; their logs are printed when the start or the test fails,
  and the processes are stopped afterwards.
- `bundle_mode_env`: `[dagops] publish_mode = bundle`, with the bundle storage under the instance's own home.
- A Celery deployment: `fresh_databases` and the fixture `postgres_databases` (new metadata and state databases),
  `redis_broker` (the module's own Redis DB number, `REDIS_DB`), `celery_env`, `celery_worker` and `worker_ready`.
- What the instance did: `dag_versions`, `bundle_manifest` (a bundle version's entry in the state DB),
  `parsed_at` and `wait_run_end`.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.helpers.airflow import AirflowInstance
from tests.helpers.servers import wait_for

FINISHED = ("success", "failed")


@contextmanager
def running(instance: AirflowInstance, *components: str, request=None) -> Iterator[AirflowInstance]:
    """`instance` with `components` started ("api-server", "celery worker --queues q", ...). With the fixture's
    `request`, the logs are printed when the test failed too (tests/conftest.py keeps each phase's report)."""
    try:
        instance.start(*components)
        yield instance
        report = getattr(request.node, "rep_call", None) if request is not None else None
        if report is not None and report.failed:
            print(instance.logs())
    except BaseException:
        print(instance.logs())
        raise
    finally:
        instance.stop()


def bundle_mode_env(home: Path) -> dict[str, str]:
    """Publish into the dagops-releases bundle (`publish_mode = bundle`, the default: not set here, so the tests
    that use this run the default), whose folders live under this home only."""
    return {"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "bundles")}


# -- a Celery deployment --------------------------------------------------------------------------------------------
@contextmanager
def fresh_databases(prefix: str, *, create: tuple[str, ...] = ("airflow", "state")) -> Iterator[dict[str, str]]:
    """URLs of two new PostgreSQL databases named after `prefix`, Airflow's metadata (`airflow`) and the dagops
    state (`state`), on DAGOPS_TEST_POSTGRES_URL's server; those in `create` are made here (a test of a script that
    makes the others itself leaves them out). Both are dropped afterwards."""
    base = os.environ.get("DAGOPS_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("DAGOPS_TEST_POSTGRES_URL is not set (see .ci/run): this test needs PostgreSQL")
    url = make_url(base)
    suffix = uuid.uuid4().hex[:10]
    names = {"airflow": f"{prefix}_airflow_{suffix}", "state": f"{prefix}_state_{suffix}"}
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for role in create:
            connection.execute(text(f"CREATE DATABASE {names[role]}"))
    try:
        yield {role: url.set(database=name).render_as_string(hide_password=False) for role, name in names.items()}
    finally:
        with admin.connect() as connection:
            for name in names.values():
                # FORCE: a process that outlived its stop() must not keep the database alive.
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def postgres_databases() -> Iterator[dict[str, str]]:
    """Fresh metadata and state databases for a multi-process deployment (`fresh_databases`)."""
    with fresh_databases("dagops_mp") as urls:
        yield urls


@pytest.fixture
def redis_broker(request) -> Iterator[str]:
    """The broker URL of the local Redis, on the test module's own DB number (`REDIS_DB`, so two such tests can run
    at once), flushed before and after."""
    import redis

    number = request.module.REDIS_DB
    client = redis.Redis(host="127.0.0.1", port=6379, db=number, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as err:
        pytest.skip(f"no Redis on 127.0.0.1:6379 ({err}): the multi-process test needs it as the Celery broker")
    client.flushdb()
    try:
        yield f"redis://127.0.0.1:6379/{number}"
    finally:
        client.flushdb()
        client.close()


def celery_env(databases: dict[str, str], broker: str, queue: str) -> dict[str, str]:
    """CeleryExecutor on `broker` with results in Airflow's PostgreSQL, every task on `queue`, the dagops state on
    PostgreSQL, and syncs started only by the test (no schedule)."""
    airflow_db = databases["airflow"]
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{airflow_db}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        "AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN": databases["state"],
        "AIRFLOW__DAGOPS__SYNC_SCHEDULE": "",
    }


def celery_worker(queue: str, name: str) -> str:
    """The component that runs a Celery worker serving only `queue`, under the node name `name` (`x@%h`)."""
    return f"celery worker --queues {queue} --celery-hostname {name}"


def worker_log(instance: AirflowInstance) -> str:
    return (instance.home / "process-logs" / "celery-worker.log").read_text(errors="replace")


def worker_ready(instance: AirflowInstance, name: str) -> bool:
    """Celery says "<node name> ready." once it consumes from the broker (its URL is masked in the log)."""
    return any(name.split("@")[0] in line and " ready." in line for line in worker_log(instance).splitlines())


# -- what the instance did ------------------------------------------------------------------------------------------
def state_db_url(instance: AirflowInstance) -> str:
    """The instance's dagops state DB: its `[dagops] sql_alchemy_conn`, else the SQLite file in its dagops home."""
    default = f"sqlite:///{Path(instance.env['AIRFLOW__DAGOPS__DAGOPS_HOME']) / 'dagops.db'}"
    return instance.env.get("AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN") or default


def bundle_manifest(instance: AirflowInstance, version: str | None, namespace: str) -> dict:
    """A namespace's entry (commit, release, ...) in a dagops-releases bundle version, from the state DB."""
    engine = create_engine(state_db_url(instance))
    try:
        with engine.connect() as connection:
            raw = connection.scalar(
                text("SELECT manifest FROM dagops_bundle_version WHERE version = :v"), {"v": version}
            )
    finally:
        engine.dispose()
    manifest = json.loads(raw) if isinstance(raw, str) else raw or {}
    return manifest.get("namespaces", {}).get(namespace, {})


def dag_versions(instance: AirflowInstance, dag_id: str) -> list[dict]:
    response = instance.api("GET", f"dags/{dag_id}/dagVersions")
    return response.json().get("dag_versions", []) if response.ok else []


def parsed_at(instance: AirflowInstance, dag_id: str, namespace: str, commit: str) -> bool:
    """Whether the dag-processor has parsed `dag_id` at a bundle version holding `commit` of `namespace`."""
    versions = dag_versions(instance, dag_id)
    return any(bundle_manifest(instance, v["bundle_version"], namespace).get("commit") == commit for v in versions)


def wait_run_end(instance: AirflowInstance, dag_id: str, run_id: str, *, timeout: float = 180) -> dict:
    """The DAG run as Airflow's API describes it, once it has succeeded or failed."""

    def ended() -> dict | None:
        run = instance.api("GET", f"dags/{dag_id}/dagRuns/{run_id}").json()
        return run if run["state"] in FINISHED else None

    return wait_for(ended, timeout=timeout, what=f"{dag_id} run {run_id} to end")
