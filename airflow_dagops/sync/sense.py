"""The sense step: a cheap `git ls-remote` of every due repository, concurrently, in one process."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select, update

from airflow_dagops import paths, settings, tempdirs
from airflow_dagops.deploy.publish import current_target
from airflow_dagops.deploy.releases import empty_trash as empty_release_trash
from airflow_dagops.errors import DagOpsError
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Repository, utcnow
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
    empty_trash()
    return results


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
