"""The live set of `publish_mode = bundle`, in the state DB: which release of which repository is live in each
namespace (promotion stages and marketplace packages included: a package is an ordinary repository).

Every way a release goes live writes its row in the transaction that records it as live: `go_live` (sync, deploy,
rollback, pin, a promotion reaching prod), a promotion stage, a sync adopting the link a killed sync left. Taking a
stage down deletes its row; removing a repository deletes its rows with it (foreign key). The dagops-releases
bundle reads the set in the dag-processor (bundle/manifest.py), so the dag-processor needs the state DB and the Git
hosts, not the publishers' volume. One entry, as the bundle and its versions carry it:

    {"repository": "team", "namespace": "team",       # the release's own namespace (a stage's: its prod one)
     "commit": "<sha>", "subdir": null, "ref": "refs/heads/main",
     "path": "<dagops_home>/releases/team/<sha>",     # the release folder on the machines that publish
     "airflowignore": "...",                           # the release's .airflowignore (dag_id clashes, skipped files)
     "meta": {...},                                    # the namespace's settings the cluster policy applies
     "url": "...", "conn_id": "..."}                   # where a machine without the folder fetches the commit

What is recorded is read from the release folder and the namespace's settings as the publisher has them, when they
go live. A later change to either (a dag_id clash settled on another release, a repository's settings updated) is
written with `refresh`. In `symlinks` mode nothing is written: Airflow reads the links, and a dagops-releases
bundle still configured for the runs that started on it serves nothing. `dagops bundle migrate` fills the set from
the links, or empties it (bundle/migrate.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.orm import Session

from airflow_dagops import paths
from airflow_dagops.airflow import namespace_meta
from airflow_dagops.errors import DagOpsError
from airflow_dagops.release_manifest import read_manifest
from airflow_dagops.store.models import LiveNamespace, Release, Repository

log = logging.getLogger(__name__)


def enabled() -> bool:
    """Whether this process publishes for the dagops-releases bundle (it reads the mode when it starts)."""
    return paths.publish_mode() == "bundle"


def record(
    session: Session, namespace: str, *, repository_id: int, release_id: int | None, release_dir: Path, force=False
) -> None:
    """`namespace` serves the release in `release_dir` from the end of `session`'s transaction on. Nothing in
    symlinks mode, unless `force` (a migration writes the set before the processes restart in the new mode)."""
    if not (force or enabled()):
        return
    manifest = read_manifest(release_dir)
    if not manifest or not manifest.get("commit"):
        raise DagOpsError(f"{release_dir} is not a complete release (no manifest); it cannot go live in {namespace}")
    row = session.get(LiveNamespace, namespace)
    if row is None:
        row = LiveNamespace(namespace=namespace)
        session.add(row)
    row.repository_id, row.release_id = repository_id, release_id
    row.commit_sha, row.path = manifest["commit"], str(release_dir)
    row.release_namespace, row.subdir, row.ref = manifest.get("namespace"), manifest.get("subdir"), manifest.get("ref")
    row.airflowignore = _read_text(release_dir / ".airflowignore")
    row.meta = namespace_meta.read(namespace)


def record_links(session: Session, links: dict[str, Path]) -> list[str]:
    """Make the set hold exactly the namespaces of `links` (namespace -> release folder: what a migration finds on
    disk), whatever this process's mode; returns the namespaces recorded. A folder whose repository is not
    registered any more is left out (its DAGs have no repository to serve them for)."""
    clear(session)
    recorded = []
    for namespace, folder in sorted(links.items()):
        manifest = read_manifest(folder) or {}
        repository = session.scalar(select(Repository).where(Repository.name == manifest.get("repository")))
        if repository is None or not manifest.get("commit"):
            log.warning(
                "%s leads to %s, which no registered repository owns; left out of the live set", namespace, folder
            )
            continue
        release = session.scalar(
            select(Release)
            .where(Release.repository_id == repository.id, Release.commit_sha == manifest["commit"])
            .order_by(Release.id.desc())
            .limit(1)
        )
        record(
            session,
            namespace,
            repository_id=repository.id,
            release_id=release.id if release else None,
            release_dir=folder,
            force=True,
        )
        recorded.append(namespace)
    return recorded


def refresh(session: Session, namespace: str) -> None:
    """Write what changed since `namespace` went live: its release's `.airflowignore` (dag_id clashes settled) and
    its settings. Nothing when it has no row, or when this machine does not hold its release folder."""
    row = session.get(LiveNamespace, namespace)
    if row is None:
        return
    folder = Path(row.path)
    if folder.is_dir():
        row.airflowignore = _read_text(folder / ".airflowignore")
    row.meta = namespace_meta.read(namespace)


def forget(session: Session, namespace: str) -> None:
    """`namespace` serves nothing any more (its link is gone)."""
    session.execute(delete(LiveNamespace).where(LiveNamespace.namespace == namespace))


def clear(session: Session) -> int:
    """Empty the set (a move back to symlinks); returns how many namespaces it held."""
    result = session.execute(delete(LiveNamespace))
    return result.rowcount if isinstance(result, CursorResult) else 0


def read(connection: Connection) -> dict[str, dict]:
    """namespace -> entry (see the module doc) for every live namespace, in one query."""
    live = LiveNamespace
    rows = connection.execute(
        select(
            live.namespace,
            live.release_namespace,
            live.commit_sha,
            live.subdir,
            live.ref,
            live.path,
            live.airflowignore,
            live.meta,
            Repository.name,
            Repository.url,
            Repository.conn_id,
        ).join(Repository, Repository.id == live.repository_id)
    ).all()
    return {
        row.namespace: {
            "repository": row.name,
            "namespace": row.release_namespace or row.namespace,
            "commit": row.commit_sha,
            "subdir": row.subdir,
            "ref": row.ref,
            "path": row.path,
            "airflowignore": row.airflowignore,
            "meta": row.meta,
            "url": row.url,
            "conn_id": row.conn_id,
        }
        for row in rows
    }


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return None
