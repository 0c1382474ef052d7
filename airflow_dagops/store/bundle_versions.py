"""The versions of the dagops-releases DAG bundle (airflow_dagops/bundle/): id -> the set of live releases.

A version id is derived from its manifest, so recording one is idempotent: the same set of live releases always
gets the same id, and a second dag-processor recording it changes nothing but `current_since`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from airflow_dagops.store.db import read_connection, session_scope
from airflow_dagops.store.models import BundleVersion, utcnow


def record(version: str, manifest: dict, *, current: bool = True) -> bool:
    """Store `version` unless it is known; with `current`, mark it as what the dag-processor serves from now.
    Returns whether the row is new."""
    with session_scope() as session:
        row = session.get(BundleVersion, version)
        if row is None:
            session.add(BundleVersion(version=version, manifest=manifest))
            return True
        if current:
            row.current_since = utcnow()
        return False


def load(version: str) -> dict | None:
    """The manifest of `version`, or None when no dag-processor ever recorded it."""
    with read_connection() as connection:
        return connection.scalar(select(BundleVersion.manifest).where(BundleVersion.version == version))


def current() -> tuple[str, dict] | None:
    """The version a dag-processor made current last, with its manifest."""
    with read_connection() as connection:
        row = connection.execute(
            select(BundleVersion.version, BundleVersion.manifest).order_by(BundleVersion.current_since.desc()).limit(1)
        ).first()
    return (row[0], row[1]) if row else None


def not_current_since(cutoff: datetime) -> list[str]:
    """The versions no dag-processor has made current since `cutoff`, the current one left out whatever its age
    (candidates for airflow_dagops/bundle/cleanup.py)."""
    newest = current()
    with read_connection() as connection:
        rows = connection.scalars(select(BundleVersion.version).where(BundleVersion.current_since < cutoff)).all()
    return [version for version in rows if newest is None or version != newest[0]]


def forget(versions: list[str]) -> int:
    """Delete the rows of versions no DAG run can use any more (airflow_dagops/bundle/cleanup.py)."""
    if not versions:
        return 0
    with session_scope() as session:
        rows = session.scalars(select(BundleVersion).where(BundleVersion.version.in_(versions))).all()
        for row in rows:
            session.delete(row)
        return len(rows)
