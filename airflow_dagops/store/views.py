"""What faces are shown about repositories, sync runs and releases, read from the state DB: the read model.

Every use case that answers with a repository (registry changes, rollback, pin, deploy) builds its answer here,
so the REST API, the CLI and the page show the same fields and the same status words. The shaping takes rows as
they are read, ORM objects or store/reads.py's plain records alike, and loads no SQLAlchemy: the CLI's reads use
it without the ORM (issue 19); only `repository_info`, which queries through a session, imports it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_dagops import settings
from airflow_dagops.release_manifest import read_manifest
from airflow_dagops.safety import display_url
from airflow_dagops.statuses import RepositoryStatus, SyncRunStatus
from airflow_dagops.store.values import DEFAULT_ON_CONFLICT, aware, iso_time

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow_dagops.store.models import Release, Repository, SyncRun


# -- values handed to faces ------------------------------------------------------------------------
@dataclass
class RepositoryInfo:
    name: str
    url: str
    ref: str
    namespace: str
    priority: int
    conn_id: str | None
    subdir: str | None
    enabled: bool
    poll_interval: int
    webhook_conn_id: str | None = None
    on_conflict: str = "skip_files"
    access_control: dict | None = None
    promotion: dict | None = None
    isolated_env: bool = False
    alerts: dict | None = None
    auto_rollback: dict | None = None
    live_commit: str | None = None
    live_release_id: int | None = None
    live_message: str | None = None
    pinned_release_id: int | None = None
    dag_files: int = 0
    last_sync_status: str | None = None
    last_sync_at: str | None = None
    last_sync_error: str | None = None
    status: str = RepositoryStatus.PENDING  # a RepositoryStatus (docs/api.md)
    status_message: str | None = None
    dag_count: int = 0
    live_author: str | None = None
    live_committed_at: str | None = None
    last_sync: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def repository_info(session: Session, repo: Repository) -> RepositoryInfo:
    from sqlalchemy import select

    from airflow_dagops.store.models import Release, SyncRun  # lazy: the shaping below serves reads without the ORM

    live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
    last = session.scalar(select(SyncRun).where(SyncRun.repository_id == repo.id).order_by(SyncRun.id.desc()))
    return shape_repository_info(repo, live=live, last=last, reason=_reason_run(session, last))


def _reason_run(session: Session, last: SyncRun | None) -> SyncRun | None:
    """The run that explains the repository's state: for a 'rejected' run (the head commit was already
    refused), the failed run that refused it, so a retry does not hide the failure."""
    from sqlalchemy import select

    from airflow_dagops.store.models import SyncRun  # lazy: the shaping below serves reads without the ORM

    if last is None or last.status != SyncRunStatus.REJECTED:
        return last
    failed = session.scalar(
        select(SyncRun)
        .where(SyncRun.repository_id == last.repository_id, SyncRun.status == SyncRunStatus.FAILED)
        .where(SyncRun.commit_sha == last.commit_sha)
        .order_by(SyncRun.id.desc())
    )
    return failed or last


def shape_repository_info(
    repo: Repository, *, live: Release | None, last: SyncRun | None, reason: SyncRun | None
) -> RepositoryInfo:
    """What faces show about `repo`, from its rows: its live release, its last sync run and the run that explains
    its state (`last`, or for a 'rejected' one the failed run that refused the same commit)."""
    dag_files = 0
    if live is not None:
        manifest = read_manifest(Path(live.path)) or {}
        dag_files = sum(1 for path in manifest.get("files", {}) if path.endswith(".py"))
    status, status_message = _status_of(repo, live, reason)
    return RepositoryInfo(
        name=repo.name,
        url=display_url(repo.url),
        ref=repo.ref,
        namespace=repo.namespace,
        priority=repo.priority,
        conn_id=repo.conn_id,
        subdir=repo.subdir,
        enabled=repo.enabled,
        poll_interval=repo.poll_interval or settings.get_int("default_poll_interval"),
        webhook_conn_id=repo.webhook_conn_id,
        on_conflict=repo.on_conflict or DEFAULT_ON_CONFLICT,
        access_control=repo.access_control,
        promotion=repo.promotion,
        isolated_env=bool(repo.isolated_env),
        alerts=repo.alerts,
        auto_rollback=repo.auto_rollback,
        live_commit=live.commit_sha if live else None,
        live_release_id=repo.live_release_id,
        live_message=(live.message or "").splitlines()[0] if live and live.message else None,
        pinned_release_id=repo.pinned_release_id,
        dag_files=dag_files,
        last_sync_status=last.status if last else None,
        last_sync_at=iso_time(last.started_at) if last else None,
        last_sync_error=last.error if last else None,
        status=status,
        status_message=status_message,
        # The DAGs validation found in the live release; without the structure check, its .py files.
        dag_count=len((live.validation_summary or {}).get("dags") or []) or dag_files if live else 0,
        live_author=live.author if live else None,
        live_committed_at=iso_time(live.committed_at) if live else None,
        last_sync=sync_run_dict(last, repo.name) if last else None,
    )


_ERRORS_IN_WORDS = {
    "authentication_failed": "Invalid credentials",
    "remote_unreachable": "Remote unreachable",
    "ref_not_found": "Branch or tag not found",
    "git_timeout": "Git timed out",
    "lock_busy": "Another sync held the lock too long",
    "unexpected": "Sync crashed",
    "credential_host_refused": "Credentials not sent to this host",
}


def _in_words(run: SyncRun) -> str | None:
    """A failed run's reason in a few words, for a status line: 'Invalid credentials',
    'Validation failed: 3 errors in 2 files'."""
    if run.status != SyncRunStatus.FAILED:
        return None
    if run.error_code in _ERRORS_IN_WORDS:
        return _ERRORS_IN_WORDS[run.error_code]
    error = run.error or "Sync failed"
    if error.startswith("Validation failed:"):
        return ":".join(error.split(":")[:2])  # drop the list of findings after the counts
    return error.splitlines()[0][:200]


def _status_of(repo: Repository, live: Release | None, last: SyncRun | None) -> tuple[RepositoryStatus, str | None]:
    if last is not None and last.status in SyncRunStatus.active():
        return RepositoryStatus.SYNCING, None
    if not repo.enabled:
        return RepositoryStatus.DISABLED, None
    if last is not None and last.status == SyncRunStatus.FAILED:
        return RepositoryStatus.FAILED, _in_words(last)
    if repo.pinned_release_id:
        return RepositoryStatus.PINNED, None
    return (RepositoryStatus.SYNCED if live is not None else RepositoryStatus.PENDING), None


def sync_run_dict(run: SyncRun, repository: str | None = None) -> dict:
    duration = None
    if run.ended_at and run.started_at:
        duration = round((aware(run.ended_at) - aware(run.started_at)).total_seconds(), 3)
    return {
        "id": run.id,
        "repository": repository,
        "trigger": run.trigger,
        "airflow_run_id": run.airflow_run_id,
        "status": run.status,
        "commit": run.commit_sha,
        "release_id": run.release_id,
        "error": run.error,
        "error_code": run.error_code,
        "status_message": _in_words(run),
        "started_at": iso_time(run.started_at),
        "ended_at": iso_time(run.ended_at),
        "duration_seconds": duration,
    }


def release_dict(
    release: Release, *, with_findings: bool = False, repository: str | None = None, pinned_id: int | None = None
) -> dict:
    data: dict[str, Any] = {
        "id": release.id,
        "repository": repository,
        "commit": release.commit_sha,
        "short_commit": release.commit_sha[:7],
        "ref": release.ref,
        "status": release.status,
        "author": release.author,
        "message": (release.message or "").splitlines()[0] if release.message else "",
        "committed_at": iso_time(release.committed_at),
        "created_at": iso_time(release.created_at),
        "file_count": release.file_count,
        "validation": release.validation_summary,
        "on_disk": release.pruned_at is None,
        "pinned": release.id == pinned_id,
        # file -> why: left out of Airflow because another repository owns its dag_id (conflicts.py)
        "hidden_files": release.hidden_files or {},
        "tests": _tests_overview(release.tests),
    }
    if with_findings:
        data["findings"] = [
            {
                "rule": f.rule,
                "severity": f.severity,
                "file": f.file,
                "line": f.line,
                "message": f.message,
                "hint": f.hint,
            }
            for f in release.findings
        ]
    return data


def _tests_overview(tests: dict | None) -> dict | None:
    """The test results without the bulky JUnit XML and output (those stay in the DB for `dagops tests`)."""
    if not tests:
        return None
    modules = [{k: v for k, v in m.items() if k not in ("junit_xml", "output_tail")} for m in tests.get("modules", [])]
    return {**tests, "modules": modules}
