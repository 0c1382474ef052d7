"""a pin names the live release: repair repositories pinned to another release than the live one

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04

Before the one rule for pins (releases/pins.py), a rollback without `pin` on a pinned repository made another
release live but left the pin on the old one, so the page, the releases table and `dagops versions` disagreed.
Under the rule the pin moves with a rollback, so such a repository is repaired the same way: its pin moves to
the release that is live (what Airflow runs; nothing live changes).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    repository = sa.table(
        "dagops_repository",
        sa.column("live_release_id", sa.Integer),
        sa.column("pinned_release_id", sa.Integer),
    )
    op.get_bind().execute(
        sa.update(repository)
        .where(
            repository.c.pinned_release_id.is_not(None),
            repository.c.live_release_id.is_not(None),
            repository.c.pinned_release_id != repository.c.live_release_id,
        )
        .values(pinned_release_id=repository.c.live_release_id)
    )


def downgrade() -> None:
    pass  # the repair leaves nothing to undo: the older code reads a pin on the live release as before
