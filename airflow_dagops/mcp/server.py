"""The dagops MCP server: tools and resources for assistants, on the official `mcp` SDK's FastMCP.

One server definition serves both transports; what differs is who the caller is (`Identify`):
- streamable HTTP on the api-server (mcp/http.py): the caller's Airflow JWT from `Authorization: Bearer`, resolved
  and authorized by Airflow's auth manager exactly as the REST API does (api/auth.py);
- stdio (`dagops mcp`, for a local assistant): the local user, with the rights the `dagops` CLI has.

Each tool checks the REST API's permission for the same work (tools.PERMISSION), runs the service in a worker
thread (the services are synchronous and touch the state DB), and answers JSON with every string passed through
the secret redaction (redaction.py), as a second line of defence: the services already answer no secrets. A
dagops error becomes an error result whose text is the REST API's error envelope: {"error": {code, message, details}}.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

import anyio
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ResourceError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from airflow_dagops.assist import run_results
from airflow_dagops.errors import DagOpsError
from airflow_dagops.events import feed as events
from airflow_dagops.mcp import tools
from airflow_dagops.mcp.tools import Caller
from airflow_dagops.redaction import redact_text
from airflow_dagops.store.models import utcnow

log = logging.getLogger(__name__)

Identify = Callable[[Context], Awaitable[Caller]]
RECENT = timedelta(hours=24)  # what the feed resources show: the last day

INSTRUCTIONS = """\
dagops publishes Airflow DAGs from Git repositories. To write a DAG that fits: search_dags for similar DAGs (their
operators and connections), repository_conventions for the rules its gate applies, validate_dag until it has no
errors, then propose_files (a branch and a pull request; never straight to production). trigger_dag and
dag_run_status run a published DAG and read how it went; resources dagops://events and dagops://runs say what
happened. Tools that change something need the Airflow role that may edit DAGs."""


class DraftFile(BaseModel):
    path: Annotated[str, Field(description="repository-relative, e.g. dags/backup_orders.py (under its subdir)")]
    content: Annotated[str, Field(description="the file's text")]


READ = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
WRITE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=True)


def build_server(identify: Identify, *, max_body: int = 4 * 1024 * 1024) -> FastMCP:
    mcp = FastMCP(
        "dagops",
        instructions=INSTRUCTIONS,
        stateless_http=True,  # any api-server worker answers any request: no session to keep
        json_response=True,
        streamable_http_path="/mcp",
        max_request_body_size=max_body,
        # Authentication is a Bearer header, never a cookie: a page on another site cannot make a browser send
        # one, so DNS rebinding gains nothing; the Host allow-list would only break proxies.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )

    async def answer(tool: str, work: Callable[[Caller], Any]) -> dict:
        """The work's answer, or DagOpsError (unexpected errors become one, their message only in the log)."""
        try:
            caller = await identify(mcp.get_context())
            await anyio.to_thread.run_sync(caller.require, tools.PERMISSION[tool])
            return scrubbed(await anyio.to_thread.run_sync(work, caller))
        except DagOpsError:
            raise
        except Exception as err:  # a bug's message may quote anything: the log has it, the answer does not
            log.exception("mcp tool %s failed", tool)
            raise DagOpsError(f"unexpected error ({type(err).__name__}); see the server log") from err

    async def call(tool: str, work: Callable[[Caller], Any]) -> CallToolResult:
        """A tool's result: the answer as JSON text and as structured content; a dagops error as an error result
        whose text is the REST API's envelope (FastMCP would prefix a raised error's text)."""
        try:
            data, failed = await answer(tool, work), False
        except DagOpsError as err:
            data, failed = error_body(err), True
        text = json.dumps(data, default=str)
        return CallToolResult(content=[TextContent(type="text", text=text)], structuredContent=data, isError=failed)

    # -- repositories ------------------------------------------------------------------------------------------
    @mcp.tool(annotations=READ)
    async def list_repositories() -> CallToolResult:
        """Every registered DAG repository: its live release, sync status and health (ok/stale/failing/paused)."""
        return await call("list_repositories", tools.list_repositories)

    @mcp.tool(annotations=READ)
    async def get_repository(name: str) -> CallToolResult:
        """One repository: its live release, the DAGs it publishes, the findings of the live release's validation,
        and Airflow's import errors for its files."""
        return await call("get_repository", lambda c: tools.get_repository(c, name))

    # -- writing DAGs that fit -----------------------------------------------------------------------------------
    @mcp.tool(annotations=READ)
    async def search_dags(
        query: Annotated[str, Field(description="plain language, e.g. 'a backup to S3'")],
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        kind: Annotated[str | None, Field(description="dag, package, or empty for both")] = None,
    ) -> CallToolResult:
        """Search the published DAGs of every repository and the marketplace's packages: each hit has its docs,
        tags, schedule, task ids, operators and the Airflow connections it uses. Write new DAGs like them."""
        return await call("search_dags", lambda c: tools.search_dags(c, query, limit, kind))

    @mcp.tool(annotations=READ)
    async def repository_conventions(name: str) -> CallToolResult:
        """A repository's conventions to write to: the policy of its .dagops.yaml (owners, tags, retries,
        schedule, dag_id naming, task limits) in words and as data, and what its live DAGs do."""
        return await call("repository_conventions", lambda c: tools.repository_conventions(c, name))

    @mcp.tool(annotations=WRITE)
    async def validate_dag(
        files: Annotated[list[DraftFile], Field(min_length=1, max_length=100)],
        repository: Annotated[str | None, Field(description="judge by this repository's policy")] = None,
    ) -> CallToolResult:
        """Validate DAG code given as text, as dagops validates a proposal (syntax, imports in a sandbox,
        structure, policy, security); answers passed and the findings (rule, severity, file, line, message,
        hint). Nothing is stored or pushed."""
        items = [f.model_dump() for f in files]
        return await call("validate_dag", lambda c: tools.validate_dag(c, items, repository))

    @mcp.tool(annotations=WRITE)
    async def propose_files(
        repository: str,
        files: Annotated[list[DraftFile], Field(min_length=1, max_length=100)],
        title: Annotated[str, Field(min_length=1, max_length=200)],
        description: Annotated[str | None, Field(max_length=20000)] = None,
    ) -> CallToolResult:
        """Propose files to a repository: validated against its live release first (refused with the findings,
        nothing pushed), then pushed as branch dagops/proposal-<id> with a pull request. Answers the branch,
        commit and pull-request URL."""
        items = [f.model_dump() for f in files]
        return await call("propose_files", lambda c: tools.propose_files(c, repository, items, title, description))

    # -- moving releases -----------------------------------------------------------------------------------------
    @mcp.tool(annotations=WRITE)
    async def sync_repository(name: str, force: bool = False) -> CallToolResult:
        """Sync a repository now: a dagops_sync run in Airflow fetches, validates and publishes its branch head.
        Answers the sync run (follow it with get_repository or the events)."""
        return await call("sync_repository", lambda c: tools.sync_repository(c, name, force))

    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, openWorldHint=False))
    async def rollback_repository(
        name: str,
        release: Annotated[
            str | None, Field(description="release id or commit; default: the previous good one")
        ] = None,
        dry_run: Annotated[bool, Field(description="only show what would change (the default)")] = True,
        pin: bool = False,
    ) -> CallToolResult:
        """Put an earlier release that passed validation back live. With dry_run (the default) only the diff
        from the live release: DAGs and tasks added or removed, schedule, owners, retries, tags."""
        return await call("rollback_repository", lambda c: tools.rollback_repository(c, name, release, dry_run, pin))

    # -- marketplace -----------------------------------------------------------------------------------------------
    @mcp.tool(annotations=READ)
    async def search_marketplace(query: str = "", limit: Annotated[int, Field(ge=1, le=100)] = 20) -> CallToolResult:
        """Search the DAG marketplace's packages (name, tags, summary, description); empty lists them all."""
        return await call("search_marketplace", lambda c: tools.search_marketplace(c, query, limit))

    @mcp.tool(annotations=WRITE)
    async def install_package(
        name: str, version: str | None = None, namespace: str | None = None, force: bool = False
    ) -> CallToolResult:
        """Install a marketplace package as a pinned repository; a dagops_sync run validates and publishes it.
        Refused when providers or packages it needs are missing, unless force."""
        return await call("install_package", lambda c: tools.install_package(c, name, version, namespace, force))

    # -- running published DAGs --------------------------------------------------------------------------------------
    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=False, openWorldHint=True))
    async def trigger_dag(dag_id: str, conf: dict[str, Any] | None = None) -> CallToolResult:
        """Trigger a DAG that a dagops repository publishes, with conf, as you (Airflow checks that your role may
        run this DAG). Answers the run id; read how it went with dag_run_status."""
        return await call("trigger_dag", lambda c: tools.trigger_dag(c, dag_id, conf))

    @mcp.tool(annotations=READ)
    async def dag_run_status(dag_id: str, run_id: str) -> CallToolResult:
        """A run of a published DAG: its state and dates, and if it failed, the failed task and its log tail."""
        return await call("dag_run_status", lambda c: tools.dag_run_status(c, dag_id, run_id))

    # -- what happened (also as resources) ------------------------------------------------------------------------
    @mcp.tool(annotations=READ)
    async def recent_events(
        repository: str | None = None, after: int | None = None, limit: Annotated[int, Field(ge=1, le=1000)] = 100
    ) -> CallToolResult:
        """The event feed, oldest first after the cursor `after` (an event id): syncs, validations, publishes,
        rollbacks, deploys, promotions, proposals and DAG runs. Poll with next_cursor."""
        return await call("recent_events", lambda c: tools.recent_events(c, repository, after, limit))

    @mcp.tool(annotations=READ)
    async def dag_run_results(
        repository: str | None = None, after: int | None = None, limit: Annotated[int, Field(ge=1, le=200)] = 50
    ) -> CallToolResult:
        """Finished runs of published DAGs, one document each (DAG, release, outcome, duration, failed task and
        log tail), oldest first after the cursor `after`."""
        return await call("dag_run_results", lambda c: tools.dag_run_results(c, repository, after, limit))

    _add_resources(mcp, answer)
    return mcp


