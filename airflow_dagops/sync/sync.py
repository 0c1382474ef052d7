"""The sync of one repository, as small named steps in the git-sync manner: check the remote cheaply -> lock ->
fetch -> export a release and put it through the one gate (releases/candidate.py, releases/gate.py) -> publish
(or stage, or hand to dagops_test for its tests) -> prune. A failed step never touches what is live: the last good
release keeps serving.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from airflow_dagops import paths, settings
from airflow_dagops.deploy import live_set
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.deploy.publish import current_target, publish
from airflow_dagops.deploy.releases import clean_temporary_exports
from airflow_dagops.errors import DagOpsError, InvalidInput, LockBusy, RefNotFound
from airflow_dagops.events import feed as events
from airflow_dagops.git.mirror import Mirror, PendingFetch
from airflow_dagops.redaction import redact_text
from airflow_dagops.release_manifest import read_manifest
from airflow_dagops.releases import promotion
from airflow_dagops.releases.candidate import RepoSnapshot, export_and_check
from airflow_dagops.releases.gate import GatePurpose, Progress, tests_blocked
from airflow_dagops.releases.rollout import publish_checked
from airflow_dagops.statuses import ReleaseStatus, SyncOutcomeStatus, SyncRunStatus
from airflow_dagops.store.db import read_connection, session_scope
from airflow_dagops.store.models import Release, Repository, SyncRun, utcnow
from airflow_dagops.store.queries import get_row, load_repository
from airflow_dagops.sync.runs import TRIGGERS, claim_queued, finish_run, record_run
from airflow_dagops.validate import Report, validate
from airflow_dagops.wording import plural

log = logging.getLogger(__name__)


@dataclass
class SyncOutcome:
    repository: str
    status: SyncOutcomeStatus
    message: str
    commit: str | None = None
    release_id: int | None = None
    sync_run_id: int | None = None
    findings: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status not in SyncOutcomeStatus.not_ok()

    def to_dict(self) -> dict:
        return asdict(self)


# -- sync -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyncRequest:
    """What the caller of `sync_repository` asked for, carried whole through the steps of one sync."""

    name: str
    trigger: str
    airflow_run_id: str | None
    force: bool
    progress: Progress
    validator: Callable[..., Report]
    defer_tests: bool
    fetch_first: bool  # the fetch is the check (see `sync_repository`'s `expect_change`)

    @property
    def recorded(self) -> bool:
        """Every trigger but a scheduled poll records a run, whatever the sync finds."""
        return self.trigger != "schedule"


def sync_repository(
    name: str,
    *,
    trigger: str = "cli",
    airflow_run_id: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    validator: Callable[..., Report] = validate,
    defer_tests: bool = False,
    expect_change: bool | None = None,
) -> SyncOutcome:
    """Bring one repository's namespace up to date with its tracked ref. A repository whose `.dagops.yaml`
    asks for tests has them run before publishing: here, or with `defer_tests` (the dagops_sync DAG) by
    the dagops_test system DAG, one mapped task per test module.

    `expect_change`: whether the caller has reason to think the remote moved (a webhook, "Sync Now", `dagops
    sync`, the sense step having seen a new head; by default every trigger but a scheduled poll). Then the fetch
    itself is the check, one remote command in all; a blind poll asks with the cheaper `ls-remote` first."""
    if trigger not in TRIGGERS:
        raise InvalidInput(f"unknown trigger {trigger!r}; one of {', '.join(TRIGGERS)}")
    request = SyncRequest(
        name=name,
        trigger=trigger,
        airflow_run_id=airflow_run_id,
        force=force,
        progress=progress or (lambda _step: None),
        validator=validator,
        defer_tests=defer_tests,
        fetch_first=trigger != "schedule" if expect_change is None else expect_change,
    )
    with events.batched():  # the sync's validation, publish and sync events: one insert, at its end
        return _sync(request)


def _sync(request: SyncRequest) -> SyncOutcome:
    name, trigger, airflow_run_id = request.name, request.trigger, request.airflow_run_id
    with read_connection() as connection:
        snapshot = RepoSnapshot.read(connection, name)
    if not snapshot.enabled and trigger == "schedule":
        return SyncOutcome(name, SyncOutcomeStatus.DISABLED, f"{name} is disabled")
    mirror = Mirror(path=paths.mirror_dir(name), url=snapshot.url, conn_id=snapshot.conn_id)

    if snapshot.pinned_release_id:
        return _keep_pinned(snapshot, trigger, airflow_run_id)

    request.progress("checking remote")
    with ExitStack() as held:
        # Step 1: is there anything to do at all? When a change is expected, the lock is free and the ref's full
        # name is known, one fetch answers it (and has the commit); else a lock-free ls-remote (a no-change poll
        # costs no more), then the lock and the fetch.
        early = _fetch_first(held, request, snapshot, mirror) if request.fetch_first or request.force else None
        if early is not None and early.started is not None:
            # The run is recorded already: the locked steps settle every outcome (unchanged, failed, published).
            return _sync_locked(request, mirror, early.fetching.full_ref, early.fetching, started=early.started)
        if early is not None:
            fetching: PendingFetch | None = early.fetching
            try:
                full_ref, remote = early.fetching.full_ref, early.fetching.result().sha
            except DagOpsError as err:
                return record_failure(snapshot, trigger, airflow_run_id, None, err)
        else:
            fetching = None
            try:
                full_ref, remote = mirror.ls_remote(snapshot.ref)
            except DagOpsError as err:
                return record_failure(snapshot, trigger, airflow_run_id, None, err)
        if not request.force and remote == snapshot.last_seen_commit and snapshot.link_healthy():
            outcome = _unchanged_outcome(snapshot, remote)
            if request.recorded:
                outcome.sync_run_id = record_run(
                    snapshot, trigger, airflow_run_id, outcome.status, remote, snapshot.live_release_id
                )
            return outcome
        if fetching is None:
            held.enter_context(repository_lock(paths.locks_dir(), name, timeout=settings.get_int("lock_timeout")))
        return _sync_locked(request, mirror, full_ref, fetching)


@dataclass(frozen=True)
class _EarlyFetch:
    fetching: PendingFetch  # done: its commit, or the error that is the sync's
    started: tuple[int, RepoSnapshot] | None  # the run, recorded while git fetched (see `_fetch_first`)


def _fetch_first(held: ExitStack, request: SyncRequest, snapshot: RepoSnapshot, mirror: Mirror) -> _EarlyFetch | None:
    """The tracked ref fetched at once, under the repository lock (kept in `held`), when that costs no wait: the
    lock is free, the ref's full name is known from the last fetch, the home is laid out. Every trigger but a poll
    records a run whatever the fetch finds, so theirs is recorded while git works. Should the remembered name be
    gone, ls-remote (under the lock) says whether it became a tag, or that it is gone, as always."""
    try:
        full_ref = mirror.known_full_ref(snapshot.ref)
    except DagOpsError:
        return None
    if full_ref is None or not _laid_out():
        return None
    try:
        held.enter_context(repository_lock(paths.locks_dir(), snapshot.name, timeout=0))
    except LockBusy:
        return None  # another sync is at work: the lock-free check, then a wait for the lock, as always
    # A queued run (a webhook's, Sync Now's) is claimed before git reads the remote's refs: a push arriving later
    # then queues a run of its own rather than joining one that already fetched (runs.request_sync coalesces).
    started = _claim_queued_run(request)
    fetching = mirror.fetch_in_background(full_ref)
    try:
        if request.recorded and started is None:
            started = _start(request)  # no queued run to claim: recorded while git works
    finally:
        fetching.wait()  # no git is left writing the mirror, whatever recording the run did
    try:
        fetching.result()
    except RefNotFound:
        fetching = _fetch_by_current_name(mirror, snapshot.ref)
        fetching.wait()
    except DagOpsError:
        pass  # the sync's failure, recorded by the caller
    return _EarlyFetch(fetching, started)


def _fetch_by_current_name(mirror: Mirror, ref: str) -> PendingFetch:
    try:
        full_ref, _sha = mirror.ls_remote(ref)
    except DagOpsError as err:
        return PendingFetch.settled(ref, err)
    return mirror.fetch_in_background(full_ref)


def _start(request: SyncRequest) -> tuple[int, RepoSnapshot]:
    return start_run(request.name, request.trigger, request.airflow_run_id)


def _claim_queued_run(request: SyncRequest) -> tuple[int, RepoSnapshot] | None:
    """A queued run (an Airflow run id: a webhook's, Sync Now's) started before git reads the remote's refs."""
    return _start(request) if request.recorded and request.airflow_run_id else None


