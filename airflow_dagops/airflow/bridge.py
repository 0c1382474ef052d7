"""What dagops asks of Airflow itself, from a process that has Airflow's DB (the api-server, the CLI).

Kept apart from services.py so the core stays importable and testable without Airflow's metadata DB;
task code never calls this (Airflow 3 forbids the ORM in tasks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from airflow_dagops.errors import AirflowUnavailable
from airflow_dagops.safety import display_url

log = logging.getLogger(__name__)

SYNC_DAG_ID = "dagops_sync"
VALIDATE_DAG_ID = "dagops_validate"  # pull/merge-request checks (meta_dags/dagops_validate.py)


@dataclass(frozen=True)
class ImportErrorEntry:
    filename: str
    stack_trace: str
    timestamp: datetime | None


def trigger_sync(*, run_id: str, conf: dict, user: str | None) -> str:
    """Create a `dagops_sync` run in Airflow; returns its run id. Raises AirflowUnavailable with what to do."""
    return trigger_dag(SYNC_DAG_ID, run_id=run_id, conf=conf, user=user)


def trigger_dag(dag_id: str, *, run_id: str, conf: dict, user: str | None) -> str:
    """Create a run of one of the dagops system DAGs (`dagops_sync`, `dagops_validate`); returns its run id.
    Raises AirflowUnavailable, saying what to do, when Airflow does not know the DAG or it is paused."""
    from airflow.api.common.trigger_dag import trigger_dag as airflow_trigger_dag
    from airflow.exceptions import DagNotFound
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType

    with create_session() as session:
        model = session.get(DagModel, dag_id)
        if model is None:
            raise AirflowUnavailable(
                f"Airflow does not know the {dag_id} DAG yet; run `dagops init` and wait for the "
                "dag-processor to parse it (see `airflow dags list`)"
            )
        if model.is_paused:
            raise AirflowUnavailable(
                f"the {dag_id} DAG is paused in Airflow; unpause it to {_PURPOSE.get(dag_id, 'run it')}"
            )
    try:
        dag_run = airflow_trigger_dag(
            dag_id,
            run_id=run_id,
            conf=conf,
            triggered_by=DagRunTriggeredByType.REST_API,
            triggering_user_name=user,
        )
    except DagNotFound as err:
        raise AirflowUnavailable(f"Airflow could not find the {dag_id} DAG: {err}") from err
    return dag_run.run_id if dag_run is not None else run_id


_PURPOSE = {SYNC_DAG_ID: "sync", VALIDATE_DAG_ID: "check pull requests"}


def dag_run_states(dag_id: str, run_ids: list[str]) -> dict[str, str]:
    """Airflow's state of the given runs of one DAG (run id -> state); unknown ids are left out."""
    if not run_ids:
        return {}
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(DagRun.run_id, DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id.in_(run_ids))
        ).all()
    return {str(run_id): str(state) for run_id, state in rows}


def sync_run_states(run_ids: list[str]) -> dict[str, str]:
    return dag_run_states(SYNC_DAG_ID, run_ids)


def import_errors(namespace: str) -> list[ImportErrorEntry]:
    """Import errors Airflow reports for files of one namespace (paths relative to the namespace)."""
    from airflow.models.errors import ParseImportError
    from airflow.utils.session import create_session
    from sqlalchemy import select

    prefix = f"{namespace}/"
    with create_session() as session:
        rows = session.scalars(select(ParseImportError).where(ParseImportError.filename.like(f"{prefix}%"))).all()
        # Every filename starts with the prefix (the query says so).
        return [
            ImportErrorEntry((row.filename or "")[len(prefix) :], row.stacktrace or "", row.timestamp) for row in rows
        ]


def dags_paused(dag_ids: list[str]) -> dict[str, bool]:
    """Whether each DAG is paused in Airflow (dag_id -> paused); DAGs Airflow has not parsed yet are left out."""
    if not dag_ids:
        return {}
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(DagModel.dag_id, DagModel.is_paused).where(DagModel.dag_id.in_(dag_ids))).all()
    return {str(dag_id): bool(paused) for dag_id, paused in rows}


def unpause_dags(dag_ids: list[str]) -> list[str]:
    """Unpause the given DAGs that are paused, as Airflow's own `PATCH /api/v2/dags/{dag_id}` does (it sets
    `is_paused`); returns those it unpaused."""
    if not dag_ids:
        return []
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        models = session.scalars(
            select(DagModel).where(DagModel.dag_id.in_(dag_ids), DagModel.is_paused.is_(True))
        ).all()
        for model in models:
            model.is_paused = False
        return sorted(model.dag_id for model in models)


def git_connections() -> list[dict]:
    """Airflow connections of type `git` from the metadata DB: ids, hosts without userinfo, descriptions."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(Connection.conn_id, Connection.conn_type, Connection.host, Connection.description)
            .where(Connection.conn_type == "git")
            .order_by(Connection.conn_id)
        ).all()
    return [
        {"conn_id": conn_id, "conn_type": conn_type, "host": display_url(host) if host else None, "description": desc}
        for conn_id, conn_type, host, desc in rows
    ]


def ui_base() -> str:
    """Airflow UI's path prefix (from `[api] base_url`), so links work behind a sub-path."""
    from urllib.parse import urlparse

    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="") or ""
    return urlparse(base).path.rstrip("/")


def dag_url(dag_id: str) -> str:
    return f"{ui_base()}/dags/{quote(dag_id, safe='')}"


def sync_run_url(run_id: str) -> str:
    return run_url(SYNC_DAG_ID, run_id)


def run_url(dag_id: str, run_id: str) -> str:
    return f"{ui_base()}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
