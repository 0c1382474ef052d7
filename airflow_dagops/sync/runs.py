"""Sync run bookkeeping: a run is recorded before any work, continued by the Airflow task a request triggered, and
always closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from airflow_dagops import paths, settings
from airflow_dagops.airflow import bridge as airflow_bridge
from airflow_dagops.errors import Conflict, DagOpsError, InvalidInput, NotFound
from airflow_dagops.redaction import redact_text
from airflow_dagops.statuses import SyncRunStatus
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Repository, SyncRun, utcnow
from airflow_dagops.store.queries import MAX_ID, get_row, load_repository, newest_first
from airflow_dagops.store.views import sync_run_dict

log = logging.getLogger(__name__)


TRIGGERS = ("schedule", "manual", "webhook", "cli")


def claim_queued(session: Session, repository_id: int, airflow_run_id: str | None) -> SyncRun | None:
    """The row `request_sync` wrote when it triggered this Airflow run: the task continues that row, so
    the run id the API answered with follows the sync to its end."""
    if not airflow_run_id:
        return None
    return session.scalar(
        select(SyncRun).where(
            SyncRun.repository_id == repository_id,
            SyncRun.airflow_run_id == airflow_run_id,
            SyncRun.status == SyncRunStatus.QUEUED,
        )
    )


def finish_run(run_id, status, commit, release_id, error: str | None = None, *, code: str | None = None):
    with session_scope() as session:
        run = get_row(session, SyncRun, run_id, what="sync run")
        run.status = status
        run.commit_sha = commit or run.commit_sha
        run.release_id = release_id
        run.error = redact_text(error) if error else None
        run.error_code = code if error else None
        run.ended_at = utcnow()
    from airflow_dagops.events import feed as events  # lazy: reads that reconcile runs (repos list) need no feed

    events.record_sync_run(run_id)


def record_run(snapshot, trigger, airflow_run_id, status, commit, release_id, error=None, code=None) -> int:
    """Record a run that did no work (unchanged, pinned, failed before the lock) in one write."""
    with session_scope() as session:
        now = utcnow()
        run = claim_queued(session, snapshot.id, airflow_run_id) or SyncRun(
            repository_id=snapshot.id, trigger=trigger, airflow_run_id=airflow_run_id, started_at=now
        )
        run.status, run.commit_sha, run.release_id, run.ended_at = status, commit, release_id, now
        run.error = redact_text(error) if error else None
        run.error_code = code if error else None
        session.add(run)
        session.flush()
        from airflow_dagops.events import feed as events  # lazy: reads that reconcile runs (repos list) need no feed

        events.record_sync_run(run.id, session=session)
        return run.id


def request_sync(
    name: str,
    *,
    actor: str,
    force: bool = False,
    trigger: str = "manual",
    commit: str | None = None,
    coalesce: bool = False,
) -> dict:
    """Ask Airflow to sync one repository now: records a queued run and triggers `dagops_sync` for it.
    No git work happens here; the sync task continues the queued run (see `claim_queued`).

    Without `coalesce` (a person pressing "Sync Now"), an open run is a 409. With it (webhooks), a burst
    of requests keeps at most one running and one queued run per repository: a queued run that has not
    started will fetch the newest head anyway, so a request arriving meanwhile joins it (`coalesced`).
    """

    if trigger not in TRIGGERS:
        raise InvalidInput(f"unknown trigger {trigger!r}; one of {', '.join(TRIGGERS)}")
    from airflow_dagops.deploy.locks import repository_lock  # lazy: reads that reconcile runs take no lock

    # Serialises check-then-insert across threads and processes (the sync itself holds another lock).
    with repository_lock(paths.locks_dir(), f"{name}.requests", timeout=settings.get_int("lock_timeout")):
        with session_scope() as session:
            repo = load_repository(session, name)
            open_runs = session.scalars(
                select(SyncRun).where(SyncRun.repository_id == repo.id, SyncRun.status.in_(SyncRunStatus.active()))
            ).all()
            queued = next((run for run in open_runs if run.status == SyncRunStatus.QUEUED), None)
            if coalesce and queued is not None:
                log.info("%s: sync request from %s joins queued sync %d", name, actor, queued.id)
                return {**sync_run_dict(queued, name), "coalesced": True}
            if open_runs and not coalesce:
                busy = open_runs[0]
                raise Conflict(
                    f"a sync of {name!r} is already {busy.status} (sync {busy.id}); wait for it to finish",
                    details={"sync_id": busy.id, "airflow_run_id": busy.airflow_run_id},
                )
            airflow_run_id = f"dagops__{name}__{utcnow().strftime('%Y%m%dT%H%M%S.%fZ')}"
            run = SyncRun(
                repository_id=repo.id, trigger=trigger, status=SyncRunStatus.QUEUED, airflow_run_id=airflow_run_id
            )
            session.add(run)
            session.flush()
            run_id = run.id
        conf = {"repository": name, "force": force, "trigger": trigger, "requested_by": actor}
        if commit:
            conf["commit"] = commit  # informative: the sync publishes the ref's head when it runs
        try:
            airflow_bridge.trigger_sync(run_id=airflow_run_id, conf=conf, user=actor)
        except DagOpsError as err:
            finish_run(run_id, SyncRunStatus.FAILED, None, None, str(err), code=err.code)
            raise
        except Exception as err:
            finish_run(
                run_id, SyncRunStatus.FAILED, None, None, f"Airflow refused the run: {err}", code="airflow_unavailable"
            )
            raise
    log.info("%s asked for a sync of %s (Airflow run %s)", actor, name, airflow_run_id)
    return {**get_sync_run(run_id), "coalesced": False}


def reconcile_sync_runs(name: str | None, airflow_states: Callable[[list[str]], dict[str, str]]) -> int:
    """Close queued/running runs (of one repository, or all) whose Airflow run already ended without them
    (a task killed before it could record anything), so nothing shows 'syncing' forever. Returns how many."""
    with session_scope() as session:
        query = select(SyncRun).where(SyncRun.status.in_(SyncRunStatus.active()), SyncRun.airflow_run_id.is_not(None))
        if name is not None:
            query = query.where(SyncRun.repository_id == load_repository(session, name).id)
        open_runs = session.scalars(query).all()
        if not open_runs:
            return 0
        # The query keeps only runs with an Airflow run id.
        states = airflow_states([run.airflow_run_id for run in open_runs if run.airflow_run_id is not None])
        closed = 0
        for run in open_runs:
            if run.airflow_run_id is not None and states.get(run.airflow_run_id) in ("success", "failed"):
                run.status, run.ended_at, run.error_code = SyncRunStatus.FAILED, utcnow(), "unexpected"
                run.error = f"Airflow run {run.airflow_run_id} ended without finishing this sync; see its task log"
                closed += 1
        return closed


def list_sync_runs(name: str, *, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    with session_scope() as session:
        runs, total = newest_first(session, SyncRun, load_repository(session, name), limit, offset)
        return [sync_run_dict(run, name) for run in runs], total


def get_sync_run(run_id: int) -> dict:
    with session_scope() as session:
        run = session.get(SyncRun, run_id) if 0 < run_id <= MAX_ID else None
        if run is None:
            raise NotFound(f"no sync run with id {run_id}")
        return sync_run_dict(run, get_row(session, Repository, run.repository_id).name)
