"""What discovery has found, read without the ORM (store/reads.py): the sources and their matches, as
`dagops discover --list` and `GET .../discovery` show them. A read is a new process each time from the command line,
and SQLAlchemy's import alone would be most of its time (issue 19, "Fast CLI"); service.py re-exports these."""

from __future__ import annotations

from typing import Any

from airflow_dagops.safety import display_url
from airflow_dagops.store import reads
from airflow_dagops.store.values import iso_time


def list_sources() -> list[dict]:
    with reads.reading() as reader:
        return [_source_dict(row) for row in reader.rows("dagops_discovery_source", "ORDER BY name")]


def list_discovered(source: str | None = None) -> list[dict]:
    where = "WHERE source = :source " if source is not None else ""
    with reads.reading() as reader:
        rows = reader.rows("dagops_discovered_repository", f"{where}ORDER BY source, full_name", source=source)
        return [discovered_dict(row) for row in rows]


def _source_dict(row: Any) -> dict:
    return {
        "name": row.name,
        "provider": row.provider,
        "url": display_url(row.url),
        "conn_id": row.conn_id,
        "rule": row.rule,
        "register": row.register,
        "namespace_prefix": row.namespace_prefix,
        "last_scanned_at": iso_time(row.last_scanned_at),
        "last_error": row.last_error,
    }


def discovered_dict(row: Any) -> dict:
    """A match as the faces show it (a `dagops_discovered_repository` row, ORM or plain)."""
    return {
        "source": row.source,
        "full_name": row.full_name,
        "name": row.name or None,
        "url": display_url(row.url),
        "ref": row.ref,
        "topics": row.topics or [],
        "status": row.status,
        "reason": row.reason,
        "repository": row.repository,
        "first_seen_at": iso_time(row.first_seen_at),
        "last_seen_at": iso_time(row.last_seen_at),
        "removed_at": iso_time(row.removed_at),
    }
