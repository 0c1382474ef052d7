"""Rollout: where a release that passed the gate goes. Into its repository's first promotion stage when it has
stages (releases/promotion.py moves it on from there), else straight live (releases/golive.py)."""

from __future__ import annotations

from airflow_dagops.deploy.releases import retire_release_dir
from airflow_dagops.events import feed as events
from airflow_dagops.releases import promotion
from airflow_dagops.releases.golive import go_live, mark_pruned
from airflow_dagops.statuses import SyncRunStatus
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release, SyncRun, utcnow
from airflow_dagops.store.queries import get_row, load_repository


def publish_checked(name: str, release_id: int, run_id: int, *, actor: str, reason: str) -> str:
    """Put a release that passed every check live: in its first promotion stage when the repository has
    stages (prod stays as it is), else in its namespace. Returns what happened in words."""
    staged = promotion.stage_new_release(name, release_id, run_id, actor=actor)
    if staged is None:
        _publish_and_record(name, release_id, run_id, actor=actor, reason=reason)
    with session_scope() as session:
        commit = get_row(session, Release, release_id).commit_sha
    return staged or f"{name}: published {commit[:12]}"


def _publish_and_record(name: str, release_id: int, run_id: int, *, actor: str, reason: str) -> None:
    """Swap the namespace link, then record it all in one transaction: the release is live, the commit
    seen, old releases pruned, the run finished. The link is the truth Airflow reads; should the
    process die before the commit, the next sync adopts the link (see `_recover`)."""
    with session_scope() as session:
        repo = load_repository(session, name)
        release = get_row(session, Release, release_id)
        go_live(session, repo, release, actor=actor, reason=reason)
        repo.last_seen_commit = release.commit_sha
        doomed = mark_pruned(session, repo)
        run = get_row(session, SyncRun, run_id, what="sync run")
        run.status, run.commit_sha, run.release_id, run.ended_at = (
            SyncRunStatus.SUCCESS,
            release.commit_sha,
            release_id,
            utcnow(),
        )
        events.record_sync_run(run_id, session=session)
    # Only after the commit, so no row ever claims a folder that is gone.
    for path in doomed:
        retire_release_dir(path)
