"""conn_origin: the host a repository's (or catalog's) connection was attached for

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

A connection's credentials go only to `conn_origin` (`scheme://host:port`, git/credentials.py). Rows that already
have a connection are attached for the origin of their current URL: the upgrade trusts the URLs registered before
it (review them with `dagops repos list` if someone without connection rights could have changed one).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = ("dagops_repository", "dagops_marketplace_catalog")

# A migration is frozen in time: it must write what it wrote the day it was released, whatever git/credentials.py
# becomes. So `url_origin` as it was then is copied here rather than imported (and the store layer does not reach up
# to git/); tests/test_layout.py checks that no revision imports the package.
_DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>\[[^\]/]+\]|[^@/:]+):")


def url_origin(url: str) -> str:
    """`scheme://host:port` of a git URL: lower-case host, the scheme's default port spelled out, no user, no path.
    `git@host:path` is `ssh://host:22`; local paths are `file://`."""
    url = (url or "").strip()
    if "://" not in url:
        if url.startswith("/"):
            return "file://"
        match = _SCP_LIKE.match(url)
        return f"ssh://{match.group('host').lower()}:22" if match else url.lower()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    scheme = "ssh" if scheme in ("git+ssh", "ssh+git") else scheme
    if scheme == "file":
        return "file://"
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is no number: git cannot use it either; keep it apart from every other
        return f"{scheme}://{parts.netloc.rpartition('@')[2].lower()}"
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def upgrade() -> None:
    for name in TABLES:
        with op.batch_alter_table(name) as batch:
            batch.add_column(sa.Column("conn_origin", sa.String(300), nullable=True))
    bind = op.get_bind()
    for name in TABLES:
        table = sa.table(name, sa.column("id", sa.Integer), sa.column("url", sa.String), sa.column("conn_id"))
        origin = sa.table(name, sa.column("id", sa.Integer), sa.column("conn_origin", sa.String))
        rows = bind.execute(sa.select(table.c.id, table.c.url).where(table.c.conn_id.is_not(None))).tuples().all()
        for row_id, url in rows:
            bind.execute(sa.update(origin).where(origin.c.id == row_id).values(conn_origin=url_origin(url)))


def downgrade() -> None:
    for name in TABLES:
        with op.batch_alter_table(name) as batch:
            batch.drop_column("conn_origin")
