"""The sense step: a cheap `git ls-remote` of every due repository, concurrently, in one process."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from airflow_dagops import paths, settings, tempdirs
from airflow_dagops.deploy.publish import current_target
from airflow_dagops.deploy.releases import empty_trash as empty_release_trash
from airflow_dagops.errors import DagOpsError
from airflow_dagops.events import feed as events
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.health.reasons import REMOTE_REACHED, failure_reason
from airflow_dagops.statuses import SyncRunStatus
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Repository, SyncRun, utcnow
from airflow_dagops.store.queries import live_release_path

log = logging.getLogger(__name__)


@dataclass
class SenseResult:
    repository: str
    changed: bool
    remote_commit: str | None = None
    reason: str = ""
    error: str | None = None


# -- sense: cheap check of every repository ----------------------------------------------------------
def sense(names: list[str] | None = None, *, respect_poll_interval: bool = True) -> list[SenseResult]:
    """Compare each enabled repository's remote ref with what was last processed, concurrently, in one process.

    Only `git ls-remote` runs here (no fetch, no lock), so 100 unchanged repositories cost 100 short git
    processes, not 100 Airflow tasks.
    """
    now = utcnow()
    with session_scope() as session:
        query = select(Repository).where(Repository.enabled.is_(True))
        if names:
            query = query.where(Repository.name.in_(names))
        repos = [r for r in session.scalars(query).all() if not respect_poll_interval or _due(r, now)]
        targets = [
            (
                r.name,
                r.url,
                r.ref,
                r.conn_id,
                r.last_seen_commit,
                r.namespace,
                r.pinned_release_id,
                live_release_path(session, r),
            )
            for r in repos
        ]
    results: list[SenseResult] = []
    if targets:
        workers = max(1, min(settings.get_int("sense_concurrency"), len(targets)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dagops-sense") as pool:
            results = list(pool.map(lambda t: _sense_one(*t), targets))
        with session_scope() as session:
            names_checked = [t[0] for t in targets]
            session.execute(update(Repository).where(Repository.name.in_(names_checked)).values(last_checked_at=now))
            _record_recoveries(session, [r for r in results if not r.changed and r.remote_commit], now)
    empty_trash()
    return results


def _record_recoveries(session: Session, unchanged: list[SenseResult], now: datetime) -> None:
    """A check that reached the remote again after a sync that could not (credentials refused, host unreachable):
    recorded as an `unchanged` sync run. Nothing new means no sync task would record anything, and the history
    (with the repository's status and health) would show the failure until the next commit."""
    if not unchanged:
        return
    remote = {r.repository: r.remote_commit for r in unchanged}
    finished = (SyncRunStatus.SUCCESS, SyncRunStatus.UNCHANGED, SyncRunStatus.REJECTED, SyncRunStatus.FAILED)
    newest = (
        select(func.max(SyncRun.id))
        .join(Repository, Repository.id == SyncRun.repository_id)
        .where(Repository.name.in_(list(remote)), SyncRun.status.in_(finished))
        .group_by(SyncRun.repository_id)
    )
    rows = session.execute(
        select(SyncRun, Repository.name, Repository.live_release_id)
        .join(Repository, Repository.id == SyncRun.repository_id)
        .where(SyncRun.id.in_(newest), SyncRun.status == SyncRunStatus.FAILED)
    ).all()
    for failed, name, live_release_id in rows:
        if failure_reason(failed.error_code, failed.error) in REMOTE_REACHED:
            continue  # it read the remote and the commit failed: unchanged means still broken
        run = SyncRun(
            repository_id=failed.repository_id,
            trigger="schedule",
            status=SyncRunStatus.UNCHANGED,
            commit_sha=remote[name],
            release_id=live_release_id,
            started_at=now,
            ended_at=utcnow(),
        )
        session.add(run)
        session.flush()
        log.info("%s: the remote answers again (sync run %d failed before); recorded as unchanged", name, failed.id)
        events.record_sync_run(run.id, session=session)


def _due(repo: Repository, now: datetime) -> bool:
    if repo.last_checked_at is None:
        return True
    interval = repo.poll_interval or settings.get_int("default_poll_interval")
    checked = repo.last_checked_at if repo.last_checked_at.tzinfo else repo.last_checked_at.replace(tzinfo=timezone.utc)
    # A little slack so a once-a-minute schedule does not skip a 60 s interval because of jitter.
    return now - checked >= timedelta(seconds=interval) - timedelta(seconds=5)


def _sense_one(name, url, ref, conn_id, last_seen, namespace, pinned_id, live_path) -> SenseResult:
    if live_path and current_target(paths.namespace_link(namespace)) != Path(live_path):
        return SenseResult(name, True, None, "the namespace link does not point at the live release")
    if pinned_id:
        return SenseResult(name, False, None, "pinned")
    try:
        mirror = Mirror(path=paths.mirror_dir(name), url=url, conn_id=conn_id, retry_delays=())  # the sync retries
        _full_ref, remote = mirror.ls_remote(ref)
    except DagOpsError as err:
        # Report it through a sync task, so the failure shows up in Airflow and in the sync history.
        return SenseResult(name, True, None, "remote check failed", error=str(err))
    if remote != last_seen:
        return SenseResult(name, True, remote, f"new commit {remote[:12]}")
    return SenseResult(name, False, remote, "unchanged")


def empty_trash() -> int:
    """Delete the folders of pruned releases. Runs in the sense step and after `dagops sync`, not inside
    a sync, so removing thousands of files never delays a publish. Temporary folders of killed processes go too."""

    tempdirs.sweep()
    return empty_release_trash(settings.dagops_home() / "releases")
