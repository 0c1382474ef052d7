"""What every reader of the state DB knows without SQLAlchemy or alembic: where the schema's revisions live, the
newest one (read from the migration files), the table that records the DB's revision, and the error a connection
that fails becomes. db.py (the ORM's engine) and reads.py (the CLI's reads, issue 19) share it."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from airflow_dagops.errors import StateDBUnavailable
from airflow_dagops.safety import redact

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "dagops_alembic_version"

# State DB URLs whose schema this process found at the head revision (or migrated there): checked once per process,
# by db.py and reads.py alike; db.dispose_engines forgets them.
checked_urls: set[str] = set()

_REVISION_LINE = re.compile(r"""^(revision|down_revision) = (?:"(\w+)"|None)$""", re.MULTILINE)


@functools.cache
def head_from_files() -> str | None:
    """The newest revision read from the migration files' `revision = "..."` lines without alembic; None where
    that reading is not certain (a merge, a file in another form): then alembic decides."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = {key: value for key, value in _REVISION_LINE.findall(path.read_text())}
        if set(found) != {"revision", "down_revision"} or not found["revision"]:
            return None
        revisions.add(found["revision"])
        parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def unavailable(url: str, reason: str) -> StateDBUnavailable:
    """A lost or refused connection (a restarting server, a network cut) as an error a user can act on; the
    transaction it interrupted was rolled back by the server, so nothing is half written."""
    return StateDBUnavailable(
        f"the dagops state DB at {redact(url)} failed: {redact(reason)}. Nothing was half written; "
        "try again once it answers (see [dagops] sql_alchemy_conn)."
    )
