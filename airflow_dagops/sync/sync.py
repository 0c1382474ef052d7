""""""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from airflow_dagops import paths, settings
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.deploy.publish import current_target, publish
from airflow_dagops.deploy.releases import clean_temporary_exports, export_release, read_manifest
from airflow_dagops.errors import DagOpsError, InvalidInput, NotFound
from airflow_dagops.events import feed as events
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.redaction import redact_text
from airflow_dagops.releases import tests_runner as release_tests
from airflow_dagops.releases.gate import (
    Progress,
    gate_dag_id_conflicts,
    gate_dependency_conflicts,
    provide_isolated_env,
)
from airflow_dagops.releases.rollout import publish_checked
from airflow_dagops.store.db import read_connection, session_scope
from airflow_dagops.store.models import Finding, Release, Repository, SyncRun, utcnow
from airflow_dagops.store.queries import load_repository
from airflow_dagops.sync.runs import TRIGGERS, claim_queued, finish_run, record_run
from airflow_dagops.validate import Report, validate
from airflow_dagops.validate.skip_files import apply_gate

log = logging.getLogger(__name__)


@dataclass
class SyncOutcome:
    repository: str
    status: str  # published / unchanged / rejected / failed / pinned / disabled
    message: str
    commit: str | None = None
    release_id: int | None = None
    sync_run_id: int | None = None
    findings: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status not in ("failed", "rejected")

    def to_dict(self) -> dict:
        return asdict(self)


# -- sync -----------------------------------------------------------------------------------------------
def sync_repository(
    name: str,
    *,
    trigger: str = "cli",
    airflow_run_id: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    validator: Callable[..., Report] = validate,
    defer_tests: bool = False,
) -> SyncOutcome:
    """Bring one repository's namespace up to date with its tracked ref. A repository whose `.dagops.yaml`
    asks for tests has them run before publishing: here, or with `defer_tests` (the dagops_sync DAG) by
    the dagops_test system DAG, one mapped task per test module."""
    progress = progress or (lambda _step: None)
    if trigger not in TRIGGERS:
        raise InvalidInput(f"unknown trigger {trigger!r}; one of {', '.join(TRIGGERS)}")
    with read_connection() as connection:
        snapshot = RepoSnapshot.read(connection, name)
    if not snapshot.enabled and trigger == "schedule":
        return SyncOutcome(name, "disabled", f"{name} is disabled")
    mirror = Mirror(path=paths.mirror_dir(name), url=snapshot.url, conn_id=snapshot.conn_id)

    if snapshot.pinned_release_id:
        return _keep_pinned(snapshot, trigger, airflow_run_id)

    # Step 1, no lock and no write: is there anything to do at all?
    progress("checking remote")
    try:
        full_ref, remote = mirror.ls_remote(snapshot.ref)
    except DagOpsError as err:
        return record_failure(snapshot, trigger, airflow_run_id, None, err)
    if not force and remote == snapshot.last_seen_commit and snapshot.link_healthy():
        outcome = _unchanged_outcome(snapshot, remote)
        if trigger != "schedule":
            outcome.sync_run_id = record_run(
                snapshot, trigger, airflow_run_id, outcome.status, remote, snapshot.live_release_id
            )
        return outcome

    with repository_lock(paths.locks_dir(), name, timeout=settings.get_int("lock_timeout")):
        return _sync_locked(name, full_ref, trigger, airflow_run_id, force, progress, validator, mirror, defer_tests)


