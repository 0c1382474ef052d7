"""What faces show about repositories: the read model (RepositoryInfo, sync run and release dicts), history, status,
health.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from airflow_dagops import settings
from airflow_dagops.deploy.releases import read_manifest
from airflow_dagops.repositories import options as repo_options
from airflow_dagops.safety import display_url, redact
from airflow_dagops.store.db import read_connection, session_scope
from airflow_dagops.store.models import DeployEvent, Release, Repository, SyncRun, aware, iso_time
from airflow_dagops.store.queries import load_repository

log = logging.getLogger(__name__)


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
    live_commit: str | None = None
    live_release_id: int | None = None
    live_message: str | None = None
    pinned_release_id: int | None = None
    dag_files: int = 0
    last_sync_status: str | None = None
    last_sync_at: str | None = None
    last_sync_error: str | None = None
    status: str = "pending"  # synced / failed / syncing / pinned / pending / disabled (docs/api.md)
    status_message: str | None = None
    dag_count: int = 0
    live_author: str | None = None
    live_committed_at: str | None = None
    last_sync: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def list_repositories() -> list[RepositoryInfo]:
    with session_scope() as session:
        repos = session.scalars(select(Repository).order_by(Repository.priority, Repository.name)).all()
        return [repository_info(session, repo) for repo in repos]


def get_repository(name: str) -> RepositoryInfo:
    with session_scope() as session:
        return repository_info(session, load_repository(session, name))


def repository_history(name: str, *, limit: int = 10) -> dict:
    """Recent sync runs, releases (with findings) and deploy events of one repository."""
    with session_scope() as session:
        repo = load_repository(session, name)
        runs = session.scalars(
            select(SyncRun).where(SyncRun.repository_id == repo.id).order_by(SyncRun.id.desc()).limit(limit)
        ).all()
        releases = session.scalars(
            select(Release).where(Release.repository_id == repo.id).order_by(Release.id.desc()).limit(limit)
        ).all()
        events = session.scalars(
            select(DeployEvent).where(DeployEvent.repository_id == repo.id).order_by(DeployEvent.id.desc()).limit(limit)
        ).all()
        return {
            "sync_runs": [sync_run_dict(run) for run in runs],
            "releases": [release_dict(release, with_findings=True) for release in releases],
            "deploy_events": [
                {
                    "id": e.id,
                    "from_release_id": e.from_release_id,
                    "to_release_id": e.to_release_id,
                    "actor": e.actor,
                    "reason": e.reason,
                    "created_at": iso_time(e.created_at),
                }
                for e in events
            ],
        }


def health() -> dict:
    """Can dagops work? The state DB answers and the dags folder is there. Says nothing secret."""
    from airflow_dagops import __version__

    checks = {}
    try:
        with read_connection() as connection:
            connection.execute(select(func.count()).select_from(Repository))
        checks["state_db"] = "ok"
    except Exception as err:  # health must answer, whatever the failure
        log.warning("health: the state DB does not answer: %s", redact(str(err)))
        checks["state_db"] = "unavailable"
    checks["dags_folder"] = "ok" if settings.dags_folder().is_dir() else "missing"
    ok = all(value == "ok" for value in checks.values())
    return {"status": "ok" if ok else "unavailable", "version": __version__, **checks}


def repository_info(session: Session, repo: Repository) -> RepositoryInfo:
    live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
    last = session.scalar(select(SyncRun).where(SyncRun.repository_id == repo.id).order_by(SyncRun.id.desc()))
    dag_files = 0
    if live is not None:
        manifest = read_manifest(Path(live.path)) or {}
        dag_files = sum(1 for path in manifest.get("files", {}) if path.endswith(".py"))
    status, status_message = _status_of(repo, live, _reason_run(session, last))
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
        on_conflict=repo.on_conflict or repo_options.DEFAULT_ON_CONFLICT,
        access_control=repo.access_control,
        promotion=repo.promotion,
        isolated_env=bool(repo.isolated_env),
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
}


def _in_words(run: SyncRun) -> str | None:
    """A failed run's reason in a few words, for a status line: 'Invalid credentials',
    'Validation failed: 3 errors in 2 files'."""
    if run.status != "failed":
        return None
    if run.error_code in _ERRORS_IN_WORDS:
        return _ERRORS_IN_WORDS[run.error_code]
    error = run.error or "Sync failed"
    if error.startswith("Validation failed:"):
        return ":".join(error.split(":")[:2])  # drop the list of findings after the counts
    return error.splitlines()[0][:200]


def _reason_run(session: Session, last: SyncRun | None) -> SyncRun | None:
    """The run that explains the repository's state: for a 'rejected' run (the head commit was already
    refused), the failed run that refused it, so a retry does not hide the failure."""
    if last is None or last.status != "rejected":
        return last
    failed = session.scalar(
        select(SyncRun)
        .where(SyncRun.repository_id == last.repository_id, SyncRun.status == "failed")
        .where(SyncRun.commit_sha == last.commit_sha)
        .order_by(SyncRun.id.desc())
    )
    return failed or last


def _status_of(repo: Repository, live: Release | None, last: SyncRun | None) -> tuple[str, str | None]:
    if last is not None and last.status in ("queued", "running"):
        return "syncing", None
    if not repo.enabled:
        return "disabled", None
    if last is not None and last.status == "failed":
        return "failed", _in_words(last)
    if repo.pinned_release_id:
        return "pinned", None
    return ("synced" if live is not None else "pending"), None


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
    data = {
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


def status() -> dict:
    """A whole-installation summary for `dagops status`."""
    from airflow_dagops.validate import sandbox_host

    repos = list_repositories()
    support = sandbox_host.sandbox_support()
    return {
        "dagops_home": str(settings.dagops_home()),
        "state_db": redact(settings.sql_alchemy_conn()),
        "dags_folder": str(settings.dags_folder()),
        "sandbox": {
            "available": support.available,
            "setting": settings.get("sandbox"),
            "detail": sandbox_host.describe_support(),
        },
        "repositories": [r.to_dict() for r in repos],
    }