def _add_resources(mcp: FastMCP, answer) -> None:
    """The event feed and the DAG run results as resources (JSON documents), read with the read permission."""

    async def read(work: Callable[[Caller], Any]) -> str:
        try:
            return json.dumps(await answer("recent_events", work), default=str)
        except DagOpsError as err:
            raise ResourceError(json.dumps(error_body(err), default=str)) from None

    @mcp.resource("dagops://events", mime_type="application/json", name="events")
    async def feed() -> str:
        """What dagops did in the last 24 hours (up to 1000 events), oldest first."""
        return await read(lambda c: events.list_events(since=utcnow() - RECENT, limit=events.MAX_LIMIT))

    @mcp.resource("dagops://events/{repository}", mime_type="application/json", name="repository-events")
    async def repository_feed(repository: str) -> str:
        """One repository's newest 100 events, newest first."""
        return await read(lambda c: {"events": events.recent_events(repository, limit=100)})

    @mcp.resource("dagops://runs", mime_type="application/json", name="dag-runs")
    async def runs() -> str:
        """Finished runs of published DAGs, one document each, oldest first (the newest 50)."""
        return await read(lambda c: run_results.newest_documents(limit=50, outcome_of=tools.outcome_reader(c)))

    @mcp.resource("dagops://runs/{dag_id}/{run_id}", mime_type="application/json", name="dag-run")
    async def one_run(dag_id: str, run_id: str) -> str:
        """One finished run's document: DAG, release, outcome, duration, failed task and log tail."""

        def work(caller: Caller) -> dict:
            found = run_results.find_run(dag_id, run_id, outcome_of=tools.outcome_reader(caller))
            return found or {"dag_id": dag_id, "run_id": run_id, "outcome": None, "note": "not recorded (yet)"}

        return await read(work)


def error_body(err: DagOpsError) -> dict:
    """The REST API's error envelope: an assistant reads `details.findings` of a refused proposal the way a
    script reads the 422."""
    return scrubbed({"error": {"code": err.code, "message": str(err), "details": getattr(err, "details", None) or {}}})


def scrubbed(value: Any) -> Any:
    """Every string of an answer with known secret values masked (redaction.py)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {scrubbed(k) if isinstance(k, str) else k: scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrubbed(v) for v in value]
    return value