def _sync_locked(
    name, full_ref, trigger, airflow_run_id, force, progress, validator, mirror, defer_tests=False
) -> SyncOutcome:
    run_id, snapshot = start_run(name, trigger, airflow_run_id)
    try:
        paths.check_layout()
        progress("fetching")
        info = mirror.fetch(full_ref)
        commit = info.sha
        if not force and commit == snapshot.last_seen_commit and snapshot.link_healthy():
            # Another sync processed this commit while we waited for the lock.
            outcome = _unchanged_outcome(snapshot, commit, run_id)
            finish_run(run_id, outcome.status, commit, snapshot.live_release_id)
            return outcome
        if not force and commit == snapshot.live_commit and snapshot.live_path:
            progress("publishing")
            publish(paths.namespace_link(snapshot.namespace), Path(snapshot.live_path))
            mark_seen(name, commit)
            finish_run(run_id, "success", commit, snapshot.live_release_id)
            return SyncOutcome(
                name,
                "published",
                f"{name}: live link restored to {commit[:12]}",
                commit,
                snapshot.live_release_id,
                run_id,
            )
        progress("exporting")
        release_id, report = export_and_validate(snapshot, mirror, info, full_ref, validator, progress)
        if not report.passed:
            mark_seen(name, commit)
            message = report.describe_errors()
            finish_run(run_id, "failed", commit, release_id, message, code="validation_failed")
            return SyncOutcome(
                name,
                "failed",
                f"{name}: {message}. The previous release stays live.",
                commit,
                release_id,
                run_id,
                [f.to_dict() for f in report.findings],
            )
        findings = [f.to_dict() for f in report.findings]
        from airflow_dagops.releases import tests as tests_service

        release_dir = paths.release_dir(snapshot.namespace, commit)
        mode = getattr(report.config, "tests", "off")
        modules = release_tests.test_modules(release_dir) if mode != "off" else []
        if modules and defer_tests:
            message = await_tests(name, release_id, run_id, modules, mode)
            return SyncOutcome(name, "testing", message, commit, release_id, run_id, findings)
        if modules:
            verdict = tests_service.record_test_results(
                release_id, tests_service.run_release_tests(release_dir, modules, progress), mode
            )
            findings += verdict["findings"]
            if verdict["blocked"]:
                mark_seen(name, commit)
                finish_run(run_id, "failed", commit, release_id, verdict["message"], code="tests_failed")
                message = f"{name}: {verdict['message']}"
                return SyncOutcome(name, "failed", message, commit, release_id, run_id, findings)
        progress("publishing")
        published = publish_checked(name, release_id, run_id, actor=trigger, reason=f"sync ({trigger})")
        return SyncOutcome(name, "published", published, commit, release_id, run_id, findings)
    except DagOpsError as err:
        finish_run(run_id, "failed", None, None, redact_text(str(err)), code=err.code)
        return SyncOutcome(name, "failed", f"{name}: {redact_text(str(err))}", sync_run_id=run_id)
    except BaseException as err:
        error = redact_text(f"unexpected error: {type(err).__name__}: {err}")
        finish_run(run_id, "failed", None, None, error, code="unexpected")
        raise


def _unchanged_outcome(snapshot: RepoSnapshot, commit: str, run_id: int | None = None) -> SyncOutcome:
    """Nothing new. Either the commit is live, or it was rejected before and the last good release stays."""
    if commit == snapshot.live_commit or snapshot.last_seen_commit is None:
        return SyncOutcome(
            snapshot.name,
            "unchanged",
            f"{snapshot.name} is up to date at {commit[:12]}",
            commit,
            snapshot.live_release_id,
            run_id,
        )
    from airflow_dagops.releases import promotion

    staged = promotion.describe_staged(snapshot.id, commit)  # not rejected: waiting in a promotion stage
    staged = staged or _not_live_but_good(snapshot, commit)
    if staged:
        return SyncOutcome(snapshot.name, "unchanged", staged, commit, snapshot.live_release_id, run_id)
    live = f"{snapshot.live_commit[:12]} stays live" if snapshot.live_commit else "nothing is live yet"
    return SyncOutcome(
        snapshot.name,
        "rejected",
        f"{snapshot.name}: commit {commit[:12]} was already rejected (see `dagops repos show {snapshot.name}`); "
        f"{live}. Push a fix, or use --force to validate it again.",
        commit,
        snapshot.live_release_id,
        run_id,
    )