def _sync_locked(
    request: SyncRequest,
    mirror: Mirror,
    full_ref: str,
    fetching: PendingFetch | None,
    started: tuple[int, RepoSnapshot] | None = None,
) -> SyncOutcome:
    # git fetches in its own processes while this one records the run: neither waits for the other (unless
    # `_fetch_first` fetched already). Never into a dagops_home laid out wrong: the layout check refuses it, as the
    # run's error.
    if started is None and request.airflow_run_id:
        started = _start(request)  # a queued run is claimed before git reads the refs
    if fetching is None and _laid_out():
        fetching = mirror.fetch_in_background(full_ref)
    try:
        return _fetch_and_publish(request, mirror, full_ref, fetching, started or _start(request))
    finally:
        if fetching is not None:
            fetching.wait()  # whatever happened, no git is left writing the mirror once the lock is released


def _fetch_and_publish(
    request: SyncRequest,
    mirror: Mirror,
    full_ref: str,
    fetching: PendingFetch | None,
    started: tuple[int, RepoSnapshot],
) -> SyncOutcome:
    name, trigger, progress = request.name, request.trigger, request.progress
    run_id, snapshot = started
    try:
        paths.check_layout()
        progress("fetching")
        info = fetching.result() if fetching is not None else mirror.fetch(full_ref)
        mirror.remember_full_ref(snapshot.ref, full_ref)
        commit = info.sha
        if not request.force and commit == snapshot.last_seen_commit and snapshot.link_healthy():
            # Another sync processed this commit while we waited for the lock.
            outcome = _unchanged_outcome(snapshot, commit, run_id)
            finish_run(run_id, outcome.status, commit, snapshot.live_release_id)
            return outcome
        if not request.force and commit == snapshot.live_commit and snapshot.live_path:
            progress("publishing")
            publish(paths.namespace_link(snapshot.namespace), Path(snapshot.live_path))
            mark_seen(name, commit)
            finish_run(run_id, SyncRunStatus.SUCCESS, commit, snapshot.live_release_id)
            return SyncOutcome(
                name,
                SyncOutcomeStatus.PUBLISHED,
                f"{name}: live link restored to {commit[:12]}",
                commit,
                snapshot.live_release_id,
                run_id,
            )
        progress("exporting")
        purpose = GatePurpose.SYNC_DEFERRED_TESTS if request.defer_tests else GatePurpose.SYNC
        release_id, report = export_and_check(
            snapshot, mirror, info, full_ref, purpose=purpose, validator=request.validator, progress=progress
        )
        findings = [f.to_dict() for f in report.findings]
        if not report.passed:
            mark_seen(name, commit)
            error, said, code = _refusal(report)
            finish_run(run_id, SyncRunStatus.FAILED, commit, release_id, error, code=code)
            return SyncOutcome(name, SyncOutcomeStatus.FAILED, f"{name}: {said}", commit, release_id, run_id, findings)
        pending = (report.stats.get("tests") or {}).get("modules_pending")
        if pending:
            message = await_tests(name, release_id, run_id, pending, report.stats["tests"]["mode"])
            return SyncOutcome(name, SyncOutcomeStatus.TESTING, message, commit, release_id, run_id, findings)
        progress("publishing")
        rollout = publish_checked(name, release_id, run_id, actor=trigger, reason=f"sync ({trigger})")
        status = SyncOutcomeStatus.PINNED if rollout.held_by_pin else SyncOutcomeStatus.PUBLISHED
        return SyncOutcome(name, status, rollout.message, commit, release_id, run_id, findings)
    except DagOpsError as err:
        finish_run(run_id, SyncRunStatus.FAILED, None, None, redact_text(str(err)), code=err.code)
        return SyncOutcome(name, SyncOutcomeStatus.FAILED, f"{name}: {redact_text(str(err))}", sync_run_id=run_id)
    except BaseException as err:
        error = redact_text(f"unexpected error: {type(err).__name__}: {err}")
        finish_run(run_id, SyncRunStatus.FAILED, None, None, error, code="unexpected")
        raise


