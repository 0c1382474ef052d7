"""Going live: point a namespace at a release that passed the gate (releases/gate.py), record it, resolve dag_id
clashes, and prune old release folders. Every path that puts a release live in prod comes through `go_live`: sync,
deploy, rollback (and pin, which is a rollback), and a promotion reaching prod; and `go_live` applies the one rule
for pins (releases/pins.py) before anything moves.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from airflow_dagops import paths, settings
from airflow_dagops.airflow import namespace_meta
from airflow_dagops.deploy import live_set
from airflow_dagops.deploy.conflicts import CONFLICTS_LOCK, apply_hidden, live_pairs
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.deploy.publish import publish
from airflow_dagops.events import feed as events
from airflow_dagops.releases import environments as venvs
from airflow_dagops.releases.diff import diff_releases
from airflow_dagops.releases.pins import apply_pin_rule
from airflow_dagops.statuses import ReleaseStatus
from airflow_dagops.store.models import DeployEvent, Release, Repository, utcnow

log = logging.getLogger(__name__)


def go_live(
    session: Session,
    repo: Repository,
    release: Release,
    *,
    actor: str,
    reason: str,
    by_hand: bool = False,
    pin: bool = False,
) -> None:
    """Point the namespace at `release` and record it, resolving dag_id clashes with every other live
    release by priority (airflow_dagops/conflicts.py): losing files are hidden before the link swaps and
    files no longer shadowed come back after it, so Airflow never sees two files for one dag_id.

    The pin rule first (releases/pins.py): a release an operator chose (`by_hand`: rollback, deploy, pin to a
    release) takes the pin along, or a new one with `pin`; an automatic move (sync, tests passed, promotion) on a
    repository pinned elsewhere is refused with Conflict before anything moves."""
    with repository_lock(paths.locks_dir(), CONFLICTS_LOCK, timeout=settings.get_int("lock_timeout")):
        apply_pin_rule(session, repo, release, by_hand=by_hand, pin=pin)
        others = live_pairs(session, exclude_id=repo.id)
        apply_hidden(others + [(repo, release)], phase="hide")
        write_namespace_meta(repo, release)  # before the swap: the new DAG code finds its environment
        publish(paths.namespace_link(repo.namespace), Path(release.path))
        record_live(session, repo, release, actor=actor, reason=reason)
        apply_hidden(others + [(repo, release)], phase="settle")


def write_namespace_meta(repo: Repository, release: Release | None = None) -> None:
    """What the cluster policy applies to the namespace's DAGs, and the interpreter of its isolated
    environment for `venvs.namespace_python` (airflow_dagops/namespace_meta.py)."""
    meta = {"repository": repo.name, "access_control": repo.access_control}
    release = release or (repo.live_release if repo.live_release_id else None)
    if release is not None and repo.isolated_env:
        meta.update(venvs.environment_meta(release.validation_summary))
    namespace_meta.write(repo.namespace, meta)


def record_live(session: Session, repo: Repository, release: Release, *, actor: str, reason: str) -> None:
    write_namespace_meta(repo, release)
    previous_id = repo.live_release_id
    if previous_id and previous_id != release.id:
        previous = session.get(Release, previous_id)
        if previous is not None and previous.status == ReleaseStatus.LIVE:
            previous.status = ReleaseStatus.RETIRED
    release.status = ReleaseStatus.LIVE
    repo.live_release_id = release.id
    # Bundle mode: what the dagops-releases bundle serves changes in this same transaction (deploy/live_set.py).
    live_set.record(
        session, repo.namespace, repository_id=repo.id, release_id=release.id, release_dir=Path(release.path)
    )
    if previous_id != release.id:
        before = session.get(Release, previous_id) if previous_id else None
        session.add(
            DeployEvent(
                repository_id=repo.id,
                from_release_id=previous_id,
                to_release_id=release.id,
                actor=actor,
                reason=reason,
                diff=diff_releases(before, release),
            )
        )
        events.record_went_live(session, repo, release, actor=actor, reason=reason, previous_id=previous_id)


def mark_pruned(session: Session, repo: Repository) -> list[Path]:
    """Keep `releases_to_keep` release folders, never the live or the pinned one; returns the folders to
    retire once the transaction is committed."""
    keep = max(1, settings.get_int("releases_to_keep"))
    protected = {repo.live_release_id, repo.pinned_release_id}
    # Ids and folders only: a release's row carries its validation summary (every DAG), which pruning never reads.
    on_disk = session.execute(
        select(Release.id, Release.path)
        .where(Release.repository_id == repo.id, Release.pruned_at.is_(None))
        .order_by(Release.created_at.desc(), Release.id.desc())
    ).all()
    doomed = [(release_id, path) for release_id, path in on_disk[keep:] if release_id not in protected]
    if doomed:
        ids = [release_id for release_id, _path in doomed]
        session.execute(update(Release).where(Release.id.in_(ids)).values(pruned_at=utcnow()))
    return [Path(path) for _id, path in doomed]