def _not_live_but_good(snapshot: RepoSnapshot, commit: str) -> str | None:
    """Why a commit that was not rejected is not live: it waits for its tests, or something else (a rollback,
    a deploy) went live after it."""
    with read_connection() as connection:
        status = connection.scalar(
            select(Release.status).where(Release.repository_id == snapshot.id, Release.commit_sha == commit)
        )
    if status == "testing":
        return f"{snapshot.name}: {commit[:12]} waits for its tests (dagops_test)"
    if status in ("validated", "retired"):
        live = snapshot.live_commit[:12] if snapshot.live_commit else "nothing"
        return (
            f"{snapshot.name}: {commit[:12]} passed validation, but {live} is live (rolled back or deployed since; "
            f"see `dagops versions {snapshot.name}`). `dagops sync {snapshot.name} --force` returns to the branch head."
        )
    return None


@dataclass
class RepoSnapshot:
    """The fields a sync needs, read in one short transaction (no session is held across git work)."""

    id: int
    name: str
    url: str
    ref: str
    namespace: str
    conn_id: str | None
    subdir: str | None
    enabled: bool
    last_seen_commit: str | None
    pinned_release_id: int | None
    live_release_id: int | None
    live_commit: str | None
    live_path: str | None

    @classmethod
    def read(cls, session: Session | Connection, name: str) -> RepoSnapshot:
        """One plain SELECT (repository joined with its live release): this runs on every poll, where an
        unchanged repository should cost little more than its `git ls-remote`."""
        row = session.execute(
            select(
                Repository.id,
                Repository.name,
                Repository.url,
                Repository.ref,
                Repository.namespace,
                Repository.conn_id,
                Repository.subdir,
                Repository.enabled,
                Repository.last_seen_commit,
                Repository.pinned_release_id,
                Repository.live_release_id,
                Release.commit_sha,
                Release.path,
            )
            .outerjoin(Release, Release.id == Repository.live_release_id)
            .where(Repository.name == name)
        ).first()
        if row is None:
            raise NotFound(f"no repository named {name!r} is registered; see `dagops repos list`")
        return cls(*row)

    def link_healthy(self) -> bool:
        if not self.live_path:
            return True  # nothing published yet: nothing to repair
        return current_target(paths.namespace_link(self.namespace)) == Path(self.live_path)


def export_and_validate(snapshot, mirror, info, full_ref, validator, progress) -> tuple[int, Report]:
    commit = info.sha
    dest = paths.release_dir(snapshot.namespace, commit)
    export = export_release(
        mirror=mirror,
        sha=commit,
        subdir=snapshot.subdir,
        dest=dest,
        base=Path(snapshot.live_path) if snapshot.live_path else None,
        max_size=settings.get_int("max_repo_size"),
        metadata={"repository": snapshot.name, "namespace": snapshot.namespace, "ref": full_ref},
    )
    log.info(
        "exported %s@%s: %d files (%d linked from the live release, %d written)",
        snapshot.name,
        commit[:12],
        export.file_count,
        export.linked,
        export.written,
    )
    progress("validating")
    report = validator(dest, extra_findings=export.findings, dag_owners={})
    report = gate_dag_id_conflicts(snapshot.id, report)
    report = apply_gate(dest, report)
    report = gate_dependency_conflicts(snapshot.id, snapshot.namespace, report)
    report = provide_isolated_env(snapshot.id, snapshot.namespace, report, progress)
    with session_scope() as session:
        release = session.scalar(
            select(Release).where(Release.repository_id == snapshot.id, Release.commit_sha == commit)
        )
        if release is None:
            release = Release(repository_id=snapshot.id, namespace=snapshot.namespace, commit_sha=commit)
            session.add(release)
        release.ref = full_ref
        release.author = info.author
        release.message = info.message[:10000]
        release.committed_at = info.committed_at
        release.path = str(dest)
        release.file_count = export.file_count
        release.pruned_at = None
        release.validation_summary = {**report.summary(), "venv": report.stats.get("venv")}
        if release.status != "live":
            release.status = "validated" if report.passed else "failed"
        release.findings = [
            Finding(rule=f.rule, severity=f.severity, file=f.file, line=f.line, message=f.message, hint=f.hint)
            for f in report.findings
        ]
        session.flush()
        events.record_validation(session, snapshot.name, release, report)
        return release.id, report


