"""The docker-compose topology as plain processes on this machine: api-server, scheduler, dag-processor and a
Celery worker, the Airflow metadata DB and the dagops state DB on the local PostgreSQL (a database each, made
and dropped here), the broker on the local Redis (a Redis DB number of its own), results on PostgreSQL.

push -> signed webhook -> dagops_sync's sync task runs on the Celery worker -> release published ->
a DAG of that release, triggered through the REST API, runs on the worker and succeeds.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.helpers.airflow import make_instance
from tests.helpers.repos import dag_source
from tests.helpers.servers import free_port, wait_for
from tests.webhooks import payloads

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]

QUEUE = "dagops_multiprocess"  # the worker serves only this queue, so a task that ran here ran on it
WORKER_NAME = "dagops-celery-worker@%h"
REDIS_DB = 11  # a Redis DB number of this test's own: flushed before and after, nothing else uses it
WEBHOOK_SECRET = "whsec-multiprocess-5d1c0e7f"
WEBHOOK_PATH = "/pluginsv2/dagops/api/v1/webhooks/github"


@pytest.fixture
def postgres_databases():
    """Two fresh PostgreSQL databases (Airflow's metadata and the dagops state), dropped afterwards."""
    base = os.environ.get("DAGOPS_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("DAGOPS_TEST_POSTGRES_URL is not set (see .ci/run): the multi-process test needs PostgreSQL")
    url = make_url(base)
    suffix = uuid.uuid4().hex[:10]
    names = {"airflow": f"dagops_mp_airflow_{suffix}", "state": f"dagops_mp_state_{suffix}"}
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in names.values():
            connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield {role: url.set(database=name).render_as_string(hide_password=False) for role, name in names.items()}
    finally:
        with admin.connect() as connection:
            for name in names.values():
                # FORCE: a process that outlived its stop() must not keep the database alive.
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


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


@pytest.fixture
def cluster(tmp_path, request, postgres_databases, redis_broker):
    airflow_db = postgres_databases["airflow"]
    extra = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
        "AIRFLOW__CELERY__BROKER_URL": redis_broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{airflow_db}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": QUEUE,
        # The worker's log server gets a port of its own: other tests may run a worker at the same time.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN": postgres_databases["state"],
        "AIRFLOW__DAGOPS__SYNC_SCHEDULE": "",  # only the webhook starts syncs: the test is deterministic
        "AIRFLOW_CONN_DAGOPS_WEBHOOK": json.dumps({"conn_type": "generic", "password": WEBHOOK_SECRET}),
    }
    instance = make_instance(tmp_path / "airflow", extra)
    try:
        instance.start(
            "api-server",
            "scheduler",
            "dag-processor",
            f"celery worker --queues {QUEUE} --celery-hostname {WORKER_NAME}",
        )
        yield instance
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(instance.logs())
    except BaseException:
        print(instance.logs())
        raise
    finally:
        instance.stop()


def _deliver_push(cluster, remote, sha: str) -> requests.Response:
    body = payloads.encode(payloads.push("github", remote.url, sha))
    headers = payloads.headers("github", "push", body, secret=WEBHOOK_SECRET)
    return requests.post(f"{cluster.url}{WEBHOOK_PATH}", data=body, headers=headers, timeout=30)


def _finished(cluster, dag_id: str, run_id: str) -> str | None:
    state = cluster.api("GET", f"dags/{dag_id}/dagRuns/{run_id}").json()["state"]
    return state if state in ("success", "failed") else None


def _task_instances(cluster, dag_id: str, run_id: str) -> dict[str, dict]:
    response = cluster.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    return {ti["task_id"]: ti for ti in response.json()["task_instances"]}


def _worker_log(cluster) -> str:
    return (cluster.home / "process-logs" / "celery-worker.log").read_text(errors="replace")


def _worker_ready(cluster) -> bool:
    # Celery says "<node name> ready." once it consumes from the broker (its URL is masked in the log).
    return any(WORKER_NAME.split("@")[0] in line and " ready." in line for line in _worker_log(cluster).splitlines())


def _ran_on_worker(cluster, dag_id: str, run_id: str, task_id: str) -> bool:
    """The worker logs every workload it executes, naming the task instance."""
    lines = [line for line in _worker_log(cluster).splitlines() if "Executing workload in Celery" in line]
    return any(f"dag_id='{dag_id}'" in line and run_id in line and f"task_id='{task_id}'" in line for line in lines)


def _state_db_release(state_db: str, namespace: str, sha: str) -> tuple | None:
    engine = create_engine(state_db)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT status, path FROM dagops_release WHERE namespace = :ns AND commit_sha = :sha"),
                {"ns": namespace, "sha": sha},
            ).first()
    finally:
        engine.dispose()
    return tuple(row) if row else None


def test_push_webhook_syncs_on_the_celery_worker_and_the_published_dag_runs(cluster, git_remote, postgres_databases):
    remote = git_remote({"dags/team_hello.py": dag_source("team_hello")})
    cluster.run("dagops", "repos", "add", "team", remote.url, "--namespace", "team")
    wait_for(lambda: "dagops_sync" in cluster.dag_ids(), timeout=120, what="the dagops_sync system DAG")
    wait_for(lambda: _worker_ready(cluster), timeout=120, what="the Celery worker on the broker")

    # A developer pushes a new DAG; the Git host delivers a signed push event to the api-server.
    sha = remote.commit("add the etl DAG", {"dags/team_etl.py": dag_source("team_etl")})
    answer = _deliver_push(cluster, remote, sha)
    assert answer.status_code == 202, answer.text
    [run] = answer.json()["runs"]
    assert (run["repository"], run["commit"]) == ("team", sha)
    sync_run = run["airflow_run_id"]

    assert wait_for(lambda: _finished(cluster, "dagops_sync", sync_run), timeout=300, what="dagops_sync") == "success"
    sync_task = _task_instances(cluster, "dagops_sync", sync_run)["sync"]
    assert (sync_task["state"], sync_task["queue"]) == ("success", QUEUE)
    assert _ran_on_worker(cluster, "dagops_sync", sync_run, "sync"), _worker_log(cluster)[-4000:]

    # The release is recorded live in the PostgreSQL state DB, and the namespace link serves it.
    status, path = _state_db_release(postgres_databases["state"], "team", sha)
    assert status == "live"
    link = cluster.home / "dags" / "team"
    assert link.is_symlink() and link.resolve() == (cluster.home / "dags" / path).resolve()
    assert (link / "dags" / "team_etl.py").read_text() == dag_source("team_etl")

    # Its DAG reaches Airflow, and a run triggered through the REST API runs on the worker and succeeds.
    wait_for(lambda: "team_etl" in cluster.dag_ids(), timeout=180, what="team_etl in GET /api/v2/dags")
    assert cluster.api("PATCH", "dags/team_etl", json={"is_paused": False}).status_code == 200
    triggered = cluster.api("POST", "dags/team_etl/dagRuns", json={"logical_date": None})
    assert triggered.status_code == 200, triggered.text
    etl_run = triggered.json()["dag_run_id"]
    assert wait_for(lambda: _finished(cluster, "team_etl", etl_run), timeout=180, what="team_etl") == "success"
    hello = _task_instances(cluster, "team_etl", etl_run)["hello"]
    assert (hello["state"], hello["queue"]) == ("success", QUEUE)
    assert _ran_on_worker(cluster, "team_etl", etl_run, "hello"), _worker_log(cluster)[-4000:]
