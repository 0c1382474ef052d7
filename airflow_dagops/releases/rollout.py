"""Rollout: where a release that passed the gate goes. Into its repository's first promotion stage when it has
stages (releases/promotion.py moves it on from there), else straight live (releases/golive.py), unless the
repository was pinned while the release was checked: then it stays `validated` (the one rule for pins,
releases/pins.py: nothing automatic moves a pinned repository's live release)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from airflow_dagops.deploy.releases import retire_release_dir
from airflow_dagops.events import feed as events
from airflow_dagops.releases import promotion
from airflow_dagops.releases.golive import go_live, mark_pruned
from airflow_dagops.releases.pins import held_by_pin
from airflow_dagops.statuses import ReleaseStatus, SyncRunStatus
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release, Repository, SyncRun, utcnow
from airflow_dagops.store.queries import get_row, load_repository


@dataclass(frozen=True)
class Rollout:
    """What became of a release that passed every check, in words; `held_by_pin` when it was not published
    because its repository is pinned to another release."""

    message: str
    held_by_pin: bool = False


def publish_checked(name: str, release_id: int, run_id: int, *, actor: str, reason: str) -> Rollout:
    """Put a release that passed every check live: in its first promotion stage when the repository has
    stages (prod stays as it is), else in its namespace, unless the repository is pinned to another release.

    Swap the namespace link, then record it all in one transaction: the release is live, the commit
    seen, old releases pruned, the run finished. The link is the truth Airflow reads; should the
    process die before the commit, the next sync adopts the link (see `_recover`). A pin set while the release
    was being checked holds it back: then nothing is published, and the rollout says why."""
    with session_scope() as session:
        repo = load_repository(session, name)
        release = get_row(session, Release, release_id)
        staged = promotion.stage_new_release(session, repo, release, run_id, actor=actor)
        if staged is not None:
            return Rollout(staged)
        held = held_by_pin(repo, release)
        if held is not None:
            _hold(session, repo, release, run_id)
            return Rollout(held, held_by_pin=True)
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
    return Rollout(f"{name}: published {release.commit_sha[:12]}")


def _hold(session: Session, repo: Repository, release: Release, run_id: int) -> None:
    """Keep a release that passed but may not go live (pinned): `validated`, its commit seen, and its sync run
    closed as `unchanged` if still open (a run whose tests were deferred was closed when it handed them over).
    After `unpin`, the next sync publishes the branch head."""
    release.status = ReleaseStatus.VALIDATED
    repo.last_seen_commit = release.commit_sha
    run = get_row(session, SyncRun, run_id, what="sync run")
    if run.status == SyncRunStatus.RUNNING:
        run.status, run.commit_sha, run.release_id, run.ended_at = (
            SyncRunStatus.UNCHANGED,
            release.commit_sha,
            release.id,
            utcnow(),
        )
        events.record_sync_run(run.id, session=session)