def _recover(session: Session, repo: Repository) -> None:
    """Repair what a killed sync may have left: temp exports, and a DB that lags behind the link."""
    clean_temporary_exports(paths.namespace_releases_dir(repo.namespace))
    target = current_target(paths.namespace_link(repo.namespace))
    if target is None:
        return
    live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
    if live is not None and Path(live.path) == target:
        return
    adopted = session.scalar(select(Release).where(Release.repository_id == repo.id, Release.path == str(target)))
    if adopted is not None and read_manifest(target) is not None:
        log.warning(
            "%s: the namespace link points at %s but the DB said otherwise; adopting the link",
            repo.name,
            target.name[:12],
        )
        if live is not None and live.status == "live":
            live.status = "retired"
        adopted.status = "live"
        repo.live_release_id = adopted.id


def _keep_pinned(snapshot: RepoSnapshot, trigger, airflow_run_id) -> SyncOutcome:
    if not snapshot.link_healthy() and snapshot.live_path and Path(snapshot.live_path).is_dir():
        publish(paths.namespace_link(snapshot.namespace), Path(snapshot.live_path))
    if trigger != "schedule":
        record_run(snapshot, trigger, airflow_run_id, "unchanged", snapshot.live_commit, snapshot.live_release_id)
    return SyncOutcome(
        snapshot.name,
        "pinned",
        f"{snapshot.name} is pinned; new commits are not followed",
        snapshot.live_commit,
        snapshot.live_release_id,
    )


def mark_seen(name: str, commit: str) -> None:
    with session_scope() as session:
        load_repository(session, name).last_seen_commit = commit


def await_tests(name: str, release_id: int, run_id: int, modules: list[str], mode: str) -> str:
    """Hand the release to the dagops_test system DAG: it waits, unpublished, in status `testing`."""
    with session_scope() as session:
        release = session.get(Release, release_id)
        release.status = "testing"
        release.tests = {"mode": mode, "outcome": "pending", "modules_pending": modules, "sync_run_id": run_id}
        commit = release.commit_sha
    mark_seen(name, commit)
    finish_run(run_id, "success", commit, release_id)
    return f"{name}: {commit[:12]} passed validation and waits for its {len(modules)} test module(s) (dagops_test)"


# -- the run of this sync ------------------------------------------------------------------------------
# -- sync run bookkeeping ---------------------------------------------------------------------------------
def start_run(name: str, trigger: str, airflow_run_id: str | None) -> tuple[int, RepoSnapshot]:
    """Record the run, repair what a killed sync left behind, and read the repository: one transaction."""
    with session_scope() as session:
        repo = load_repository(session, name)
        run = claim_queued(session, repo.id, airflow_run_id) or SyncRun(
            repository_id=repo.id, trigger=trigger, airflow_run_id=airflow_run_id
        )
        run.status, run.started_at = "running", utcnow()
        session.add(run)
        _recover(session, repo)
        session.flush()
        _close_interrupted_runs(session, repo, run.id)
        snapshot = RepoSnapshot.read(session, name)
        session.flush()
        return run.id, snapshot


def _close_interrupted_runs(session: Session, repo: Repository, current_id: int) -> None:
    """A run is 'running' only while its process holds the repository lock, which we hold now: any other
    running row belongs to a process that died (SIGKILL, OOM, lost DB). Left open it would show 'syncing'
    forever and make "Sync Now" answer 409; runs of Airflow tasks are also closed by `reconcile_sync_runs`."""
    stale = session.scalars(
        select(SyncRun).where(SyncRun.repository_id == repo.id, SyncRun.status == "running", SyncRun.id != current_id)
    ).all()
    for run in stale:
        log.warning(
            "%s: sync run %d was interrupted (its process ended before finishing); closing it", repo.name, run.id
        )
        run.status, run.ended_at, run.error_code = "failed", utcnow(), "interrupted"
        run.error = "interrupted: the process running this sync ended before it finished; nothing it left was published"


def record_failure(snapshot, trigger, airflow_run_id, commit, err: DagOpsError) -> SyncOutcome:
    message = redact_text(str(err))
    run_id = record_run(snapshot, trigger, airflow_run_id, "failed", commit, None, message, err.code)
    return SyncOutcome(snapshot.name, "failed", f"{snapshot.name}: {message}", commit, sync_run_id=run_id)
