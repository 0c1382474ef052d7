"""The MCP tools' work: each calls the services the REST routes (airflow_dagops/api) call, with the same
permission the REST route needs, and renders the answer. No logic of their own beyond choosing what to show.

Every function takes the `Caller` first; server.py checks `PERMISSION[name]` before calling it, so a function here
never runs for a caller without that right. A tool that asks Airflow's REST API (trigger, run status, logs) does
so as the caller (airflow/dag_runs_api.py): Airflow's own per-DAG checks apply on top.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from airflow_dagops.airflow import bridge as airflow_bridge
from airflow_dagops.airflow.dag_runs_api import DagRunsApi
from airflow_dagops.assist import conventions as conventions_service
from airflow_dagops.assist import drafts, run_results
from airflow_dagops.assist import search as dag_search
from airflow_dagops.errors import Forbidden, InvalidInput, NotFound
from airflow_dagops.events import feed as events
from airflow_dagops.health import service as health_service
from airflow_dagops.marketplace import installs, listing
from airflow_dagops.proposals import service as proposals
from airflow_dagops.releases import diff as diff_service
from airflow_dagops.releases import rollback as rollbacks
from airflow_dagops.repositories import info as repo_info
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release, Repository
from airflow_dagops.store.views import RepositoryInfo
from airflow_dagops.sync.runs import reconcile_sync_runs, request_sync

log = logging.getLogger(__name__)

# The REST API's permission for the same work (api/blueprint.py: GET is read, anything else write; docs/api.md).
# `validate_dag` imports code in the sandbox on the server, as a proposal does: the right to propose.
PERMISSION = {
    "list_repositories": "read",
    "get_repository": "read",
    "search_dags": "read",
    "repository_conventions": "read",
    "validate_dag": "write",
    "propose_files": "write",
    "sync_repository": "write",
    "rollback_repository": "read",  # the dry run (GET /repositories/{name}/diff); rolling back checks write
    "search_marketplace": "read",
    "install_package": "write",
    "trigger_dag": "read",  # and Airflow's own "create a run of this DAG" for the caller's token
    "dag_run_status": "read",  # and Airflow's own "read this DAG's runs and logs"
    "recent_events": "read",
    "dag_run_results": "read",
}
# The tools that change something (a rollback only without dry_run): refused to a caller without write.
WRITE_TOOLS = frozenset(["validate_dag", "propose_files", "sync_repository", "rollback_repository", "install_package"])


@dataclass(frozen=True)
class Caller:
    """Who calls: `name` is the actor recorded with what they do; `allowed(action)` is the REST API's check
    (api/auth.is_allowed) over HTTP, or always true over stdio (the CLI's rights); `airflow_token` is their
    Airflow JWT for Airflow's REST API (None: the `[dagops] airflow_api_conn_id` login, over stdio)."""

    name: str
    airflow_token: str | None
    allowed: Any = field(repr=False)

    def require(self, action: str) -> None:
        if not self.allowed(action):
            raise Forbidden(f"your Airflow role does not allow this ({action}); see docs/assistants.md")


# -- repositories ------------------------------------------------------------------------------------------------
def list_repositories(caller: Caller) -> dict:
    reconcile_sync_runs(None, airflow_bridge.sync_run_states)
    repos = repo_info.list_repositories()
    health = health_service.health_of([r.name for r in repos])
    items = [_repository(r, health.get(r.name)) for r in repos]
    return {"repositories": items, "total": len(items)}


def get_repository(caller: Caller, name: str) -> dict:
    reconcile_sync_runs(name, airflow_bridge.sync_run_states)
    info = repo_info.get_repository(name)
    namespace, dags = rollbacks.live_dags(name)
    release = rollbacks.get_release(info.live_release_id) if info.live_release_id else None
    return {
        **_repository(info, health_service.health_of([name]).get(name)),
        "live_release": _release(release) if release else None,
        "dags": [{"dag_id": d["dag_id"], "file": d.get("file")} for d in dags],
        "findings": (release or {}).get("findings") or [],
        "import_errors": _import_errors(namespace),
    }


def _repository(info: RepositoryInfo, health: dict | None) -> dict:
    return {
        "name": info.name,
        "url": info.url,  # display form: no userinfo (store/views.py)
        "ref": info.ref,
        "subdir": info.subdir,
        "namespace": info.namespace,
        "enabled": info.enabled,
        "status": info.status,
        "status_message": info.status_message,
        "live_commit": info.live_commit,
        "live_release_id": info.live_release_id,
        "live_message": info.live_message,
        "pinned_release_id": info.pinned_release_id,
        "dag_count": info.dag_count,
        "last_sync": info.last_sync,
        "health": health,
    }


def _release(release: dict) -> dict:
    return {key: value for key, value in release.items() if key != "findings"}


def _import_errors(namespace: str) -> list[dict]:
    """Airflow's import errors of the namespace; [] where this process cannot read Airflow's DB."""
    try:
        entries = airflow_bridge.import_errors(namespace)
    except Exception as err:  # no Airflow DB here (a stdio server without it): the rest of the answer stands
        log.info("import errors of %s unavailable: %s", namespace, type(err).__name__)
        return []
    return [{"file": e.filename, "stack_trace": e.stack_trace[-2000:]} for e in entries]


# -- writing DAGs that fit ---------------------------------------------------------------------------------------
def search_dags(caller: Caller, query: str, limit: int = 10, kind: str | None = None) -> dict:
    results = dag_search.search(query, limit=limit, kind=kind)
    return {"query": query, "results": results, "total": len(results)}


def repository_conventions(caller: Caller, name: str) -> dict:
    return conventions_service.conventions(name)


def validate_dag(caller: Caller, files: list[Any], repository: str | None = None) -> dict:
    return drafts.validate_draft(files, repository=repository)


def propose_files(
    caller: Caller, repository: str, files: list[Any], title: str, description: str | None = None
) -> dict:
    return proposals.propose(repository, files, title=title, description=description, actor=caller.name)


# -- moving releases -------------------------------------------------------------------------------------------
def sync_repository(caller: Caller, name: str, force: bool = False) -> dict:
    return request_sync(name, actor=caller.name, force=force)


def rollback_repository(
    caller: Caller, name: str, release: str | None = None, dry_run: bool = True, pin: bool = False
) -> dict:
    """The dry run is `GET /repositories/{name}/diff` (read); the rollback itself `POST .../rollback` (write)."""
    target: int | str | None = int(release) if release and release.isdigit() else release
    if dry_run:
        return {"dry_run": True, "diff": diff_service.live_diff(name, target, rollback=True)}
    caller.require("write")
    info = rollbacks.rollback(name, target, actor=caller.name, pin=pin)
    return {"dry_run": False, "repository": _repository(info, health_service.health_of([name]).get(name))}


# -- marketplace -----------------------------------------------------------------------------------------------
def search_marketplace(caller: Caller, query: str = "", limit: int = 20) -> dict:
    items = listing.search(query, limit=limit)
    return {"query": query, "packages": items, "total": len(items)}


def install_package(
    caller: Caller, name: str, version: str | None = None, namespace: str | None = None, force: bool = False
) -> dict:
    """As `POST /marketplace/packages/{name}/install`: registered without git work, then a dagops_sync run
    validates and publishes it; if Airflow refuses that run, the install is undone."""
    installed = installs.install(name, version=version, namespace=namespace, actor=caller.name, sync=False, force=force)
    try:
        sync = request_sync(installed["repository"], actor=caller.name)
    except Exception:
        try:
            installs.uninstall(name, actor=caller.name)
        except Exception:  # the first error is the answer; this one only goes to the log
            log.exception("mcp: could not undo the install of %s after Airflow refused its sync", name)
        raise
    return {**installed, "sync": sync, "airflow_run_id": sync.get("airflow_run_id")}


# -- running published DAGs ----------------------------------------------------------------------------------------
def trigger_dag(caller: Caller, dag_id: str, conf: dict | None = None) -> dict:
    where = published_dag(dag_id)
    api = DagRunsApi.for_caller(caller.airflow_token)
    run = api.trigger(dag_id, conf or {}, note=f"triggered through dagops MCP by {caller.name}")
    paused = api.paused(dag_id)
    answer = {
        **where,
        "dag_id": dag_id,
        "run_id": run.get("dag_run_id"),
        "state": run.get("state"),
        "airflow_url": airflow_bridge.run_url(dag_id, run.get("dag_run_id") or ""),
    }
    if paused:
        answer["note"] = "the DAG is paused in Airflow: the run waits until someone unpauses it"
    return answer


def dag_run_status(caller: Caller, dag_id: str, run_id: str) -> dict:
    where = published_dag(dag_id)
    return {**where, **DagRunsApi.for_caller(caller.airflow_token).outcome(dag_id, run_id)}


def published_dag(dag_id: str) -> dict:
    """Which repository's live release publishes `dag_id` (NotFound otherwise): the tools run only DAGs that
    came through dagops, as the event feed follows only those."""
    if not isinstance(dag_id, str) or not dag_id or len(dag_id) > 250:
        raise InvalidInput("dag_id is 1 to 250 characters")
    with session_scope() as session:
        rows = (
            session.execute(
                select(
                    Repository.name, Repository.namespace, Release.id, Release.commit_sha, Release.validation_summary
                )
                .join(Release, Release.id == Repository.live_release_id)
                .order_by(Repository.name)
            )
            .tuples()
            .all()
        )
    for name, namespace, release_id, commit, summary in rows:
        if any(d.get("dag_id") == dag_id for d in (summary or {}).get("dags") or []):
            return {"repository": name, "namespace": namespace, "release_id": release_id, "commit": commit}
    raise NotFound(f"no live release of a dagops repository publishes a DAG {dag_id!r}; see search_dags")


# -- what happened -----------------------------------------------------------------------------------------------
def recent_events(caller: Caller, repository: str | None = None, after: int | None = None, limit: int = 100) -> dict:
    return events.list_events(repository=repository, after=after, limit=limit)


def dag_run_results(caller: Caller, repository: str | None = None, after: int | None = None, limit: int = 50) -> dict:
    return run_results.run_documents(repository=repository, after=after, limit=limit, outcome_of=outcome_reader(caller))


def outcome_reader(caller: Caller):
    """(dag_id, run_id) -> the run's failed task and log tail, read from Airflow as the caller."""

    def outcome_of(dag_id: str, run_id: str) -> dict:
        return DagRunsApi.for_caller(caller.airflow_token).outcome(dag_id, run_id)

    return outcome_of
