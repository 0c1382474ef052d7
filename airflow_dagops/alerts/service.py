"""What happens after every finished sync run (the event feed calls `after_sync` once the run is committed:
events/feed.py `record_sync_run`, the one place every face's syncs pass):

1. A pushed commit that failed validation (or its required tests) gets a red commit status on the Git host, as a
   pull request's head does (the same `git/host_api.py` call the pull-request checks make, context
   `dagops/validate`), and a `validation_failed` alert naming its author, the files and the first errors. Once per
   commit: a forced re-sync of the same commit announces nothing new.
2. The repository's health is judged again (health/service.py) and kept in its alert state; entering `failing`
   sends a `failing` alert, a failing repository that is ok again a `recovered` one. One message per change
   (alerts/state.py claims each change by compare-and-set). Only for a repository whose alerts hear of `failing` or
   `recovered`: for any other, no one would be told, and judging costs every sync a few queries. Its alert state
   keeps the health last judged while someone listened, which the next judgement compares with.

Nothing here fails a sync: every error is logged, and a notifier's error is kept in the alert state
(`GET .../repositories/{name}/alerts`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from airflow_dagops.airflow.connections import find_connection
from airflow_dagops.alerts import state
from airflow_dagops.alerts.rules import wants
from airflow_dagops.alerts.send import Alert, send
from airflow_dagops.errors import DagOpsError, ReportError
from airflow_dagops.git import host_api
from airflow_dagops.health.service import HealthRules, RepositoryHealth, judge
from airflow_dagops.redaction import redact_text
from airflow_dagops.statuses import AlertEvent, CheckStatus, HealthState, SyncRunStatus
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Finding, Release, Repository, SyncRun
from airflow_dagops.store.queries import load_repository
from airflow_dagops.wording import plural

log = logging.getLogger(__name__)

VALIDATION_CODES = ("validation_failed", "tests_failed")
FIRST_ERRORS = 5
REPOSITORY_PAGE = "/pluginsv2/dagops/repositories"
HEALTH_EVENTS = (AlertEvent.FAILING, AlertEvent.RECOVERED)  # what a change of health announces


@dataclass(frozen=True)
class SyncRunFacts:
    """What the alerts of one finished sync run need to know (`read_run`)."""

    repository_id: int
    repository: str
    rules: dict | None
    url: str
    conn_id: str | None
    status: str
    commit: str | None
    error: str | None
    error_code: str | None
    release_id: int | None
    judged: _Judged


@dataclass(frozen=True)
class _Judged:
    """A repository's health judged now, next to what its alert state keeps, read in one transaction."""

    health: RepositoryHealth | None  # None: not judged (no one listens), or the settings cannot be read (logged)
    kept: str | None  # None: the repository has no alert state yet


def after_sync(run_id: int, run: SyncRunFacts | None = None) -> None:
    """The alerts and commit status of one finished sync run (see the module docstring), from `run` when the
    caller read it already (`read_run`, in the feed's own read of the run), else read here. Never raises."""
    try:
        run = run or _read_run(run_id)
        if run is None:
            return
        if run.status == SyncRunStatus.FAILED and run.error_code in VALIDATION_CODES and run.commit:
            _commit_failed(run)
        _health_changed(run.repository_id, run.repository, run.rules, run.judged)
    except Exception:  # alerts are about the work, never a reason for it to fail
        log.exception("alerts after sync run %s failed", run_id)


def check_health(name: str) -> AlertEvent | None:
    """Judge one repository's health again and announce a change (after a pin, an unpin, a rollback...)."""
    with session_scope() as session:
        repo = load_repository(session, name)
        repo_id, rules, judged = repo.id, repo.alerts, _judge(session, repo)
    return _health_changed(repo_id, name, rules, judged)


def _read_run(run_id: int) -> SyncRunFacts | None:
    with session_scope() as session:
        return read_run(session, run_id)


def read_run(session: Session, run_id: int) -> SyncRunFacts | None:
    """The run, its repository and, when its alerts hear of it, the repository's health, in the caller's
    transaction (on every sync: the feed reads the run for its event in the same one)."""
    run = session.get(SyncRun, run_id)
    repo = session.get(Repository, run.repository_id) if run is not None else None
    if run is None or repo is None:
        return None
    return SyncRunFacts(
        repository_id=repo.id,
        repository=repo.name,
        rules=repo.alerts,
        url=repo.url,
        conn_id=repo.conn_id,
        status=run.status,
        commit=run.commit_sha,
        error=run.error,
        error_code=run.error_code,
        release_id=run.release_id,
        judged=_judge(session, repo),
    )


# -- health --------------------------------------------------------------------------------------------------------
def _judge(session: Session, repo: Repository) -> _Judged:
    if not any(wants(repo.alerts, event) for event in HEALTH_EVENTS):
        return _Judged(None, None)  # no one hears of a change of health: nothing to judge
    try:
        health = judge(session, repo, HealthRules.from_settings())
    except DagOpsError as err:  # health settings that cannot be read: `dagops status` says so
        log.warning("no health alert for %s: %s", repo.name, err)
        health = None
    return _Judged(health, state.kept_health(session, repo.id))


