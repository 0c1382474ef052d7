"""The docker-compose topology as plain processes on this machine: api-server, scheduler, dag-processor and a
Celery worker, the Airflow metadata DB and the dagops state DB on the local PostgreSQL (a database each, made
and dropped here), the broker on the local Redis (a Redis DB number of its own), results on PostgreSQL.

push -> signed webhook -> dagops_sync's sync task runs on the Celery worker -> release published ->
a DAG of that release, triggered through the REST API, runs on the worker and succeeds.
"""

from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.helpers.airflow import make_instance
from tests.helpers.airflow_procs import celery_env, celery_worker, running, wait_run_end, worker_log, worker_ready
from tests.helpers.repos import dag_source
from tests.helpers.servers import free_port, wait_for
from tests.webhooks import payloads

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]

QUEUE = "dagops_multiprocess"  # the worker serves only this queue, so a task that ran here ran on it
WORKER_NAME = "dagops-celery-worker@%h"
REDIS_DB = 11  # a Redis DB number of this test's own (the `redis_broker` fixture): nothing else uses it
WEBHOOK_SECRET = "whsec-multiprocess-5d1c0e7f"
WEBHOOK_PATH = "/pluginsv2/dagops/api/v1/webhooks/github"


@pytest.fixture
def cluster(tmp_path, request, postgres_databases, redis_broker):
    extra = {
        **celery_env(postgres_databases, redis_broker, QUEUE),
        # The worker's log server gets a port of its own: other tests may run a worker at the same time.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        # Only the webhook starts syncs (celery_env sets no schedule): the test is deterministic.
        "AIRFLOW_CONN_DAGOPS_WEBHOOK": json.dumps({"conn_type": "generic", "password": WEBHOOK_SECRET}),
    }
    components = ("api-server", "scheduler", "dag-processor", celery_worker(QUEUE, WORKER_NAME))
    with running(make_instance(tmp_path / "airflow", extra), *components, request=request) as instance:
        yield instance


def _deliver_push(cluster, remote, sha: str) -> requests.Response:
    body = payloads.encode(payloads.push("github", remote.url, sha))
    headers = payloads.headers("github", "push", body, secret=WEBHOOK_SECRET)
    return requests.post(f"{cluster.url}{WEBHOOK_PATH}", data=body, headers=headers, timeout=30)


def _task_instances(cluster, dag_id: str, run_id: str) -> dict[str, dict]:
    response = cluster.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    return {ti["task_id"]: ti for ti in response.json()["task_instances"]}


def _ran_on_worker(cluster, dag_id: str, run_id: str, task_id: str) -> bool:
    """The worker logs every workload it executes, naming the task instance."""
    lines = [line for line in worker_log(cluster).splitlines() if "Executing workload in Celery" in line]
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
    wait_for(lambda: worker_ready(cluster, WORKER_NAME), timeout=120, what="the Celery worker on the broker")

    # A developer pushes a new DAG; the Git host delivers a signed push event to the api-server.
    sha = remote.commit("add the etl DAG", {"dags/team_etl.py": dag_source("team_etl")})
    answer = _deliver_push(cluster, remote, sha)
    assert answer.status_code == 202, answer.text
    [run] = answer.json()["runs"]
    assert (run["repository"], run["commit"]) == ("team", sha)
    sync_run = run["airflow_run_id"]

    assert wait_run_end(cluster, "dagops_sync", sync_run, timeout=300)["state"] == "success"
    # A run that names its repository (a webhook's) syncs it in its first task, `sense`; `sync` maps nothing.
    tasks = _task_instances(cluster, "dagops_sync", sync_run)
    assert (tasks["sense"]["state"], tasks["sense"]["queue"]) == ("success", QUEUE)
    assert tasks["sync"]["state"] == "skipped"
    assert _ran_on_worker(cluster, "dagops_sync", sync_run, "sense"), worker_log(cluster)[-4000:]

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
    assert wait_run_end(cluster, "team_etl", etl_run)["state"] == "success"
    hello = _task_instances(cluster, "team_etl", etl_run)["hello"]
    assert (hello["state"], hello["queue"]) == ("success", QUEUE)
    assert _ran_on_worker(cluster, "team_etl", etl_run, "hello"), worker_log(cluster)[-4000:]
