"""What every credentials module needs to know about a repository: its URL, ref and connection, its host.

Read once per operation from the state DB into a small value, so the access test, deploy keys and
rotation never hold a DB session while git or Airflow runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

from sqlalchemy import select

from airflow_dagops.errors import NotFound
from airflow_dagops.safety import display_url
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Repository

SSH_TRANSPORTS = ("ssh", "git+ssh", "ssh+git")
HTTP_TRANSPORTS = ("https", "http")
_SCP_HOST = re.compile(r"^(?:[^@/:]+@)?(?P<host>[^/:]+):")


@dataclass(frozen=True)
class RepoTarget:
    """A repository as the credentials code sees it; holds no secret."""

    name: str
    url: str
    ref: str
    conn_id: str | None


def load_target(name: str) -> RepoTarget:
    """The registered repository `name`, or NotFound saying how to list them."""
    with session_scope() as session:
        repo = session.scalar(select(Repository).where(Repository.name == name))
        if repo is None:
            raise NotFound(f"no repository named {name!r} is registered; see `dagops repos list`")
        return RepoTarget(repo.name, repo.url, repo.ref, repo.conn_id)


def host_of(url: str) -> str:
    """The host of a git URL (scp-like `git@host:path` too), for messages that tell where to add a key."""
    match = _SCP_HOST.match(url) if "://" not in url else None
    if match:
        return match.group("host")
    try:
        parts = urlsplit(url)
        return parts.hostname or url
    except ValueError:
        return display_url(url)


def utc_now() -> datetime:
    """Aware UTC time, for rotation markers and new key comments."""
    return datetime.now(timezone.utc)
