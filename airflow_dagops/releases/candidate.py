"""A commit becomes a release candidate: exported into its release folder, put through the one gate
(releases/gate.py) and recorded as a Release row, `validated` or `failed`. Sync and deploy share this path, so a
commit is judged the same however it was chosen; where it goes next is the caller's (releases/rollout.py for a
sync, releases/versions.py for a deploy).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from airflow_dagops import paths, settings
from airflow_dagops.deploy.publish import current_target
from airflow_dagops.deploy.releases import ExportResult, export_release
from airflow_dagops.errors import NotFound
from airflow_dagops.events import feed as events
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.releases.gate import GatePurpose, Progress, check_tree
from airflow_dagops.statuses import ReleaseStatus
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Finding, Release, Repository
from airflow_dagops.validate import Report, validate

log = logging.getLogger(__name__)


@dataclass
class RepoSnapshot:
    """The fields a sync needs, read in one short transaction (no session is held across git work)."""

    id: int
    name: str
    url: str
    ref: str
    namespace: str
    conn_id: str | None
    subdir: str | None
    enabled: bool
    last_seen_commit: str | None
    pinned_release_id: int | None
    live_release_id: int | None
    live_commit: str | None
    live_path: str | None

    @classmethod
    def read(cls, session: Session | Connection, name: str) -> RepoSnapshot:
        """One plain SELECT (repository joined with its live release): this runs on every poll, where an
        unchanged repository should cost little more than its `git ls-remote`."""
        row = session.execute(
            select(
                Repository.id,
                Repository.name,
                Repository.url,
                Repository.ref,
                Repository.namespace,
                Repository.conn_id,
                Repository.subdir,
                Repository.enabled,
                Repository.last_seen_commit,
                Repository.pinned_release_id,
                Repository.live_release_id,
                Release.commit_sha,
                Release.path,
            )
            .outerjoin(Release, Release.id == Repository.live_release_id)
            .where(Repository.name == name)
        ).first()
        if row is None:
            raise NotFound(f"no repository named {name!r} is registered; see `dagops repos list`")
        values: tuple[Any, ...] = tuple(row)  # SQLAlchemy types only the first 10 columns of a row
        return cls(*values)

    def link_healthy(self) -> bool:
        if not self.live_path:
            return True  # nothing published yet: nothing to repair
        return current_target(paths.namespace_link(self.namespace)) == Path(self.live_path)


def export_and_check(
    snapshot: RepoSnapshot,
    mirror: Mirror,
    info,
    full_ref: str,
    *,
    purpose: GatePurpose,
    validator: Callable[..., Report] = validate,
    progress: Progress | None = None,
) -> tuple[int, Report]:
    """Export `info.sha` into its release folder (unchanged files hard-linked from the live release), run the
    gate on it for `purpose`, and record the Release row with the findings. Returns (release id, report)."""
    dest = export_commit(snapshot, mirror, info.sha, full_ref)
    report = check_tree(
        dest.path,
        repository_id=snapshot.id,
        namespace=snapshot.namespace,
        purpose=purpose,
        validator=validator,
        extra_findings=dest.export.findings,
        progress=progress,
    )
    return record_release(snapshot, info, full_ref, dest, report), report


@dataclass(frozen=True)
class ExportedCommit:
    path: Path
    export: ExportResult


def export_commit(snapshot: RepoSnapshot, mirror: Mirror, commit: str, ref: str) -> ExportedCommit:
    """The commit's files in `releases/<namespace>/<sha>/` (read-only, written once through a temp folder)."""
    dest = paths.release_dir(snapshot.namespace, commit)
    export = export_release(
        mirror=mirror,
        sha=commit,
        subdir=snapshot.subdir,
        dest=dest,
        base=Path(snapshot.live_path) if snapshot.live_path else None,
        max_size=settings.get_int("max_repo_size"),
        metadata={"repository": snapshot.name, "namespace": snapshot.namespace, "ref": ref},
    )
    log.info(
        "exported %s@%s: %d files (%d linked from the live release, %d written)",
        snapshot.name,
        commit[:12],
        export.file_count,
        export.linked,
        export.written,
    )
    return ExportedCommit(dest, export)


def record_release(snapshot: RepoSnapshot, info, full_ref: str, dest: ExportedCommit, report: Report) -> int:
    """The Release row of the commit, created or brought up to date with the gate's verdict; a live release
    keeps its status (a forced re-check of what is live must not take it down in the DB)."""
    with session_scope() as session:
        release = session.scalar(
            select(Release).where(Release.repository_id == snapshot.id, Release.commit_sha == info.sha)
        )
        if release is None:
            release = Release(repository_id=snapshot.id, namespace=snapshot.namespace, commit_sha=info.sha)
            session.add(release)
        release.ref = full_ref
        release.author = info.author
        release.message = info.message[:10000]
        release.committed_at = info.committed_at
        release.path = str(dest.path)
        release.file_count = dest.export.file_count
        release.pruned_at = None
        release.validation_summary = {**report.summary(), "venv": report.stats.get("venv")}
        release.tests = report.stats.get("tests")
        if release.status != ReleaseStatus.LIVE:
            release.status = ReleaseStatus.VALIDATED if report.passed else ReleaseStatus.FAILED
        release.findings = [
            Finding(rule=f.rule, severity=f.severity, file=f.file, line=f.line, message=f.message, hint=f.hint)
            for f in report.findings
        ]
        session.flush()
        events.record_validation(session, snapshot.name, release, report)
        return release.id
