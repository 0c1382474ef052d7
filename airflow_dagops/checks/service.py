"""Pull-request checks, as use cases: queue one (webhook), run it (the `dagops_validate` task), read it (API).

A check puts the head of a pull/merge request through the one gate a sync's new commit goes through
(releases/gate.py, purpose PULL_REQUEST: validation, dag_id conflicts, skip-files, dependency conflicts, the
isolated environment, the repository's own tests), so a green check is a commit the sync will publish. It only
asks: a dependency conflict is computed without telling the other repository's live release, the isolated
environment is never built (only what can be known without building it), and nothing is published: the head is
exported into a temporary folder under `<dagops_home>/tmp/`, never into the releases folder, and removed
afterwards (or, if the process was killed, by the next check or sense step: `airflow_dagops/tempdirs.py`).
The result goes back to the Git host as a commit status ("pending" when queued, then success or
failure), with a link to the report page `/pluginsv2/dagops/checks/{id}` (its data: `GET .../api/v1/checks/{id}`).

Reporting never fails a check or a webhook: a refused or unreachable status call is kept in
`report_error` (without the token) for the operator to see.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from airflow_dagops import paths, settings, tempdirs
from airflow_dagops.airflow import bridge as airflow_bridge
from airflow_dagops.deploy.releases import export_release
from airflow_dagops.errors import DagOpsError, NotFound
from airflow_dagops.git import host_api as commit_status
from airflow_dagops.git.host_api import PullRequest
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.redaction import redact_text as redact
from airflow_dagops.releases.gate import GatePurpose, check_tree
from airflow_dagops.statuses import CheckStatus
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import CheckRun, Release, Repository, iso_time, utcnow
from airflow_dagops.store.queries import get_row
from airflow_dagops.wording import plural

log = logging.getLogger(__name__)

CHECK_REFS = "refs/dagops/checks"  # where pull request heads are fetched to, one ref per check
API_PATH = "/pluginsv2/dagops/checks"  # the report page (airflow_dagops/www), which reads GET .../api/v1/checks/{id}
MAX_ID = 2**31 - 1
Progress = Callable[[str], None]


# -- queue (the webhook) ---------------------------------------------------------------------------------------
def queue_check(name: str, provider: str, pull: PullRequest, *, actor: str) -> dict:
    """Record a queued check of a pull request head, start a `dagops_validate` run for it, mark the commit
    "pending". A head already checked (a reopened pull request) is not checked again."""
    with session_scope() as session:
        repo = _load_repository(session, name)
        existing = session.scalar(
            select(CheckRun).where(
                CheckRun.repository_id == repo.id,
                CheckRun.number == pull.number,
                CheckRun.head_sha == pull.head_sha,
                CheckRun.status != CheckStatus.ERROR,
            )
        )
        if existing is not None:
            return {**_check_dict(existing, name), "duplicate": True}
        check = CheckRun(
            repository_id=repo.id,
            provider=provider,
            number=pull.number,
            ref=pull.fetch_ref,
            head_sha=pull.head_sha,
            status=CheckStatus.QUEUED,
        )
        session.add(check)
        session.flush()
        check.airflow_run_id = f"dagops_validate__{name}__{pull.number}__{utcnow().strftime('%Y%m%dT%H%M%S.%fZ')}"
        check_id, run_id = check.id, check.airflow_run_id
    try:
        airflow_bridge.trigger_dag(
            airflow_bridge.VALIDATE_DAG_ID, run_id=run_id, conf={"check_run": check_id}, user=actor
        )
    except Exception as err:
        _finish(check_id, CheckStatus.ERROR, error=f"Airflow refused the dagops_validate run: {err}")
        raise
    report(check_id, quick=True)
    log.info("%s queued check %d of %s #%d at %s", actor, check_id, name, pull.number, pull.head_sha[:12])
    return {**get_check(check_id), "duplicate": False}


# -- run (the dagops_validate task) ------------------------------------------------------------------------------
def run_check(check_id: int, *, progress: Progress | None = None) -> dict:
    """Fetch the pull request head into the repository's mirror, export it to a temporary folder, put it through
    the gate as a sync would (read-only), store the result and report it. Returns the check; its status is
    success, failure or error."""
    progress = progress or (lambda _step: None)
    with session_scope() as session:
        check = _load_check(session, check_id)
        repo = get_row(session, Repository, check.repository_id)
        live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
        check.status = CheckStatus.RUNNING
        check.error, check.summary, check.findings, check.finished_at = None, None, None, None
        target = _Target(repo.id, repo.name, repo.namespace, repo.url, repo.conn_id, repo.subdir)
        ref, sha, live_path = check.ref, check.head_sha, Path(live.path) if live else None
    report(check_id)
    local_ref = f"{CHECK_REFS}/{check_id}"
    mirror = Mirror(path=paths.mirror_dir(target.name), url=target.url, conn_id=target.conn_id)
    work = _work_dir(check_id)
    try:
        progress(f"fetching {ref}")
        mirror.fetch_into(ref, local_ref)
        mirror.commit_info(sha)  # the head this check is about, even if the pull request moved on since
        progress(f"exporting {sha[:12]}")
        export = export_release(
            mirror=mirror,
            sha=sha,
            subdir=target.subdir,
            dest=work / "tree",
            base=live_path,  # unchanged files become hard links: a 1-file change costs one blob
            max_size=settings.get_int("max_repo_size"),
            metadata={"repository": target.name, "check_run": check_id, "ref": ref},
        )
        result = check_tree(
            work / "tree",
            repository_id=target.id,
            namespace=target.namespace,
            purpose=GatePurpose.PULL_REQUEST,
            extra_findings=export.findings,
            progress=progress,
        )
        summary = {**result.summary(), "files_with_errors": len({f.file for f in result.errors if f.file})}
        _finish(
            check_id,
            CheckStatus.SUCCESS if result.passed else CheckStatus.FAILURE,
            summary=summary,
            findings=[f.to_dict() for f in result.findings],
        )
    except DagOpsError as err:
        _finish(check_id, CheckStatus.ERROR, error=redact(str(err)))
    except Exception as err:
        log.exception("check %d crashed", check_id)
        _finish(check_id, CheckStatus.ERROR, error=redact(f"unexpected error: {type(err).__name__}: {err}"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        mirror.drop_ref(local_ref)
    report(check_id)
    return get_check(check_id)


@dataclass(frozen=True)
class _Target:
    """The repository fields a check needs, read in one transaction (no session is held across git work)."""

    id: int
    name: str
    namespace: str
    url: str
    conn_id: str | None
    subdir: str | None


def _work_dir(check_id: int) -> Path:
    """A fresh folder on the file system of the releases (so hard links from the live release work), but
    outside the releases folder: nothing there is ever published or pruned by a sync. Named after its owning
    process, so the trees of checks whose process was killed are removed (here, before each check)."""
    tempdirs.sweep()
    return tempdirs.make_temp_dir(f"check-{check_id}-")


def _finish(check_id: int, status: CheckStatus, *, summary=None, findings=None, error: str | None = None) -> None:
    with session_scope() as session:
        check = _load_check(session, check_id)
        check.status, check.summary, check.findings, check.error = status, summary, findings, error
        check.finished_at = utcnow()


# -- report (commit status) ----------------------------------------------------------------------------------------
def report(check_id: int, *, quick: bool = False) -> bool:
    """Send the check's current state as a commit status. Never raises: a failure is kept in `report_error`.
    `quick` (inside a webhook request) waits less for the Git host."""
    with session_scope() as session:
        check = _load_check(session, check_id)
        repo = get_row(session, Repository, check.repository_id)
        provider, url, conn_id = check.provider, repo.url, repo.conn_id
        status = commit_status.CommitStatus(
            sha=check.head_sha,
            state=check.status,
            description=describe(check),
            target_url=check_url(check_id),
            context=commit_status.status_context(session, repo.id, repo.name, repo.url),
        )
    try:
        timeout = commit_status.QUICK_TIMEOUT if quick else commit_status.REPORT_TIMEOUT
        commit_status.post(commit_status.endpoint_for(provider, url, conn_id), status, timeout=timeout)
        error = None
    except commit_status.ReportError as err:
        error = str(err)
    except Exception as err:  # reporting is best effort by design; say what broke, keep going
        error = redact(f"unexpected error while reporting: {type(err).__name__}")
    with session_scope() as session:
        check = _load_check(session, check_id)
        check.reported, check.report_error = error is None, error
    if error:
        log.warning("check %d: the %s commit status was not sent: %s", check_id, status.state, error)
    return error is None


def describe(check: CheckRun) -> str:
    """The commit status description: short, because the Git host shows one line."""
    if check.status == CheckStatus.QUEUED:
        return "Queued for validation"
    if check.status == CheckStatus.RUNNING:
        return "Validating"
    if check.status == CheckStatus.ERROR:
        first = (check.error or "unknown error").splitlines()[0]
        return f"Could not validate: {first}"[: commit_status.MAX_DESCRIPTION]
    summary = check.summary or {}
    errors, warnings = summary.get("errors", 0), summary.get("warnings", 0)
    if check.status == CheckStatus.FAILURE:
        files = summary.get("files_with_errors", 0)
        return f"{plural(errors, 'error')} in {plural(files, 'file')}"
    return f"Passed with {plural(warnings, 'warning')}" if warnings else "Passed"


def check_url(check_id: int) -> str:
    """The check's report, as an absolute URL for the Git host's "Details" link (`[api] base_url`)."""
    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")
    return f"{base}{API_PATH}/{check_id}"


# -- read (the API) ----------------------------------------------------------------------------------------------
def reconcile_check(check_id: int, airflow_states: Callable[[list[str]], dict[str, str]]) -> bool:
    """Close a queued/running check whose Airflow run already ended without it (a worker killed before the
    task could record anything), so it never shows 'queued' forever. Returns whether it was closed."""
    with session_scope() as session:
        check = _load_check(session, check_id)
        if check.status not in CheckStatus.active() or not check.airflow_run_id:
            return False
        if airflow_states([check.airflow_run_id]).get(check.airflow_run_id) not in ("success", "failed"):
            return False
        check.status, check.finished_at = CheckStatus.ERROR, utcnow()
        check.error = f"Airflow run {check.airflow_run_id} ended without finishing this check; see its task log"
        return True


def get_check(check_id: int) -> dict:
    with session_scope() as session:
        check = _load_check(session, check_id)
        return _check_dict(check, get_row(session, Repository, check.repository_id).name)


def _load_check(session, check_id: int) -> CheckRun:
    check = session.get(CheckRun, check_id) if 0 < check_id <= MAX_ID else None
    if check is None:
        raise NotFound(f"no check with id {check_id}")
    return check


def _load_repository(session, name: str) -> Repository:
    repo = session.scalar(select(Repository).where(Repository.name == name))
    if repo is None:
        raise NotFound(f"no repository named {name!r} is registered; see `dagops repos list`")
    return repo


def _check_dict(check: CheckRun, repository: str) -> dict:
    return {
        "id": check.id,
        "repository": repository,
        "provider": check.provider,
        "number": check.number,
        "ref": check.ref,
        "head_sha": check.head_sha,
        "status": check.status,
        "description": describe(check),
        "summary": check.summary,
        "findings": check.findings or [],
        "error": check.error,
        "reported": check.reported,
        "report_error": check.report_error,
        "airflow_run_id": check.airflow_run_id,
        "created_at": iso_time(check.created_at),
        "finished_at": iso_time(check.finished_at),
    }