def _health_changed(repo_id: int, name: str, rules: dict | None, judged: _Judged) -> AlertEvent | None:
    health = judged.health
    if health is None or state.keeps(judged.kept, health.state):
        return None  # nothing to keep or announce: no write, on most syncs
    event = state.claim_health(repo_id, health.state)
    if event is None:
        return None
    if event == AlertEvent.FAILING:
        failure = health.last_failure or {}
        lines = [
            health.message,
            f"Failing since {health.since.isoformat() if health.since else 'now'}, "
            f"{plural(health.consecutive_failures, 'failed sync')} in a row.",
        ]
        if failure.get("message"):
            lines.append(f"Newest failure ({failure.get('code') or failure.get('reason')}): {failure['message']}")
        lines.append(f"Runbook: docs/operations.md#{health.reason or 'other'}. The last good release stays live.")
        alert = Alert(
            event,
            name,
            f"dagops: {name} is failing ({health.reason})",
            "\n".join(lines),
            {"health": health.to_dict()},
        )
    else:
        alert = Alert(
            event,
            name,
            f"dagops: {name} recovered",
            f"{name} is {HealthState.OK.value} again: {health.message}",
            {"health": health.to_dict()},
        )
    deliver(repo_id, rules, alert)
    return event


def deliver(repo_id: int, rules: dict | None, alert: Alert) -> list[str]:
    """Send an alert a process has claimed, and keep the outcome in the alert state."""
    if not wants(rules, alert.event):
        return []
    errors = send(rules, alert)
    state.record_delivery(repo_id, alert.event, errors)
    return errors


# -- a pushed commit that failed validation ------------------------------------------------------------------------
def _commit_failed(run: SyncRunFacts) -> None:
    commit = run.commit or ""
    if not state.claim_failed_commit(run.repository_id, commit):
        return  # announced already (a forced re-sync of the same commit, or another process)
    facts = _release_facts(run.release_id)
    report_commit_status(run, facts)
    if not wants(run.rules, AlertEvent.VALIDATION_FAILED):
        return
    author = facts.get("author") or "unknown author"
    files = facts.get("files") or []
    errors = facts.get("errors") or []
    what = "its tests failed" if run.error_code == "tests_failed" else "it failed validation"
    lines = [
        f"Commit {commit[:12]} of {run.repository} by {author}: {what}; the previous release stays live.",
    ]
    if facts.get("subject"):
        lines.append(f"Message: {facts['subject']}")
    if files:
        lines.append(f"Files: {', '.join(files[:10])}" + (f" and {len(files) - 10} more" if len(files) > 10 else ""))
    if errors:
        lines.append("First errors:")
        lines += [f"- {line}" for line in errors]
    elif run.error:
        lines.append(run.error.splitlines()[0][:300])
    alert = Alert(
        AlertEvent.VALIDATION_FAILED,
        run.repository,
        f"dagops: {commit[:12]} of {run.repository} failed validation ({author})",
        "\n".join(lines),
        {
            "commit": commit,
            "author": author,
            "files": files,
            "errors": errors,
            "release_id": run.release_id,
            "error_code": run.error_code,
        },
    )
    deliver(run.repository_id, run.rules, alert)


def _release_facts(release_id: int | None) -> dict:
    """Author, subject, the files with errors and the first errors of the release a failed sync made."""
    if release_id is None:
        return {}
    with session_scope() as session:
        release = session.get(Release, release_id)
        if release is None:
            return {}
        found = session.scalars(
            select(Finding).where(Finding.release_id == release_id, Finding.severity == "error").order_by(Finding.id)
        ).all()
        files = sorted({f.file for f in found if f.file})
        errors = [
            f"{f.file or '-'}{f':{f.line}' if f.line else ''} {f.rule}: {f.message.splitlines()[0][:200]}"
            for f in found[:FIRST_ERRORS]
        ]
        return {
            "author": release.author,
            "subject": (release.message or "").splitlines()[0][:200] if release.message else None,
            "files": files,
            "errors": errors,
            "error_count": len(found),
        }


def report_commit_status(run: SyncRunFacts, facts: dict) -> str | None:
    """A red `dagops/validate` status on the failed commit; the reason it was not sent, or None. Never raises."""
    provider = _provider(run.url, run.conn_id)
    if provider is None:
        log.info("%s: no commit status for %s: not a GitHub, GitLab or Gitea repository", run.repository, run.commit)
        return "not a GitHub, GitLab or Gitea repository"
    count, files = facts.get("error_count") or 0, len(facts.get("files") or [])
    description = (
        f"{plural(count, 'error')} in {plural(files, 'file')}" if count else (run.error or "failed").splitlines()[0]
    )
    status = host_api.CommitStatus(
        sha=run.commit or "",
        state=CheckStatus.FAILURE,
        description=description[: host_api.MAX_DESCRIPTION],
        target_url=f"{_base_url()}{REPOSITORY_PAGE}/{run.repository}",
        context=_context(run),
    )
    try:
        host_api.post(host_api.endpoint_for(provider, run.url, run.conn_id), status)
    except ReportError as err:
        log.warning("%s: the failure status of %s was not sent: %s", run.repository, (run.commit or "")[:12], err)
        return str(err)
    except Exception as err:  # best effort, as for pull-request checks
        error = redact_text(f"unexpected error while reporting: {type(err).__name__}")
        log.warning("%s: %s", run.repository, error)
        return error
    return None


def _provider(url: str, conn_id: str | None) -> str | None:
    """github / gitlab / gitea: the connection's `provider` extra, else the URL's host; None when unknown."""
    connection = find_connection(conn_id) if conn_id else None
    return host_api.provider_of(url, (connection.extra_dejson or {}) if connection is not None else {})


def _context(run: SyncRunFacts) -> str:
    """As a pull-request check's: `dagops/validate`, with the repository's name when others share its URL."""
    with session_scope() as session:
        return host_api.status_context(session, run.repository_id, run.repository, run.url)


def _base_url() -> str:
    from airflow.configuration import conf  # Airflow's [api] base_url, as the pull-request checks link

    return (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")
