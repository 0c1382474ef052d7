"""The event feed: what dagops did and how it went, for assistants, scripts and knowledge bases.

Every sync, validation, publish, rollback, deploy, promotion and proposal is recorded here as one row
(time, kind, repository, release, actor, outcome, a one-line summary, a small JSON detail), and so are the
outcomes of DAG runs of published DAGs (the `dagops_events` system DAG, events/dag_runs.py).
The row id is the cursor: readers page with `after=<last id>` and never miss or repeat an event. The feed is read
without the ORM (store/reads.py `list_events`, `recent_events`, re-exported below).

Two rules shape this module:
- Recording never breaks what it records. `record` logs a failed insert and returns; a hook inside a
  transaction passes its session, and the event is written only once that transaction committed (a
  publish that rolled back leaves no "published" event, and SQLite never sees two writers at once).
- Nothing secret is stored: every text goes through `redaction.redact_text` (the values of this process's
  secrets, URL userinfo) and a scrub of token-looking words (Bearer/token headers, password=..., GitHub/GitLab
  token prefixes).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import event as sa_event
from sqlalchemy import insert
from sqlalchemy.orm import Session

from airflow_dagops.alerts import service as alerts
from airflow_dagops.health import observe
from airflow_dagops.redaction import install_log_redaction, redact_text
from airflow_dagops.statuses import PromotionStatus
from airflow_dagops.store import reads
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Event, Repository, SyncRun
from airflow_dagops.wording import plural

log = logging.getLogger(__name__)

KINDS = reads.EVENT_KINDS
MAX_LIMIT = reads.MAX_EVENTS
MAX_SUMMARY = 1000
MAX_ID = reads.MAX_ID
_PENDING = "dagops_pending_events"
_batch = threading.local()  # `rows`: events recorded while a committed transaction's hooks run (_write_pending)

# Words that carry a secret even without a URL around them; the secret part is replaced by ***.
_SECRET_PATTERNS = (
    # "token expired" is no secret; "token 9f8e7d6c5b..." is: a secret has a digit in it.
    re.compile(r"(?i)\b(bearer|token|basic)(\s+)(?=[A-Za-z._~+/=-]*\d)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)\b(password|passwd|pwd|token|secret|api[_-]?key|access[_-]?token|private[_-]?token)"
        r"(\"?'?\s*[:=]\s*\"?'?)[^\s\"'&,;]+"
    ),
    re.compile(r"\b(gh[pousr]_)[A-Za-z0-9]{16,}"),
    re.compile(r"\b(github_pat_)[A-Za-z0-9_]{16,}"),
    re.compile(r"\b(glpat-)[A-Za-z0-9_-]{16,}"),
)


# -- write -----------------------------------------------------------------------------------------------------
def record(
    kind: str,
    *,
    repository: str | None,
    release_id: int | None = None,
    actor: str,
    outcome: str,
    summary: str,
    detail: dict | None = None,
    session: Session | None = None,
) -> None:
    """Record one event. With `session`, once that session's transaction commits; never raises."""
    if kind not in KINDS:  # a programming error, but still not worth breaking a sync over
        log.error("not recording an event of unknown kind %r", kind)
        return
    install_log_redaction()  # what this module logs (a failed insert's traceback) is redacted too
    row = _row(kind, repository, release_id, actor, outcome, summary, detail)
    if session is not None:
        _after_commit(session, lambda: _insert(row))
    else:
        _insert(row)


