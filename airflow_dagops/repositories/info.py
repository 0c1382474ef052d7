"""What faces show about repositories: the read model (RepositoryInfo, sync run and release dicts), history, status,
health.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from airflow_dagops import __version__, settings
from airflow_dagops.safety import redact
from airflow_dagops.store.db import read_connection, session_scope
from airflow_dagops.store.models import DeployEvent, Release, Repository, SyncRun, iso_time
from airflow_dagops.store.queries import load_repository
from airflow_dagops.store.views import RepositoryInfo, release_dict, repository_info, sync_run_dict
from airflow_dagops.validate import sandbox_host

log = logging.getLogger(__name__)


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
            "releases": [
                release_dict(release, with_findings=True, pinned_id=repo.pinned_release_id) for release in releases
            ],
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


def status() -> dict:
    """A whole-installation summary for `dagops status`."""

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
