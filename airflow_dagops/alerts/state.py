"""What a repository's alerts last said, one `dagops_alert_state` row per repository, and the compare-and-set that
makes every change announced exactly once, whichever process sees it first (two sync tasks finishing together,
a worker and the CLI): a process sends only after its `UPDATE ... WHERE <the value it read>` changed the row. A
process that lost the race sees a row count of 0 and sends nothing. (PostgreSQL re-reads the row after the
winner's commit; SQLite has one writer at a time.)

The health kept is the last one judged, with one exception: a failing repository that goes stale stays `failing`
here, since it has not recovered; its recovery is announced when it is ok again. A failing repository that is
paused (pinned or disabled, someone's decision) is kept as paused: no recovery is announced for it later.
"""

from __future__ import annotations

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from airflow_dagops.statuses import AlertEvent, HealthState
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import AlertState, utcnow

MAX_TRIES = 5  # a row that keeps changing under us is being announced by someone else


def transition(old: str, new: HealthState) -> tuple[str, AlertEvent | None]:
    """(the health to keep, the event to announce) when the kept health is `old` and the judged one `new`."""
    if new == HealthState.FAILING:
        return new.value, (AlertEvent.FAILING if old != HealthState.FAILING else None)
    if old == HealthState.FAILING:
        if new == HealthState.OK:
            return new.value, AlertEvent.RECOVERED
        if new == HealthState.STALE:
            return old, None  # not recovered yet
    return new.value, None


def kept_health(session: Session, repository_id: int) -> str | None:
    """The health the repository's alert state keeps; None when it has no row yet."""
    return session.scalar(select(AlertState.health).where(AlertState.repository_id == repository_id))


def keeps(kept: str | None, new: HealthState) -> bool:
    """Whether judging `new` would leave the kept health as it is (and so announce nothing): a read that says so
    spares the compare-and-set its transactions. A missing row is never kept: `claim_health` creates it."""
    return kept is not None and transition(kept, new)[0] == kept


def claim_health(repository_id: int, new: HealthState) -> AlertEvent | None:
    """Keep `new` as the repository's health; the event to announce when this process made the change."""
    ensure_row(repository_id)
    for _ in range(MAX_TRIES):
        with session_scope() as session:
            old = session.scalar(select(AlertState.health).where(AlertState.repository_id == repository_id))
            if old is None:  # the repository was removed meanwhile
                return None
            kept, event = transition(old, new)
            if kept == old:
                return None
            changed = _rows(
                session.execute(
                    update(AlertState)
                    .where(AlertState.repository_id == repository_id, AlertState.health == old)
                    .values(health=kept, updated_at=utcnow())
                )
            )
            if changed == 1:
                return event
    return None


def claim_failed_commit(repository_id: int, commit: str) -> bool:
    """Whether this process is the first to announce that `commit` failed validation."""
    return _claim(repository_id, AlertState.failed_commit, commit)


def claim_rollback(repository_id: int, release_id: int) -> bool:
    """Whether this process is the first to roll `release_id` back automatically."""
    return _claim(repository_id, AlertState.rolled_back_release_id, release_id)


def _claim(repository_id: int, column: InstrumentedAttribute, value: str | int) -> bool:
    """Compare-and-set one column of the repository's alert state to `value`: True for the one process that
    changed it, False for every other (and for a value already kept)."""
    ensure_row(repository_id)
    with session_scope() as session:
        changed = _rows(
            session.execute(
                update(AlertState)
                .where(AlertState.repository_id == repository_id, or_(column.is_(None), column != value))
                .values({column.key: value, "updated_at": utcnow()})
            )
        )
    return changed == 1


def _rows(result) -> int:
    """The rows an UPDATE changed: the compare-and-set won when it is 1."""
    return result.rowcount if isinstance(result, CursorResult) else 0


def record_delivery(repository_id: int, event: AlertEvent, errors: list[str]) -> None:
    with session_scope() as session:
        row = session.get(AlertState, repository_id)
        if row is not None:
            row.last_event, row.last_sent_at = event.value, utcnow()
            row.last_error = "; ".join(errors)[:2000] if errors else None


def ensure_row(repository_id: int) -> None:
    """The repository's row, created as `ok` (its first failing state is then a change) if it has none."""
    with session_scope() as session:
        if session.get(AlertState, repository_id) is not None:
            return
    try:
        with session_scope() as session:
            session.add(AlertState(repository_id=repository_id, health=HealthState.OK.value))
    except IntegrityError:  # another process created it first: the same row either way
        pass


def read_state(repository_id: int) -> dict | None:
    with session_scope() as session:
        row = session.get(AlertState, repository_id)
        if row is None:
            return None
        return {
            "health": row.health,
            "failed_commit": row.failed_commit,
            "rolled_back_release_id": row.rolled_back_release_id,
            "last_event": row.last_event,
            "last_sent_at": row.last_sent_at.isoformat() if row.last_sent_at else None,
            "last_error": row.last_error,
        }