def add_now(
    session: Session,
    kind: str,
    *,
    repository: str | None,
    release_id: int | None,
    actor: str,
    outcome: str,
    summary: str,
    detail: dict | None = None,
) -> None:
    """Add one event to `session`'s transaction, to commit with it or not at all: for a writer whose own record
    says what it has recorded (the DAG run collector's cursor), so the two never disagree. Unlike `record`, a
    failure is the caller's."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    session.add(Event(**_row(kind, repository, release_id, actor, outcome, summary, detail)))


def _row(kind: str, repository, release_id, actor, outcome, summary, detail) -> dict:
    """An event's columns, scrubbed of secrets and cut to the columns' sizes."""
    return {
        "kind": kind,
        "repository": repository,
        "release_id": release_id,
        "actor": scrub(str(actor or "unknown"))[:250],
        "outcome": scrub(str(outcome))[:40],
        "summary": _one_line(scrub(str(summary)))[:MAX_SUMMARY],
        "detail": scrub_value(detail) if detail else None,
    }


def record_sync_run(run_id: int, *, session: Session | None = None) -> None:
    """A finished sync run as a `sync` event (read after the run's transaction committed)."""
    if session is not None:
        _after_commit(session, lambda: record_sync_run(run_id))
        return
    try:
        with session_scope() as read:
            run = read.get(SyncRun, run_id)
            if run is None:  # deleted with its repository before the event was written
                log.warning("sync run %s is gone: no event for it in the feed", run_id)
                return
            repository = read.get(Repository, run.repository_id)  # the alerts' read below finds it loaded
            name = repository.name if repository is not None else None
            facts = (run.status, run.commit_sha, run.trigger, run.error, run.error_code, run.airflow_run_id)
            release_id, started, ended = run.release_id, run.started_at, run.ended_at
            for_alerts = _read_for_alerts(read, run_id) if name is not None else None
    except Exception:
        log.exception("could not read sync run %s for the event feed", run_id)
        return
    status, commit, trigger, error, code, airflow_run_id = facts
    if name is not None:
        observe.sync_run_finished(name, status, code, error, started, ended)
    at = f" at {commit[:12]}" if commit else ""
    why = f": {error.splitlines()[0]}" if error else ""
    record(
        "sync",
        repository=name,
        release_id=release_id,
        actor=trigger,
        outcome=status,
        summary=f"{name}: sync {status}{at}{why}",
        detail={
            "sync_run_id": run_id,
            "commit": commit,
            "trigger": trigger,
            "error_code": code,
            "error": error,
            "airflow_run_id": airflow_run_id,
        },
    )
    if name is not None:
        # A red commit status and alerts on a change of health (alerts/service.py): read in the same transaction.
        alerts.after_sync(run_id, for_alerts)


def _read_for_alerts(session: Session, run_id: int) -> alerts.SyncRunFacts | None:
    """What the alerts need, read with the event's facts; None (alerts read again themselves) if that fails, so
    an alerts problem never costs the event."""
    try:
        return alerts.read_run(session, run_id)
    except Exception:
        log.exception("could not read sync run %s for its alerts", run_id)
        session.rollback()  # a failed statement leaves a PostgreSQL transaction unusable; only reads are lost
        return None


# What went live, by the deploy log's reason: rollback, deploy; else a publish. A promotion into prod is
# recorded by `record_promotion` (with its stage history), so it is not recorded twice.
_KIND_OF_REASON = {"rollback": "rollback", "deploy": "deploy", "promotion": None}


def record_went_live(session: Session, repo, release, *, actor: str, reason: str, previous_id: int | None) -> None:
    """A release became the live one (services.record_live): publish, rollback, deploy or promotion to prod."""
    committed_at = release.committed_at
    _after_commit(session, lambda: observe.went_live(repo.name, reason, committed_at))
    kind = _KIND_OF_REASON.get(reason, "publish")
    if kind is None:
        return
    verb = {"publish": "published", "rollback": "rolled back to", "deploy": "deployed"}[kind]
    record(
        kind,
        repository=repo.name,
        release_id=release.id,
        actor=actor,
        outcome="success",
        summary=f"{repo.name}: {verb} {release.commit_sha[:12]} ({reason})",
        detail={
            "commit": release.commit_sha,
            "namespace": repo.namespace,
            "reason": reason,
            "previous_release_id": previous_id,
        },
        session=session,
    )


def record_validation(session: Session, repository: str, release, report) -> None:
    """A release's validation report (services.export_and_validate)."""
    observe.validated(repository, report.findings)
    summary = report.summary()
    errors = [f.to_dict() for f in report.errors][:20]
    record(
        "validation",
        repository=repository,
        release_id=release.id,
        actor="dagops",
        outcome="passed" if report.passed else "failed",
        summary=(
            f"{repository}: {release.commit_sha[:12]} "
            f"{'passed' if report.passed else 'failed'} validation "
            f"({plural(summary.get('errors', 0), 'error')}, {plural(summary.get('warnings', 0), 'warning')})"
        ),
        detail={"commit": release.commit_sha, "summary": summary, "errors": errors},
        session=session,
    )


def record_tests(repository: str, release_id: int, commit: str, verdict: dict, *, actor: str) -> None:
    """A release's own tests finished (tests_service.finish_release_tests): part of its validation."""
    record(
        "validation",
        repository=repository,
        release_id=release_id,
        actor=actor,
        outcome="failed" if verdict.get("blocked") else "passed",
        summary=f"{repository}: tests of {commit[:12]}: {verdict.get('message')}",
        detail={"commit": commit, "tests": True, "message": verdict.get("message")},
    )


def record_staged(session: Session, repository: str, release, stage: str, *, actor: str) -> None:
    """A validated release went live in the first promotion stage (promotion.stage_new_release)."""
    record(
        "promotion",
        repository=repository,
        release_id=release.id,
        actor=actor,
        outcome=PromotionStatus.SOAKING,
        summary=f"{repository}: {release.commit_sha[:12]} is live in stage {stage}",
        detail={"commit": release.commit_sha, "stage": stage},
        session=session,
    )


def record_promotion(promotion, repository: str, *, actor: str) -> None:
    """A promotion moved on or was blocked (promotion.py); written when its transaction commits."""
    from sqlalchemy.orm import object_session

    detail = promotion.detail or {}
    if promotion.status == PromotionStatus.BLOCKED:
        failed = f"run {detail.get('failed_run_id')} of {detail.get('failed_dag_id')} failed"
        what = f"blocked in {promotion.stage}: {failed}"
    elif promotion.status == PromotionStatus.PROMOTED:
        what = "promoted to prod"
    else:
        what = f"moved to stage {promotion.stage}"
    record(
        "promotion",
        repository=repository,
        release_id=promotion.release_id,
        actor=actor,
        outcome=promotion.status,
        summary=f"{repository}: release {promotion.release_id} {what}",
        detail={"promotion_id": promotion.id, "stage": promotion.stage, **detail},
        session=object_session(promotion),
    )


def _after_commit(session: Session, write: Callable[[], None]) -> None:
    pending = session.info.setdefault(_PENDING, [])
    if not sa_event.contains(session, "after_commit", _write_pending):
        sa_event.listen(session, "after_commit", _write_pending)
        sa_event.listen(session, "after_rollback", _drop_pending)
    pending.append(write)


def _write_pending(session: Session) -> None:
    # The events of one transaction (a publish, its sync run) and those its hooks record go in one insert.
    with batched():
        for write in session.info.pop(_PENDING, []):
            write()


def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


@contextmanager
def batched() -> Iterator[None]:
    """Within the block, events wait and go in with one insert at its end, in the order they were recorded (a
    sync's validation, publish and sync events: one transaction, not three). Nested blocks add to the outermost
    one."""
    if getattr(_batch, "rows", None) is not None:
        yield
        return
    _batch.rows = []
    try:
        yield
    finally:
        rows, _batch.rows = _batch.rows, None
        _insert_rows(rows)


def _insert(row: dict) -> None:
    rows = getattr(_batch, "rows", None)
    if rows is not None:
        rows.append(row)
    else:
        _insert_rows([row])


def _insert_rows(rows: list[dict]) -> None:
    if not rows:
        return
    try:
        with session_scope() as session:
            session.execute(insert(Event), rows)  # one statement: the ORM's unit of work adds nothing here
    except Exception:  # the feed is a record of the work, never a reason for the work to fail
        what = ", ".join(f"a {row['kind']} event of {row['repository']}" for row in rows)
        log.exception("could not record %s", what)


# -- redaction -------------------------------------------------------------------------------------------------
def scrub(text: str) -> str:
    """`text` without secret values, URL credentials or token-looking words."""
    text = redact_text(text)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2) if m.re.groups > 1 else ''}***", text)
    return text


def scrub_value(value):
    """Scrub every string inside a JSON-like value."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {str(k): scrub_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_value(v) for v in value]
    return value


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- read ------------------------------------------------------------------------------------------------------
# Without the ORM (store/reads.py): one implementation for every face, and `dagops events` loads no SQLAlchemy.
list_events = reads.list_events
recent_events = reads.recent_events
event_dict = reads.event_dict
parse_time = reads.parse_time
