"""What the store says about a repository's releases: the list, one release with its findings, the live release's
DAGs and the deploy log. Reads only: no git, no validation, no publishing, so a face that only shows releases
(`dagops versions`, `dagops tests`, the REST API's lists) loads no more than the state DB. `rollback` and
`versions`, which move releases, re-export these for their callers.
"""

from __future__ import annotations

from sqlalchemy import select

from airflow_dagops.errors import NotFound
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import DeployEvent, Release, Repository, iso_time
from airflow_dagops.store.queries import MAX_ID, get_row, load_repository, newest_first
from airflow_dagops.store.views import release_dict


def list_releases(name: str, *, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    with session_scope() as session:
        repo = load_repository(session, name)
        releases, total = newest_first(session, Release, repo, limit, offset)
        return [release_dict(r, repository=name, pinned_id=repo.pinned_release_id) for r in releases], total


def get_release(release_id: int) -> dict:
    with session_scope() as session:
        release = session.get(Release, release_id) if 0 < release_id <= MAX_ID else None
        if release is None:
            raise NotFound(f"no release with id {release_id}")
        repo = get_row(session, Repository, release.repository_id)
        return release_dict(release, with_findings=True, repository=repo.name, pinned_id=repo.pinned_release_id)


def live_dags(name: str) -> tuple[str, list[dict]]:
    """The namespace and the DAGs (dag_id, file) of a repository's live release, as validation found them."""
    with session_scope() as session:
        repo = load_repository(session, name)
        live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
        dags = list((live.validation_summary or {}).get("dags") or []) if live else []
        hidden = (live.hidden_files or {}) if live else {}  # left out: another repository owns the dag_id
        return repo.namespace, sorted((d for d in dags if d.get("file") not in hidden), key=lambda d: d["dag_id"])


def deploy_log(name: str, limit: int = 20) -> list[dict]:
    """The deploy events of a repository, newest first: when, from which commit to which, who, and why."""
    with session_scope() as session:
        repo = load_repository(session, name)
        events = session.scalars(
            select(DeployEvent)
            .where(DeployEvent.repository_id == repo.id)
            .order_by(DeployEvent.id.desc())
            .limit(max(1, limit))
        ).all()
        ids = {i for e in events for i in (e.from_release_id, e.to_release_id) if i is not None}
        commits: dict[int | None, str] = {}
        if ids:
            rows = session.execute(select(Release.id, Release.commit_sha).where(Release.id.in_(ids))).tuples().all()
            commits.update(rows)
        return [
            {
                "id": e.id,
                "at": iso_time(e.created_at),
                "from_release_id": e.from_release_id,
                "to_release_id": e.to_release_id,
                "from_commit": commits.get(e.from_release_id),
                "to_commit": commits.get(e.to_release_id),
                "actor": e.actor,
                "reason": e.reason,
                "diff": e.diff,
            }
            for e in events
        ]
