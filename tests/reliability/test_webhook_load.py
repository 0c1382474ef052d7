"""Reliability 5 (webhooks): 200 deliveries a second for 10 seconds against the real webhook endpoint (the
/pluginsv2 Flask app, through its test client), spread over ten repositories, one in ten forged. No answer
is a 5xx, forged ones are refused, and every repository ends with its last pushed commit live: bursts
coalesce into a few syncs, run meanwhile by a stand-in for the Airflow worker. The rate the test client
really sustained is printed (and recorded in docs/reliability.md), never asserted."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Repository, SyncRun
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source
from tests.webhooks import payloads
from tests.webhooks.conftest import GLOBAL_SECRET

# On a timeout, end the worker (method "thread"): a delivery thread stuck in the DB would otherwise keep the
# executor, and with it the whole run, waiting.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900, method="thread")]

RATE, SECONDS = 200, 10
REPOS = 10
COMMITS_PER_REPO = 20  # each repository's `main` moves to its next commit every 10 of its deliveries
FORGED_EVERY = 7  # not a divisor of REPOS: every repository gets forged and valid deliveries
WEBHOOK = "/dagops/api/v1/webhooks/github"


class AirflowStandIn:
    """What the Celery worker does with queued dagops_sync runs: start each one's sync, one at a time."""

    def __init__(self):
        self.done = threading.Event()
        self.synced = 0
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.done.is_set():
            if not self.run_queued():
                time.sleep(0.05)

    def run_queued(self) -> int:
        with session_scope() as session:
            queued = session.execute(
                select(Repository.name, SyncRun.airflow_run_id)
                .join(Repository, Repository.id == SyncRun.repository_id)
                .where(SyncRun.status == "queued")
                .order_by(SyncRun.id)
            ).all()
        for name, run_id in queued:
            outcome = sync_repository(name, trigger="webhook", airflow_run_id=run_id)
            self.synced += 1
            if outcome.status not in ("published", "unchanged"):
                self.errors.append(outcome.message)
        return len(queued)

    def __enter__(self) -> AirflowStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self._thread.join(120)


def test_two_hundred_deliveries_a_second_for_ten_seconds_no_5xx_and_every_push_published(hooks, git_remote):
    remotes, commits = [], []
    for index in range(REPOS):
        remote = git_remote({"dags/a.py": dag_source(f"a{index}")}, name=f"remote{index}")
        add_repository(f"team{index}", remote.url)
        remote.git("checkout", "-q", "-b", "work")
        source = dag_source(f"a{index}")
        commits.append([remote.commit(f"c{n}", {"dags/a.py": f"{source}# {n}\n"}) for n in range(COMMITS_PER_REPO)])
        remote.git("checkout", "-q", "main")
        remotes.append(remote)

    total = RATE * SECONDS
    per_repo = total // REPOS
    # (repository, commit, forged?) of each delivery; a repository's commit advances every 10 of its deliveries.
    plan = [(k % REPOS, (k // REPOS) * COMMITS_PER_REPO // per_repo, k % FORGED_EVERY == 0) for k in range(total)]
    forged_count = sum(forged for *_rest, forged in plan)
    last_pushed = {index: commits[index][commit] for index, commit, forged in plan if not forged}
    moved = [[threading.Lock(), -1] for _ in range(REPOS)]

    def deliver(k: int) -> int:
        index, commit_index, forged = plan[k]
        lock_and_head = moved[index]
        with lock_and_head[0]:  # a (real) push reaches the Git host before its webhook is sent
            if not forged and commit_index > lock_and_head[1]:
                remotes[index].git("update-ref", "refs/heads/main", commits[index][commit_index])
                lock_and_head[1] = commit_index
        body = payloads.encode(payloads.push("github", remotes[index].url, commits[index][commit_index]))
        secret = "not-the-secret" if forged else GLOBAL_SECRET
        return hooks.post("github", body, payloads.headers("github", "push", body, secret=secret)).status_code

    started = time.monotonic()

    def paced(k: int) -> int:
        delay = started + k / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return deliver(k)

    with AirflowStandIn() as worker, ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(paced, range(total)))
        elapsed = time.monotonic() - started
    while worker.run_queued():  # the worker finishes what is still queued
        pass

    counts = Counter(statuses)
    print(f"\n{total} deliveries in {elapsed:.1f}s ({total / elapsed:.0f}/s): {dict(counts)}; {worker.synced} syncs")
    assert not [s for s in statuses if s >= 500], counts
    # The same push (same commit of the same repository) delivered again under another id is a duplicate
    # event (200); every other genuine delivery starts or joins a sync (202).
    assert counts[401] == forged_count and counts[202] + counts[200] == total - forged_count, counts
    assert counts[202] >= sum(len(pushed) for pushed in commits), counts
    assert worker.errors == []
    for index in range(REPOS):
        assert get_repository(f"team{index}").live_commit == last_pushed[index]
    assert worker.synced < total // 10  # coalesced: far fewer syncs than pushes
