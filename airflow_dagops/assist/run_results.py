"""DAG run results, one document per finished run of a published DAG: the DAG, the release it ran from, the
outcome, how long it took, and for a failed run the task that failed and the tail of its log.

The runs are the event feed's `dag_run` events (events/dag_runs.py records them from Airflow's REST API); the
failed task and its log are asked of Airflow when a document is read (`outcome_of`: airflow/dag_runs_api.py, as
the reader, so the reader's own right to read that DAG's logs decides), since the feed keeps no logs. The MCP
resources and `dagops events --runs` serve the same documents; the cursor is the event id, as for the feed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from airflow_dagops.errors import DagOpsError
from airflow_dagops.events import feed as events
from airflow_dagops.redaction import redact_text
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Event, Release

log = logging.getLogger(__name__)

OutcomeOf = Callable[[str, str], dict]  # (dag_id, run_id) -> {"failed_task", "log_tail", ...}


def run_documents(
    *, repository: str | None = None, after: int | None = None, limit: int = 50, outcome_of: OutcomeOf | None = None
) -> dict:
    """{"runs": [document...], "next_cursor": id|None}, oldest first after the cursor `after`."""
    page = events.list_events(repository=repository, kinds=["dag_run"], after=after, limit=limit)
    commits = _commits({e["release_id"] for e in page["events"] if e.get("release_id")})
    runs = [
        document(event, commit=commits.get(event.get("release_id") or 0), outcome_of=outcome_of)
        for event in page["events"]
    ]
    return {"runs": runs, "next_cursor": page["next_cursor"]}


def newest_documents(*, limit: int = 50, outcome_of: OutcomeOf | None = None) -> dict:
    """The newest `limit` run documents, oldest first, and the cursor to poll for what follows them."""
    with session_scope() as session:
        rows = session.scalars(
            select(Event).where(Event.kind == "dag_run").order_by(Event.id.desc()).limit(int(limit))
        ).all()
        found = [events.event_dict(row) for row in reversed(rows)]
    commits = _commits({e["release_id"] for e in found if e.get("release_id")})
    runs = [document(event, commit=commits.get(event.get("release_id") or 0), outcome_of=outcome_of) for event in found]
    return {"runs": runs, "next_cursor": found[-1]["id"] if found else None}


def find_run(dag_id: str, run_id: str, *, outcome_of: OutcomeOf | None = None) -> dict | None:
    """The document of one run, if the feed recorded it (its newest record)."""
    with session_scope() as session:
        # The summary names the DAG and the run (events/dag_runs.py); the detail then confirms it exactly.
        rows = session.scalars(
            select(Event)
            .where(Event.kind == "dag_run", Event.summary.contains(f"{dag_id} run {run_id}"))
            .order_by(Event.id.desc())
            .limit(20)
        ).all()
        found = next(
            (
                events.event_dict(row)
                for row in rows
                if (row.detail or {}).get("dag_id") == dag_id and (row.detail or {}).get("run_id") == run_id
            ),
            None,
        )
    if found is None:
        return None
    commit = _commits({found["release_id"]} if found.get("release_id") else set()).get(found.get("release_id") or 0)
    return document(found, commit=commit, outcome_of=outcome_of)


def document(event: dict, *, commit: str | None = None, outcome_of: OutcomeOf | None = None) -> dict:
    detail = event.get("detail") or {}
    started, ended = _time(detail.get("start_date")), _time(detail.get("end_date"))
    doc = {
        "event_id": event["id"],
        "dag_id": detail.get("dag_id"),
        "run_id": detail.get("run_id"),
        "repository": event.get("repository"),
        "namespace": detail.get("namespace"),
        "release_id": event.get("release_id"),
        "commit": commit,
        "outcome": detail.get("state") or event.get("outcome"),
        "run_type": detail.get("run_type"),
        "started_at": detail.get("start_date"),
        "ended_at": detail.get("end_date"),
        "duration_seconds": round((ended - started).total_seconds(), 3) if started and ended else None,
        "failed_task": None,
        "log_tail": [],
    }
    if doc["outcome"] == "failed" and outcome_of is not None and doc["dag_id"] and doc["run_id"]:
        try:
            outcome = outcome_of(doc["dag_id"], doc["run_id"])
            doc["failed_task"], doc["log_tail"] = outcome.get("failed_task"), outcome.get("log_tail") or []
        except DagOpsError as err:  # the document still says what is known; why the rest is missing
            doc["log_error"] = redact_text(str(err))
    return doc


def _commits(release_ids: set[int]) -> dict[int, str]:
    if not release_ids:
        return {}
    with session_scope() as session:
        rows = session.execute(select(Release.id, Release.commit_sha).where(Release.id.in_(release_ids))).all()
    return {release_id: sha for release_id, sha in rows}


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
