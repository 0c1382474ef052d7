"""Outcomes of DAG runs of published DAGs, read from Airflow's REST API into the event feed (`dag_run` events).

The `dagops_events` system DAG calls `collect` every `[dagops] events_interval` seconds, and an A/B experiment's
check calls it before it judges (experiments/service.py). Task code may not query Airflow's metadata DB, so runs
come through the REST API, with the client and connection promotion checks use (airflow_dagops/airflow/
rest_client.py, `[dagops] airflow_api_conn_id`).

Which DAGs: those of every live release, from the DAG list validation recorded for it; a release without one
(the structure step skipped) is asked of Airflow by the tag the cluster policy gives its DAGs
(`dagops-repo:<repository>`). Beside them, both variants' DAGs of A/B experiments that run or just ended: their
runs are recorded against the release each variant runs, and the copy the gate skipped as `skipped`
(events/experiment_runs.py).

Which runs: those that ended after the stored cursor (the newest end date seen, kept in `dagops_state`). Runs can
become visible slightly out of end-date order, so each read looks back a little further (OVERLAP) and skips the
runs it recorded already. Two collectors may run at once (dagops_events and an experiment check): the events and
the cursor are written in one transaction that first locks the cursor's row, and each skips what the other
recorded, so a run is never recorded twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol, cast

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from airflow_dagops.events import experiment_runs
from airflow_dagops.events import feed as events
from airflow_dagops.events.experiment_runs import VariantDag
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release, Repository, StoredState, utcnow

log = logging.getLogger(__name__)

CURSOR_KEY = "dag_run_events"
OVERLAP = timedelta(minutes=2)
FIRST_LOOK_BACK = timedelta(hours=1)  # the first collection records the last hour, not all history


class FinishedRuns(Protocol):
    """What the collector asks of Airflow (airflow/rest_client.py's AirflowApiRunSource answers it)."""

    def finished_runs(self, dag_ids: list[str], **since: datetime) -> list[dict]: ...

    def tagged_dags(self, tag: str) -> list[str]: ...


@dataclass(frozen=True)
class PublishedDag:
    repository: str
    namespace: str
    release_id: int | None
    experiment: VariantDag | None = None  # a variant's DAG of an A/B experiment


def collect(source_factory: Callable[[], FinishedRuns], *, now: datetime | None = None) -> int:
    """Record the DAG runs of published DAGs that ended since the last collection; returns how many."""
    window_start = _window_start(_read_cursor(), now or utcnow())
    published = _published_dags(window_start)
    if not published:
        return 0  # nothing published: no API call, no connection needed
    source = source_factory()
    _add_tagged(source, published)
    runs = source.finished_runs(sorted(published), end_date_gt=window_start)
    finished = sorted((r for r in runs if r.get("end_date")), key=lambda r: (_ended(r), r["dag_run_id"]))
    return _record_new([r for r in finished if r["dag_id"] in published], published, window_start)


def _window_start(cursor: dict, now: datetime) -> datetime:
    """Runs that ended after this are read: the cursor, less the overlap (the first collection: the last hour)."""
    last_end = _time(cursor.get("last_end"))
    return last_end - OVERLAP if last_end else now - FIRST_LOOK_BACK


def _published_dags(since: datetime) -> dict[str, PublishedDag]:
    """dag_id -> where it is published, from every live release's DAG list, and the DAGs of A/B experiments that
    run or ended after `since`. Releases without a list are kept under the key "\0" + repository, to be asked of
    Airflow by tag."""
    found: dict[str, PublishedDag] = {}
    with session_scope() as session:
        rows = session.execute(
            select(Repository.name, Repository.namespace, Release).join(
                Release, Release.id == Repository.live_release_id
            )
        ).all()
        variants = experiment_runs.variant_dags(session, since)
    for name, namespace, release in rows:
        where = PublishedDag(name, namespace, release.id)
        summary, hidden = release.validation_summary, release.hidden_files
        dags = (summary or {}).get("dags")
        if dags is None or (summary or {}).get("structure") is False:  # structure step skipped: no DAG list
            found[f"\0{name}"] = where  # no DAG list: ask Airflow for the repository's tag
            continue
        for dag in dags:
            if dag.get("file") not in (hidden or {}):
                found[dag["dag_id"]] = where
    for variant in variants:
        # Prod's DAG keeps the live release for the runs no gate recorded; the rest go to the experiment's releases.
        plain = found.get(variant.dag_id) if variant.variant == "A" else None
        base = plain or PublishedDag(variant.repository, variant.namespace, variant.release_id)
        found[variant.dag_id] = replace(base, experiment=variant)
    return found


def _add_tagged(source: FinishedRuns, published: dict[str, PublishedDag]) -> None:
    for key in [k for k in published if k.startswith("\0")]:
        where = published.pop(key)
        for dag_id in source.tagged_dags(f"dagops-repo:{where.repository}"):
            published.setdefault(dag_id, where)


def _record_new(runs: list[dict], published: dict[str, PublishedDag], window_start: datetime) -> int:
    """Record the runs no collector recorded yet, and move the cursor past them, in one transaction."""
    _ensure_cursor()
    with session_scope() as session:
        cursor = _locked_cursor(session)
        state = dict(cursor.value or {})
        last_end = _time(state.get("last_end")) or window_start
        seen = _seen(state)
        # What another collector read meanwhile: its runs are in `seen`, or ended before any window from now on.
        new = [r for r in runs if _key(r) not in seen and _ended(r) > last_end - OVERLAP]
        of_experiments = [(published[r["dag_id"]].experiment, r["dag_run_id"]) for r in new]
        owners = experiment_runs.assignments(session, [(dag, run) for dag, run in of_experiments if dag is not None])
        for run in new:
            _add_event(session, run, published[run["dag_id"]], owners)
            seen[_key(run)] = _ended(run)
        newest = max([last_end, *seen.values()])
        recent = {key: ended.isoformat() for key, ended in sorted(seen.items()) if ended >= newest - OVERLAP}
        cursor.value = {"last_end": newest.isoformat(), "recent": recent}
    return len(new)


def _locked_cursor(session: Session) -> StoredState:
    """The cursor's row, locked until the transaction ends: the first statement writes it (a row lock in
    PostgreSQL, the write lock in SQLite), so a second collector waits and then reads what the first recorded."""
    session.execute(update(StoredState).where(StoredState.key == CURSOR_KEY).values(updated_at=utcnow()))
    return session.get_one(StoredState, CURSOR_KEY, populate_existing=True)


def _ensure_cursor() -> None:
    """The cursor's row exists before anyone locks it: PostgreSQL locks no row that is not there yet."""
    with session_scope() as session:
        if session.get(StoredState, CURSOR_KEY) is not None:
            return
    try:
        with session_scope() as session:
            session.add(StoredState(key=CURSOR_KEY, value={}))
    except IntegrityError:  # another collector created it first: the same row either way
        pass


def _seen(state: dict) -> dict[str, datetime]:
    """The runs recorded lately (key -> end), from the cursor; a list of keys (before end dates were kept) counts
    as ended at the cursor."""
    recent = state.get("recent") or {}
    if isinstance(recent, list):
        last_end = _time(state.get("last_end")) or utcnow()
        return dict.fromkeys(recent, last_end)
    return {key: _at(ended) for key, ended in recent.items()}


def _add_event(
    session: Session,
    run: dict,
    where: PublishedDag,
    owners: dict[tuple[int, str, str], experiment_runs.Assignment],
) -> None:
    state, dag_id, run_id = run["state"], run["dag_id"], run["dag_run_id"]
    release_id, outcome, summary = where.release_id, state, f"{where.repository}: {dag_id} run {run_id} {state}"
    detail = {
        "dag_id": dag_id,
        "run_id": run_id,
        "state": state,
        "namespace": where.namespace,
        "run_type": run.get("run_type"),
        "start_date": run.get("start_date"),
        "end_date": run.get("end_date"),
    }
    variant = where.experiment
    found = experiment_runs.attribute(variant, state, owners.get(variant.key(run_id))) if variant else None
    if found is not None:
        release_id, outcome = found.release_id, found.outcome
        detail.update(found.detail)
        if outcome == "skipped":
            summary = f"{where.repository}: {dag_id} run {run_id} skipped: {found.why_skipped}"
    events.add_now(
        session,
        "dag_run",
        repository=where.repository,
        release_id=release_id,
        actor="airflow",
        outcome=outcome,
        summary=summary,
        detail=detail,
    )


def _key(run: dict) -> str:
    return f"{run['dag_id']}/{run['dag_run_id']}"


def _time(value: str | None) -> datetime | None:
    return events.parse_time(value) if value else None


def _ended(run: dict) -> datetime:
    """When a finished run ended: only runs with an `end_date` are kept."""
    return _at(run["end_date"])


def _at(value: str) -> datetime:
    return cast(datetime, events.parse_time(value, "end_date"))  # a non-empty time is never None


def _read_cursor() -> dict:
    with session_scope() as session:
        row = session.get(StoredState, CURSOR_KEY)
        return dict(row.value or {}) if row else {}
