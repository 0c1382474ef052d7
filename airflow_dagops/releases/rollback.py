"""Reading releases, and moving the live one by hand: rollback (re-exporting a pruned release), pin and unpin.

A rollback goes back to a release that passed the gate before: it goes live without passing it again (a rollback
must work fast, and even when what broke is the validation itself); dag_id clashes are still settled by priority
as it goes live (releases/golive.py), and old release folders are pruned as after a sync. A release without a
validation record (one still waiting for its tests in dagops_test, or a row that never got a verdict) has not
passed the gate: it goes through it first, purpose ROLLBACK (releases/gate.py), tests included, and is refused
when the gate holds it back.

Pins follow the one rule of releases/pins.py: a pin names the release that stays live, so rolling back a pinned
repository moves its pin to the release made live (it stays pinned), `pin` keeps what is live (or rolls back to a
release and keeps that), and `unpin` lets the next sync publish the branch head again.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.orm import Session

from airflow_dagops import paths, settings
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.deploy.releases import retire_release_dir
from airflow_dagops.errors import Conflict, ValidationFailed
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.release_manifest import read_manifest
from airflow_dagops.releases.candidate import RepoSnapshot, export_commit
from airflow_dagops.releases.gate import GatePurpose, check_tree
from airflow_dagops.releases.golive import go_live, mark_pruned
from airflow_dagops.releases.history import get_release, list_releases, live_dags  # noqa: F401 - re-exported
from airflow_dagops.releases.pins import read_pin
from airflow_dagops.statuses import ReleaseStatus
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import DeployEvent, Finding, Release, Repository
from airflow_dagops.store.queries import (
    find_release,
    get_row,
    load_repository,
    previous_good_release,
)
from airflow_dagops.store.views import RepositoryInfo, repository_info

log = logging.getLogger(__name__)


def rollback(name: str, release: int | str | None = None, *, actor: str, pin: bool = False) -> RepositoryInfo:
    """Point the namespace at an earlier release that passed validation (default: the one live before the
    current one). A pruned release is re-exported from the mirror first. A pinned repository stays pinned, to
    this release (releases/pins.py); with `pin`, an unpinned one is pinned to it too."""
    with repository_lock(paths.locks_dir(), name, timeout=settings.get_int("lock_timeout")):
        with session_scope() as session:
            repo = load_repository(session, name)
            if release is None:
                target = previous_good_release(session, repo)
            else:
                target = find_release(session, repo, release)
            if target.status == ReleaseStatus.FAILED:
                raise Conflict(
                    f"release {target.id} ({target.commit_sha[:12]}) did not pass validation and cannot go live; "
                    "pick one that passed (see the releases list)"
                )
            snapshot = RepoSnapshot.read(session, name)
            target_id, commit = target.id, target.commit_sha
            path, on_record = Path(target.path), has_validation_record(target)
        if read_manifest(path) is None:
            path = _reexport(snapshot, commit)
        if not on_record:
            _gate_unvalidated(snapshot, target_id, path)
        return _go_live_back(name, target_id, path, actor=actor, pin=pin)


def has_validation_record(release: Release) -> bool:
    """Whether the release passed the whole gate once: validated (or live since), with its summary stored. A
    release in `testing` passed validation but not yet its own tests."""
    return release.status in ReleaseStatus.deployable() and bool(release.validation_summary)


def _gate_unvalidated(snapshot: RepoSnapshot, release_id: int, path: Path) -> None:
    """Put a release without a validation record through the gate (purpose ROLLBACK) and record the verdict on
    it; ValidationFailed when it is held back (nothing live changes)."""
    report = check_tree(path, repository_id=snapshot.id, namespace=snapshot.namespace, purpose=GatePurpose.ROLLBACK)
    with session_scope() as session:
        release = get_row(session, Release, release_id)
        release.validation_summary = {**report.summary(), "venv": report.stats.get("venv")}
        release.tests = report.stats.get("tests") or release.tests
        release.status = ReleaseStatus.VALIDATED if report.passed else ReleaseStatus.FAILED
        release.findings = [
            Finding(rule=f.rule, severity=f.severity, file=f.file, line=f.line, message=f.message, hint=f.hint)
            for f in report.findings
        ]
    if not report.passed:
        raise ValidationFailed(
            f"release {release_id} ({path.name[:12]}) of {snapshot.name} had no validation record and the gate held "
            f"it back: {report.describe_errors()}. Nothing was rolled back; what was live stays live.",
            details={"release_id": release_id, "findings": [f.to_dict() for f in report.findings]},
        )


def _go_live_back(name: str, release_id: int, path: Path, *, actor: str, pin: bool) -> RepositoryInfo:
    """Publish the release again (the pin moves with it, or is set if asked), then prune old release folders as
    a sync's publish does: the folders go only after the commit, so no row ever claims a folder that is gone."""
    with session_scope() as session:
        repo = load_repository(session, name)
        target = get_row(session, Release, release_id)
        target.path, target.pruned_at = str(path), None
        go_live(session, repo, target, actor=actor, reason="rollback", by_hand=True, pin=pin)
        doomed = mark_pruned(session, repo)
        session.flush()
        pinned = " (pinned to it)" if repo.pinned_release_id == target.id else ""
        log.info("%s rolled %s back to %s%s", actor, name, target.commit_sha[:12], pinned)
        info = repository_info(session, repo)
    for folder in doomed:
        retire_release_dir(folder)
    return info


def _reexport(snapshot: RepoSnapshot, commit: str) -> Path:
    mirror = Mirror(path=paths.mirror_dir(snapshot.name), url=snapshot.url, conn_id=snapshot.conn_id)
    return export_commit(snapshot, mirror, commit, snapshot.ref).path


def pin(name: str, release: int | str | None = None, *, actor: str) -> RepositoryInfo:
    """Keep the live release (or roll back to `release` and keep that): new commits are not followed."""
    if release is not None:
        with session_scope() as session:
            repo = load_repository(session, name)
            wanted = find_release(session, repo, release)
            is_live = wanted.id == repo.live_release_id
        if not is_live:
            return rollback(name, release, actor=actor, pin=True)
    with session_scope() as session:
        repo = load_repository(session, name)
        # Lock the row (PostgreSQL) and read what is live as committed now: a publish in flight finishes first.
        session.refresh(repo, with_for_update=True)
        if not repo.live_release_id:
            raise Conflict(f"nothing of {name!r} is live yet, so there is nothing to pin; sync it first")
        if repo.pinned_release_id != repo.live_release_id:
            repo.pinned_release_id = repo.live_release_id  # the one rule: the pin names the live release
            _log_event(session, repo, actor=actor, reason="pin")
        session.flush()
        return repository_info(session, repo)


def unpin(name: str, *, actor: str) -> RepositoryInfo:
    """Follow the branch again from the next check."""
    with session_scope() as session:
        repo = load_repository(session, name)
        if read_pin(session, repo):
            live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
            if live is None or live.commit_sha != repo.last_seen_commit:
                repo.last_seen_commit = None  # the live release is not the branch head: sync at the next check
            repo.pinned_release_id = None
            _log_event(session, repo, actor=actor, reason="unpin")
        session.flush()
        return repository_info(session, repo)


def _log_event(session: Session, repo: Repository, *, actor: str, reason: str) -> None:
    """A deploy-log entry that changes nothing live (pin/unpin): who did it, and when."""
    session.add(
        DeployEvent(
            repository_id=repo.id,
            from_release_id=repo.live_release_id,
            to_release_id=repo.live_release_id,
            actor=actor,
            reason=reason,
        )
    )