def _laid_out() -> bool:
    try:
        paths.check_layout()
    except DagOpsError:
        return False
    return True


def _refusal(report: Report) -> tuple[str, str, str]:
    """(the run's error, what the outcome says, the error code) for a release the gate held back: by its own
    tests (their message says what stays live), or by its findings."""
    tests = tests_blocked(report)
    if tests:
        return tests, tests, "tests_failed"
    errors = report.describe_errors()
    return errors, f"{errors}. The previous release stays live.", "validation_failed"


def _unchanged_outcome(snapshot: RepoSnapshot, commit: str, run_id: int | None = None) -> SyncOutcome:
    """Nothing new. Either the commit is live, or it was rejected before and the last good release stays."""
    if commit == snapshot.live_commit or snapshot.last_seen_commit is None:
        return SyncOutcome(
            snapshot.name,
            SyncOutcomeStatus.UNCHANGED,
            f"{snapshot.name} is up to date at {commit[:12]}",
            commit,
            snapshot.live_release_id,
            run_id,
        )
    staged = promotion.describe_staged(snapshot.id, commit)  # not rejected: waiting in a promotion stage
    staged = staged or _not_live_but_good(snapshot, commit)
    if staged:
        return SyncOutcome(snapshot.name, SyncOutcomeStatus.UNCHANGED, staged, commit, snapshot.live_release_id, run_id)
    live = f"{snapshot.live_commit[:12]} stays live" if snapshot.live_commit else "nothing is live yet"
    return SyncOutcome(
        snapshot.name,
        SyncOutcomeStatus.REJECTED,
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
    if status == ReleaseStatus.TESTING:
        return f"{snapshot.name}: {commit[:12]} waits for its tests (dagops_test)"
    if status in (ReleaseStatus.VALIDATED, ReleaseStatus.RETIRED):
        live = snapshot.live_commit[:12] if snapshot.live_commit else "nothing"
        return (
            f"{snapshot.name}: {commit[:12]} passed validation, but {live} is live (rolled back or deployed since; "
            f"see `dagops versions {snapshot.name}`). `dagops sync {snapshot.name} --force` returns to the branch head."
        )
    return None


def _recover(session: Session, repo: Repository) -> None:
    """Repair what a killed sync may have left: temp exports, and a DB that lags behind the link."""
    clean_temporary_exports(paths.namespace_releases_dir(repo.namespace))
    target = current_target(paths.namespace_link(repo.namespace))
    if target is None:
        return
    if repo.live_release_id and Path(_release_path(session, repo.live_release_id)) == target:
        return
    live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
    adopted = session.scalar(select(Release).where(Release.repository_id == repo.id, Release.path == str(target)))
    if adopted is not None and read_manifest(target) is not None:
        log.warning(
            "%s: the namespace link points at %s but the DB said otherwise; adopting the link",
            repo.name,
            target.name[:12],
        )
        if live is not None and live.status == ReleaseStatus.LIVE:
            live.status = ReleaseStatus.RETIRED
        adopted.status = ReleaseStatus.LIVE
        repo.live_release_id = adopted.id
        live_set.record(session, repo.namespace, repository_id=repo.id, release_id=adopted.id, release_dir=target)


def _release_path(session: Session, release_id: int) -> str:
    """A release's folder alone: every sync reads the live one's, and its whole row (the validation summary lists
    every DAG) is only needed when the link says otherwise."""
    return session.scalar(select(Release.path).where(Release.id == release_id)) or ""


def _keep_pinned(snapshot: RepoSnapshot, trigger, airflow_run_id) -> SyncOutcome:
    if not snapshot.link_healthy() and snapshot.live_path and Path(snapshot.live_path).is_dir():
        publish(paths.namespace_link(snapshot.namespace), Path(snapshot.live_path))
    if trigger != "schedule":
        record_run(
            snapshot, trigger, airflow_run_id, SyncRunStatus.UNCHANGED, snapshot.live_commit, snapshot.live_release_id
        )
    return SyncOutcome(
        snapshot.name,
        SyncOutcomeStatus.PINNED,
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
        release = get_row(session, Release, release_id)
        release.status = ReleaseStatus.TESTING
        release.tests = {"mode": mode, "outcome": "pending", "modules_pending": modules, "sync_run_id": run_id}
        commit = release.commit_sha
    mark_seen(name, commit)
    finish_run(run_id, SyncRunStatus.SUCCESS, commit, release_id)
    waiting = plural(len(modules), "test module")
    return f"{name}: {commit[:12]} passed validation and waits for its {waiting} (dagops_test)"


# -- the run of this sync ------------------------------------------------------------------------------
# -- sync run bookkeeping ---------------------------------------------------------------------------------
def start_run(name: str, trigger: str, airflow_run_id: str | None) -> tuple[int, RepoSnapshot]:
    """Record the run, repair what a killed sync left behind, and read the repository: one transaction."""
    with session_scope() as session:
        repo = load_repository(session, name)
        run = claim_queued(session, repo.id, airflow_run_id) or SyncRun(
            repository_id=repo.id, trigger=trigger, airflow_run_id=airflow_run_id
        )
        run.status, run.started_at = SyncRunStatus.RUNNING, utcnow()
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
        select(SyncRun).where(
            SyncRun.repository_id == repo.id, SyncRun.status == SyncRunStatus.RUNNING, SyncRun.id != current_id
        )
    ).all()
    for run in stale:
        log.warning(
            "%s: sync run %d was interrupted (its process ended before finishing); closing it", repo.name, run.id
        )
        run.status, run.ended_at, run.error_code = SyncRunStatus.FAILED, utcnow(), "interrupted"
        run.error = "interrupted: the process running this sync ended before it finished; nothing it left was published"


def record_failure(snapshot, trigger, airflow_run_id, commit, err: DagOpsError) -> SyncOutcome:
    message = redact_text(str(err))
    run_id = record_run(snapshot, trigger, airflow_run_id, SyncRunStatus.FAILED, commit, None, message, err.code)
    return SyncOutcome(
        snapshot.name, SyncOutcomeStatus.FAILED, f"{snapshot.name}: {message}", commit, sync_run_id=run_id
    )
