"""A sync whose process died (SIGKILL, OOM, a lost state DB) leaves its run row 'running'. The next sync of
that repository holds the lock, so it knows no one else is running it: it closes the row as interrupted
(otherwise the page would show 'syncing' forever and "Sync Now" would answer 409)."""

from __future__ import annotations

from sqlalchemy import select

from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Repository, SyncRun
from airflow_dagops.sync.sync import sync_repository


def test_the_next_sync_closes_a_run_left_running_by_a_dead_process(dagops_env, git_remote):
    remote = git_remote()
    add_repository("team", remote.url)
    other = git_remote(name="other")
    add_repository("other", other.url)
    with session_scope() as session:
        ids = {name: session.scalar(select(Repository.id).where(Repository.name == name)) for name in ("team", "other")}
        dead = SyncRun(repository_id=ids["team"], trigger="cli", status="running")
        elsewhere = SyncRun(repository_id=ids["other"], trigger="cli", status="running")
        session.add_all([dead, elsewhere])
        session.flush()
        dead_id, elsewhere_id = dead.id, elsewhere.id

    outcome = sync_repository("team")

    assert outcome.status == "published"
    with session_scope() as session:
        closed = session.get(SyncRun, dead_id)
        assert (closed.status, closed.error_code) == ("failed", "interrupted")
        assert closed.error.startswith("interrupted:") and closed.ended_at is not None
        assert session.get(SyncRun, outcome.sync_run_id).status == "success"
        assert session.get(SyncRun, elsewhere_id).status == "running"  # another repository's lock, not ours
