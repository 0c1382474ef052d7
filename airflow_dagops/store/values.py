"""Plain values the state DB's rows hold, shared by the ORM (models.py) and the reads without it (reads.py): times,
stored in UTC (SQLite gives them back without a zone), and the choices of `on_conflict`. No SQLAlchemy here, so a
`dagops` read can shape what it shows without loading the ORM (issue 19)."""

from __future__ import annotations

from datetime import datetime, timezone

# What a repository does when its dag_ids clash with another's (`on_conflict`; NULL in the DB means the default):
# skip_files: the release goes live without the files whose dag_ids a higher-priority repository owns;
# block: the release does not go live at all (deploy/conflicts.py).
ON_CONFLICT = ("skip_files", "block")
DEFAULT_ON_CONFLICT = "skip_files"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso_time(value: datetime | None) -> str | None:
    return aware(value).isoformat() if value is not None else None


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
