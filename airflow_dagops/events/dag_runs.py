"""Outcomes of DAG runs of published DAGs, read from Airflow's REST API into the event feed (`dag_run` events).

The `dagops_events` system DAG calls `collect` every `[dagops] events_interval` seconds. Task code may not
query Airflow's metadata DB, so runs come through the REST API, with the client and connection promotion checks
use (airflow_dagops/airflow/rest_client.py, `[dagops] airflow_api_conn_id`).

Which DAGs: those of every live release, from the DAG list validation recorded for it; a release without one
(the structure step skipped) is asked of Airflow by the tag the cluster policy gives its DAGs
(`dagops-repo:<repository>`). Which runs: those that ended after the stored cursor (the newest end date seen,
kept in `dagops_state`). Runs can become visible slightly out of end-date order, so each read looks back a
little further (OVERLAP) and skips the runs it recorded already.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from airflow_dagops.airflow.rest_client import (
    AirflowApiRunSource,
)
from airflow_dagops.events import feed as events
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release, Repository, StoredState, utcnow

log = logging.getLogger(__name__)

CURSOR_KEY = "dag_run_events"
OVERLAP = timedelta(minutes=2)
FIRST_LOOK_BACK = timedelta(hours=1)  # the first collection records the last hour, not all history


@dataclass(frozen=True)
class PublishedDag:
    repository: str
    namespace: str
    release_id: int


def collect(source_factory: Callable[[], AirflowApiRunSource], *, now: datetime | None = None) -> int:
    """Record the DAG runs of published DAGs that ended since the last collection; returns how many."""
    now = now or utcnow()
    published = _published_dags()
    if not published:
        return 0  # nothing published: no API call, no connection needed
    source = source_factory()
    _add_tagged(source, published)
    by_dag = {dag_id: where for dag_id, where in published.items() if dag_id}
    state = _read_cursor()
    last_end = _time(state.get("last_end")) or now - FIRST_LOOK_BACK
    seen = set(state.get("recent") or [])
    runs = source.finished_runs(sorted(by_dag), end_date_gt=last_end - OVERLAP)
    runs = sorted((r for r in runs if r.get("end_date")), key=lambda r: (_ended(r), r["dag_run_id"]))
    recorded = 0
    for run in runs:
        key = f"{run['dag_id']}/{run['dag_run_id']}"
        if key in seen or run["dag_id"] not in by_dag:
            continue
        _record(run, by_dag[run["dag_id"]])
        seen.add(key)
        recorded += 1
    newest = max([last_end, *(_ended(r) for r in runs)])
    recent = sorted(k for k in seen if _key_recent(k, runs, newest - OVERLAP))
    _write_cursor({"last_end": newest.isoformat(), "recent": recent})
    return recorded


def _published_dags() -> dict[str, PublishedDag]:
    """dag_id -> where it is published, from every live release's DAG list. Releases without a list are kept
    under the key "" + repository, to be asked of Airflow by tag."""
    found: dict[str, PublishedDag] = {}
    with session_scope() as session:
        rows = (
            session.execute(
                select(
                    Repository.name, Repository.namespace, Release.id, Release.validation_summary, Release.hidden_files
                ).join(Release, Release.id == Repository.live_release_id)
            )
            .tuples()
            .all()
        )
    for name, namespace, release_id, summary, hidden in rows:
        where = PublishedDag(name, namespace, release_id)
        dags = (summary or {}).get("dags")
        if dags is None or (summary or {}).get("structure") is False:  # structure step skipped: no DAG list
            found[f"\0{name}"] = where  # no DAG list: ask Airflow for the repository's tag
            continue
        for dag in dags:
            if dag.get("file") not in (hidden or {}):
                found[dag["dag_id"]] = where
    return found


def _add_tagged(source: AirflowApiRunSource, published: dict[str, PublishedDag]) -> None:
    for key in [k for k in published if k.startswith("\0")]:
        where = published.pop(key)
        for dag_id in source.tagged_dags(f"dagops-repo:{where.repository}"):
            published.setdefault(dag_id, where)


def _record(run: dict, where: PublishedDag) -> None:
    state = run["state"]
    events.record(
        "dag_run",
        repository=where.repository,
        release_id=where.release_id,
        actor="airflow",
        outcome=state,
        summary=f"{where.repository}: {run['dag_id']} run {run['dag_run_id']} {state}",
        detail={
            "dag_id": run["dag_id"],
            "run_id": run["dag_run_id"],
            "state": state,
            "namespace": where.namespace,
            "run_type": run.get("run_type"),
            "start_date": run.get("start_date"),
            "end_date": run.get("end_date"),
        },
    )


def _key_recent(key: str, runs: list[dict], horizon: datetime) -> bool:
    """Keep a seen run's key while it can still come back through the overlap window."""
    ends = [_ended(r) for r in runs if f"{r['dag_id']}/{r['dag_run_id']}" == key]
    return bool(ends) and max(ends) >= horizon


def _time(value: str | None) -> datetime | None:
    return _parse_time(value) if value else None


def _ended(run: dict) -> datetime:
    """When a finished run ended: only runs with an `end_date` are kept."""
    return _parse_time(run["end_date"])


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _read_cursor() -> dict:
    with session_scope() as session:
        row = session.get(StoredState, CURSOR_KEY)
        return dict(row.value or {}) if row else {}


def _write_cursor(value: dict) -> None:
    with session_scope() as session:
        row = session.get(StoredState, CURSOR_KEY)
        if row is None:
            session.add(StoredState(key=CURSOR_KEY, value=value))
        else:
            row.value = value
