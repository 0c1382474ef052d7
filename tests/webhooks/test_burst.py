"""A flood of pushes: 50 deliveries for one repository within a second coalesce into at most two syncs
(one running, one queued), and the last pushed commit is what ends up live."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import SyncRun
from airflow_dagops.sync.sync import sync_repository
from airflow_dagops.validate import validate
from tests.helpers.repos import dag_source
from tests.helpers.web import airflow_runs_of_sync_dag
from tests.webhooks import payloads
from tests.webhooks.conftest import GLOBAL_SECRET

PUSHES = 50


def _open_runs() -> dict[str, list[str]]:
    with session_scope() as session:
        rows = session.execute(select(SyncRun.status, SyncRun.airflow_run_id)).all()
    runs: dict[str, list[str]] = {}
    for status, run_id in rows:
        runs.setdefault(status, []).append(run_id)
    return runs


def test_fifty_pushes_in_a_second_make_at_most_two_syncs_and_the_last_sha_goes_live(hooks, webhook_app, git_remote):
    remote = git_remote({"dags/a.py": dag_source("a")})
    add_repository("team", remote.url)
    # The commits exist up front (on another branch); the burst moves `main` one commit per push, the way
    # a Git host receives pushes one after the other and sends a delivery for each.
    base = remote.head()
    remote.git("checkout", "-q", "-b", "work")
    shas = [remote.commit(f"change {i}", {"dags/a.py": dag_source("a") + f"\n# {i}\n"}) for i in range(PUSHES)]
    remote.git("checkout", "-q", "main")
    assert remote.head() == base

    started, release = threading.Event(), threading.Event()

    def held_validator(path, **kwargs):
        started.set()  # the first sync is running: it has claimed its run and fetched
        assert release.wait(60), "the test never released the first sync"
        return validate(path, **kwargs)

    claimed: dict = {}

    def airflow_worker():
        """What Airflow does with the first dagops_sync run: start its task as soon as it is queued."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _open_runs().get("queued"):
            time.sleep(0.005)
        run_id = _open_runs()["queued"][0]
        claimed["outcome"] = sync_repository("team", trigger="webhook", airflow_run_id=run_id, validator=held_validator)

    def deliver(sha: str):
        client = webhook_app.test_client()
        body = payloads.encode(payloads.push("github", remote.url, sha))
        return client.post(
            "/dagops/api/v1/webhooks/github",
            data=body,
            headers=payloads.headers("github", "push", body, secret=GLOBAL_SECRET),
        )

    airflow_runs_before = len(airflow_runs_of_sync_dag())
    worker = threading.Thread(target=airflow_worker)
    worker.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        burst_start = time.monotonic()
        futures = []
        for sha in shas:
            remote.git("update-ref", "refs/heads/main", sha)
            futures.append(pool.submit(deliver, sha))
        responses = [f.result() for f in futures]
        burst_seconds = time.monotonic() - burst_start
    assert burst_seconds < 5, f"the burst took {burst_seconds:.1f}s"  # ~0.5 s here; generous for slow CI
    assert [r.status_code for r in responses] == [202] * PUSHES
    assert started.wait(30), "the first sync never started"

    during = _open_runs()  # while the first sync still runs
    release.set()
    worker.join(60)
    assert len(during.get("running", [])) == 1 and len(during.get("queued", [])) <= 1, during
    runs = [run for r in responses for run in r.get_json()["runs"]]
    new_runs = [run for run in runs if not run["coalesced"]]
    assert 1 <= len(new_runs) <= 2 and len(runs) == PUSHES
    assert len(airflow_runs_of_sync_dag()) - airflow_runs_before == len(new_runs)  # one Airflow run per sync

    for queued in _open_runs().get("queued", []):  # Airflow starts the queued run once the first one ended
        sync_repository("team", trigger="webhook", airflow_run_id=queued)
    with session_scope() as session:
        statuses = session.scalars(select(SyncRun.status)).all()
    assert len(statuses) == len(new_runs) <= 2
    assert set(statuses) <= {"success", "unchanged"}, statuses
    assert get_repository("team").live_commit == shas[-1]
    assert claimed["outcome"].status == "published"
