"""Use cases. Every face (CLI, REST, UI, system DAGs) calls these and only these.

The sync algorithm is a sequence of small named steps, in the git-sync manner:
check the remote cheaply -> lock -> fetch -> export a release -> validate -> publish -> prune.
A failed step never touches what is live: the last good release keeps serving.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Connection, func, select, update
from sqlalchemy.orm import Session

from airflow_dagops import conflicts, events, namespace_meta, paths, release_tests, repo_options, settings, venvs
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.deploy.publish import current_target, publish, unpublish
from airflow_dagops.deploy.releases import (
    clean_temporary_exports,
    export_release,
    read_manifest,
    retire_release_dir,
)
from airflow_dagops.deploy.releases import empty_trash as empty_release_trash
from airflow_dagops.errors import Conflict, DagOpsError, InvalidInput, NotFound
from airflow_dagops.git.credentials import attached_origin, attaching
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.redaction import redact_text
from airflow_dagops.safety import (
    display_url,
    redact,
    validate_name,
    validate_ref,
    validate_subdir,
    validate_url,
)
from airflow_dagops.safety import validate_conn_id as _safe_conn_id
from airflow_dagops.store.db import read_connection, session_scope
from airflow_dagops.store.models import DeployEvent, Finding, Release, Repository, SyncRun, utcnow
from airflow_dagops.validate import Report, validate
from airflow_dagops.validate.gate import apply_gate
from airflow_dagops.validate.report import Finding as ValidationFinding

log = logging.getLogger(__name__)

TRIGGERS = ("schedule", "manual", "webhook", "cli")
Progress = Callable[[str], None]


# -- values handed to faces ------------------------------------------------------------------------
@dataclass
class RepositoryInfo:
    name: str
    url: str
    ref: str
    namespace: str
    priority: int
    conn_id: str | None
    subdir: str | None
    enabled: bool
    poll_interval: int
    webhook_conn_id: str | None = None
    on_conflict: str = "skip_files"
    access_control: dict | None = None
    promotion: dict | None = None
    isolated_env: bool = False
    live_commit: str | None = None
    live_release_id: int | None = None
    live_message: str | None = None
    pinned_release_id: int | None = None
    dag_files: int = 0
    last_sync_status: str | None = None
    last_sync_at: str | None = None
    last_sync_error: str | None = None
    status: str = "pending"  # synced / failed / syncing / pinned / pending / disabled (docs/api.md)
    status_message: str | None = None
    dag_count: int = 0
    live_author: str | None = None
    live_committed_at: str | None = None
    last_sync: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


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


@dataclass
class SenseResult:
    repository: str
    changed: bool
    remote_commit: str | None = None
    reason: str = ""
    error: str | None = None


# -- registry ----------------------------------------------------------------------------------------
def add_repository(
    name: str,
    url: str,
    *,
    ref: str = "main",
    namespace: str | None = None,
    conn_id: str | None = None,
    subdir: str | None = None,
    priority: int = 100,
    poll_interval: int | None = None,
    enabled: bool = True,
    verify: bool = True,
    webhook_conn_id: str | None = None,
    on_conflict: str | None = None,
    access_control: dict | None = None,
    promotion: dict | None = None,
    isolated_env: bool = False,
) -> RepositoryInfo:
    """Register a repository. With `verify`, the remote and its ref are checked first; bad input changes nothing."""
    name = validate_name(name, what="repository name")
    namespace = validate_name(namespace or name, what="namespace")
    url = validate_url(url.strip(), allowed_protocols=settings.allowed_protocols())
    ref = validate_ref(ref)
    subdir = validate_subdir(subdir)
    conn_id = validate_conn_id(conn_id)
    webhook_conn_id = validate_conn_id(webhook_conn_id)
    priority = _validate_priority(priority)
    on_conflict = repo_options.validate_on_conflict(on_conflict)
    access_control = repo_options.validate_access_control(access_control)
    promotion = repo_options.validate_promotion(promotion)
    if poll_interval is not None and poll_interval < 1:
        raise InvalidInput(f"poll interval must be a positive number of seconds, got {poll_interval}")
    with session_scope() as session:
        _ensure_free(session, name, namespace)
        _check_stage_namespaces(session, name, namespace, promotion)
    link = paths.namespace_link(namespace)
    if (link.exists() or link.is_symlink()) and not link.is_symlink():
        raise Conflict(
            f"{link} already exists in the dags folder and is not managed by dagops; "
            "choose another namespace or move that folder away"
        )
    if verify:
        with attaching(conn_id, url):  # adding it with the connection is what attaches the connection here
            Mirror(path=paths.mirror_dir(name), url=url, conn_id=conn_id, retry_delays=()).ls_remote(ref)
    with session_scope() as session:
        _ensure_free(session, name, namespace)  # again: another process may have registered it meanwhile
        repo = Repository(
            name=name,
            url=url,
            ref=ref,
            namespace=namespace,
            conn_id=conn_id,
            conn_origin=attached_origin(conn_id, url),
            subdir=subdir,
            priority=priority,
            poll_interval=poll_interval,
            enabled=enabled,
            webhook_conn_id=webhook_conn_id,
            on_conflict=on_conflict,
            access_control=access_control,
            promotion=promotion,
            isolated_env=bool(isolated_env),
        )
        session.add(repo)
        session.flush()
        write_namespace_meta(repo)
        log.info("registered repository %s (%s @ %s) as namespace %s", name, display_url(url), ref, namespace)
        return repository_info(session, repo)


def validate_conn_id(conn_id: str | None) -> str | None:
    return _safe_conn_id(conn_id)  # one rule for every face (REST, CLI, dagops.yaml, marketplace)


def _ensure_free(session: Session, name: str, namespace: str) -> None:
    if session.scalar(select(Repository).where(Repository.name == name)):
        raise Conflict(f"a repository named {name!r} is already registered; pick another name or remove it first")
    owner = session.scalar(select(Repository).where(Repository.namespace == namespace))
    if owner:
        raise Conflict(
            f"namespace {namespace!r} is already used by repository {owner.name!r}; "
            "each repository publishes into its own namespace (use --namespace)"
        )
    from airflow_dagops import promotion as rollout  # promotion.py builds on this module

    rollout.ensure_not_a_stage_namespace(session, namespace)


def _check_stage_namespaces(session: Session, name: str, namespace: str, stages: dict | None) -> None:
    from airflow_dagops import promotion as rollout

    rollout.check_stage_namespaces(session, name, namespace, stages)


def list_repositories() -> list[RepositoryInfo]:
    with session_scope() as session:
        repos = session.scalars(select(Repository).order_by(Repository.priority, Repository.name)).all()
        return [repository_info(session, repo) for repo in repos]


def get_repository(name: str) -> RepositoryInfo:
    with session_scope() as session:
        return repository_info(session, load_repository(session, name))


def repository_history(name: str, *, limit: int = 10) -> dict:
    """Recent sync runs, releases (with findings) and deploy events of one repository."""
    with session_scope() as session:
        repo = load_repository(session, name)
        runs = session.scalars(
            select(SyncRun).where(SyncRun.repository_id == repo.id).order_by(SyncRun.id.desc()).limit(limit)
        ).all()
        releases = session.scalars(
            select(Release).where(Release.repository_id == repo.id).order_by(Release.id.desc()).limit(limit)
        ).all()
        events = session.scalars(
            select(DeployEvent).where(DeployEvent.repository_id == repo.id).order_by(DeployEvent.id.desc()).limit(limit)
        ).all()
        return {
            "sync_runs": [_sync_run_dict(run) for run in runs],
            "releases": [_release_dict(release, with_findings=True) for release in releases],
            "deploy_events": [
                {
                    "id": e.id,
                    "from_release_id": e.from_release_id,
                    "to_release_id": e.to_release_id,
                    "actor": e.actor,
                    "reason": e.reason,
                    "created_at": iso_time(e.created_at),
                }
                for e in events
            ],
        }


def remove_repository(name: str, *, keep_dags: bool = False) -> str:
    """Unregister a repository. Its DAGs leave Airflow, unless `keep_dags` leaves a plain copy in place."""
    with session_scope() as session:
        repo = load_repository(session, name)
        namespace = repo.namespace
    link = paths.namespace_link(namespace)
    with repository_lock(paths.locks_dir(), name, timeout=settings.get_int("lock_timeout")):
        if keep_dags and link.is_symlink() and link.resolve().is_dir():
            _materialize(link)
            what = f"its DAGs stay in {link} as a plain folder, no longer managed by dagops"
        else:
            unpublish(link)
            what = "its DAGs were removed from the dags folder"
        with session_scope() as session:
            session.delete(load_repository(session, name))
        shutil.rmtree(paths.mirror_dir(name), ignore_errors=True)
        shutil.rmtree(paths.namespace_releases_dir(namespace), ignore_errors=True)
        namespace_meta.remove(namespace)
    reconcile_conflicts()  # files it shadowed in other namespaces come back
    log.info("removed repository %s; %s", name, what)
    return f"removed repository {name!r}; {what}"


def _materialize(link: Path) -> None:
    """Replace a namespace link by a real copy of the release it points at."""
    copy = link.parent / f".{link.name}.dagops-keep-{os.getpid()}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(link.resolve(), copy, symlinks=True, ignore=shutil.ignore_patterns(".dagops-release.json"))
    for dirpath, _dirs, files in os.walk(copy):
        for filename in files:
            path = Path(dirpath) / filename
            if not path.is_symlink():
                path.chmod(0o644)
    # A directory cannot replace a symlink in one rename; move the link aside for an instant instead.
    old = link.parent / f".{link.name}.dagops-old-{os.getpid()}"
    os.replace(link, old)
    os.rename(copy, link)
    old.unlink()


# -- sense: cheap check of every repository ----------------------------------------------------------
def sense(names: list[str] | None = None, *, respect_poll_interval: bool = True) -> list[SenseResult]:
    """Compare each enabled repository's remote ref with what was last processed, concurrently, in one process.

    Only `git ls-remote` runs here (no fetch, no lock), so 100 unchanged repositories cost 100 short git
    processes, not 100 Airflow tasks.
    """
    now = utcnow()
    with session_scope() as session:
        query = select(Repository).where(Repository.enabled.is_(True))
        if names:
            query = query.where(Repository.name.in_(names))
        repos = [r for r in session.scalars(query).all() if not respect_poll_interval or _due(r, now)]
        targets = [
            (
                r.name,
                r.url,
                r.ref,
                r.conn_id,
                r.last_seen_commit,
                r.namespace,
                r.pinned_release_id,
                _live_path(session, r),
            )
            for r in repos
        ]
    results: list[SenseResult] = []
    if targets:
        workers = max(1, min(settings.get_int("sense_concurrency"), len(targets)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dagops-sense") as pool:
            results = list(pool.map(lambda t: _sense_one(*t), targets))
        with session_scope() as session:
            names_checked = [t[0] for t in targets]
            session.execute(update(Repository).where(Repository.name.in_(names_checked)).values(last_checked_at=now))
    empty_trash()
    return results


def _due(repo: Repository, now: datetime) -> bool:
    if repo.last_checked_at is None:
        return True
    interval = repo.poll_interval or settings.get_int("default_poll_interval")
    checked = repo.last_checked_at if repo.last_checked_at.tzinfo else repo.last_checked_at.replace(tzinfo=timezone.utc)
    # A little slack so a once-a-minute schedule does not skip a 60 s interval because of jitter.
    return now - checked >= timedelta(seconds=interval) - timedelta(seconds=5)


def _sense_one(name, url, ref, conn_id, last_seen, namespace, pinned_id, live_path) -> SenseResult:
    if live_path and current_target(paths.namespace_link(namespace)) != Path(live_path):
        return SenseResult(name, True, None, "the namespace link does not point at the live release")
    if pinned_id:
        return SenseResult(name, False, None, "pinned")
    try:
        mirror = Mirror(path=paths.mirror_dir(name), url=url, conn_id=conn_id, retry_delays=())  # the sync retries
        _full_ref, remote = mirror.ls_remote(ref)
    except DagOpsError as err:
        # Report it through a sync task, so the failure shows up in Airflow and in the sync history.
        return SenseResult(name, True, None, "remote check failed", error=str(err))
    if remote != last_seen:
        return SenseResult(name, True, remote, f"new commit {remote[:12]}")
    return SenseResult(name, False, remote, "unchanged")


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
        return _record_failure(snapshot, trigger, airflow_run_id, None, err)
    if not force and remote == snapshot.last_seen_commit and snapshot.link_healthy():
        outcome = _unchanged_outcome(snapshot, remote)
        if trigger != "schedule":
            outcome.sync_run_id = _record_run(
                snapshot, trigger, airflow_run_id, outcome.status, remote, snapshot.live_release_id
            )
        return outcome

    with repository_lock(paths.locks_dir(), name, timeout=settings.get_int("lock_timeout")):
        return _sync_locked(name, full_ref, trigger, airflow_run_id, force, progress, validator, mirror, defer_tests)


def _sync_locked(
    name, full_ref, trigger, airflow_run_id, force, progress, validator, mirror, defer_tests=False
) -> SyncOutcome:
    run_id, snapshot = _start_run(name, trigger, airflow_run_id)
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
        from airflow_dagops import tests_service  # tests_service.py builds on this module

        release_dir = paths.release_dir(snapshot.namespace, commit)
        mode = getattr(report.config, "tests", "off")
        modules = release_tests.test_modules(release_dir) if mode != "off" else []
        if modules and defer_tests:
            message = tests_service.await_tests(name, release_id, run_id, modules, mode)
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
    from airflow_dagops import promotion  # promotion.py builds on this module

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


ENVIRONMENT_RULES = {"dependency-missing", "dependency-version"}  # about Airflow's own environment


def gate_dependency_conflicts(repository_id: int, namespace: str, report: Report) -> Report:
    """Namespaces that share Airflow's environment must agree on library versions: a new release that pins a
    version another live namespace excludes is blocked, and that namespace's live release is told too.
    Repositories with `isolated_env` have their own environment and take no part."""
    from airflow_dagops.validate.dependencies import conflicts_for, requirements_from_summary

    with session_scope() as session:
        if session.get(Repository, repository_id).isolated_env:
            return report
        others = {
            repo.namespace: (release.id, requirements_from_summary(release.validation_summary))
            for repo, release in _live_pairs(session, exclude_id=repository_id)
            if not repo.isolated_env
        }
        mine = requirements_from_summary(report.summary())
        found = conflicts_for(namespace, mine, {ns: reqs for ns, (_id, reqs) in others.items()})
        if report.config is not None:
            found = report.config.apply(found)  # the repository's severity overrides hold here too
        for other, (release_id, requirements) in others.items():
            # The other side: a warning on its live release, naming the release that was held back.
            known = set(session.scalars(select(Finding.message).where(Finding.release_id == release_id)))
            for theirs in conflicts_for(other, requirements, {namespace: mine}):
                message = f"{theirs.message} (a new release of {namespace} was checked against it)"
                if message not in known:
                    known.add(message)
                    session.add(
                        Finding(
                            release_id=release_id,
                            rule=theirs.rule,
                            severity="warning",
                            file=theirs.file,
                            line=theirs.line,
                            message=message,
                            hint=theirs.hint,
                        )
                    )
    return replace(report, findings=[*report.findings, *found]) if found else report


def provide_isolated_env(repository_id: int, namespace: str, report: Report, progress: Progress) -> Report:
    """For a repository with `isolated_env`: build (or reuse) its namespace's virtual environment from the
    declared requirements (airflow_dagops/venvs.py). The build replaces the checks against Airflow's own
    environment, and a failed build blocks the release with uv's message."""
    with session_scope() as session:
        if not session.get(Repository, repository_id).isolated_env:
            return report
    findings = [f for f in report.findings if f.rule not in ENVIRONMENT_RULES]
    if any(f.severity == "error" for f in findings):
        return replace(report, findings=findings)
    from airflow_dagops.validate.dependencies import requirements_from_summary

    requirements = [str(r.requirement) for r in requirements_from_summary(report.summary())]
    progress(f"preparing the isolated environment ({len(requirements)} requirements)")
    try:
        built = venvs.ensure_venv(namespace, requirements)
    except DagOpsError as err:
        failed = ValidationFinding("venv-build-failed", "error", str(err), hint=venvs.BUILD_HINT)
        return replace(report, findings=[*findings, failed])
    how = "reused" if built.reused else f"built in {built.seconds:.1f}s"
    ready = ValidationFinding("venv-ready", "info", f"isolated environment {built.path.name} {how}: {built.python}")
    report = replace(report, findings=[*findings, ready])
    report.stats["venv"] = {"python": str(built.python), "key": built.path.name, "reused": built.reused}
    return report


def gate_dag_id_conflicts(repository_id: int, report: Report) -> Report:
    """The validation report with this repository's dag_id clashes judged by priority and its on_conflict
    (airflow_dagops/conflicts.py); used for new releases and for pull request checks alike."""
    with session_scope() as session:
        above, below = _claims_around(session, repository_id)
        on_conflict = session.get(Repository, repository_id).on_conflict or repo_options.DEFAULT_ON_CONFLICT
    return conflicts.gate(report, above, below, on_conflict)


def _claims_around(session: Session, repository_id: int) -> tuple[dict, dict]:
    """What the other live repositories claim, split by rank: (dag_id -> the owning claim above this
    repository, dag_id -> the claims of the repositories below it that it would shadow)."""
    repo = session.get(Repository, repository_id)
    others = [_claimant(r, rel) for r, rel in _live_pairs(session, exclude_id=repository_id)]
    mine = (repo.priority, repo.name)
    below: dict[str, list[conflicts.Claim]] = {}
    for other in others:
        if other.rank > mine:
            for dag_id, file in other.dags:
                below.setdefault(dag_id, []).append(
                    conflicts.Claim(other.repository, other.namespace, other.priority, file)
                )
    return conflicts.owners_above(others, mine), below


def _live_pairs(session: Session, exclude_id: int | None = None) -> list[tuple[Repository, Release]]:
    query = select(Repository, Release).join(Release, Release.id == Repository.live_release_id)
    if exclude_id is not None:
        query = query.where(Repository.id != exclude_id)
    return [tuple(row) for row in session.execute(query).all()]


def _claimant(repo: Repository, release: Release) -> conflicts.Claimant:
    dags = [(d["dag_id"], d["file"]) for d in (release.validation_summary or {}).get("dags") or [] if d.get("file")]
    return conflicts.Claimant(repo.name, repo.namespace, repo.priority, dags)


def publish_checked(name: str, release_id: int, run_id: int, *, actor: str, reason: str) -> str:
    """Put a release that passed every check live: in its first promotion stage when the repository has
    stages (prod stays as it is), else in its namespace. Returns what happened in words."""
    from airflow_dagops import promotion  # promotion.py builds on this module

    staged = promotion.stage_new_release(name, release_id, run_id, actor=actor)
    if staged is None:
        _publish_and_record(name, release_id, run_id, actor=actor, reason=reason)
    with session_scope() as session:
        commit = session.get(Release, release_id).commit_sha
    return staged or f"{name}: published {commit[:12]}"


def _publish_and_record(name: str, release_id: int, run_id: int, *, actor: str, reason: str) -> None:
    """Swap the namespace link, then record it all in one transaction: the release is live, the commit
    seen, old releases pruned, the run finished. The link is the truth Airflow reads; should the
    process die before the commit, the next sync adopts the link (see `_recover`)."""
    with session_scope() as session:
        repo = load_repository(session, name)
        release = session.get(Release, release_id)
        go_live(session, repo, release, actor=actor, reason=reason)
        repo.last_seen_commit = release.commit_sha
        doomed = _mark_pruned(session, repo)
        run = session.get(SyncRun, run_id)
        run.status, run.commit_sha, run.release_id, run.ended_at = "success", release.commit_sha, release_id, utcnow()
        events.record_sync_run(run_id, session=session)
    # Only after the commit, so no row ever claims a folder that is gone.
    for path in doomed:
        retire_release_dir(path)


CONFLICTS_LOCK = "_dag-id-conflicts"  # not a valid repository name, so it never clashes with one


def go_live(session: Session, repo: Repository, release: Release, *, actor: str, reason: str) -> None:
    """Point the namespace at `release` and record it, resolving dag_id clashes with every other live
    release by priority (airflow_dagops/conflicts.py): losing files are hidden before the link swaps and
    files no longer shadowed come back after it, so Airflow never sees two files for one dag_id."""
    with repository_lock(paths.locks_dir(), CONFLICTS_LOCK, timeout=settings.get_int("lock_timeout")):
        others = _live_pairs(session, exclude_id=repo.id)
        _apply_hidden(others + [(repo, release)], phase="hide")
        write_namespace_meta(repo, release)  # before the swap: the new DAG code finds its environment
        publish(paths.namespace_link(repo.namespace), Path(release.path))
        record_live(session, repo, release, actor=actor, reason=reason)
        _apply_hidden(others + [(repo, release)], phase="settle")


def reconcile_conflicts() -> None:
    """Re-resolve dag_id clashes among the live releases (after a repository left or a priority changed)."""
    with repository_lock(paths.locks_dir(), CONFLICTS_LOCK, timeout=settings.get_int("lock_timeout")):
        with session_scope() as session:
            pairs = _live_pairs(session)
            _apply_hidden(pairs, phase="hide")
            _apply_hidden(pairs, phase="settle")


def _apply_hidden(pairs: list[tuple[Repository, Release]], *, phase: str) -> None:
    """`hide`: leave out every file that must go (keeping what is hidden now); `settle`: exactly what must
    go, so files that are no longer shadowed come back. Recorded on each release as `hidden_files`."""
    wanted = conflicts.resolve([_claimant(repo, release) for repo, release in pairs])
    for repo, release in pairs:
        lost = wanted.get(repo.name, {})
        folder = Path(release.path)
        if not folder.is_dir():
            continue
        files = set(lost) | set(conflicts.hidden_in(folder)) if phase == "hide" else set(lost)
        if conflicts.write_hidden(folder, sorted(files)):
            log.info("%s: files left out because of dag_id clashes: %s", repo.name, ", ".join(sorted(files)) or "none")
        if phase == "settle":
            release.hidden_files = lost or None


def write_namespace_meta(repo: Repository, release: Release | None = None) -> None:
    """What the cluster policy applies to the namespace's DAGs, and the interpreter of its isolated
    environment for `venvs.namespace_python` (airflow_dagops/namespace_meta.py)."""
    meta = {"repository": repo.name, "access_control": repo.access_control}
    release = release or (repo.live_release if repo.live_release_id else None)
    venv = (release.validation_summary or {}).get("venv") if release is not None and repo.isolated_env else None
    if venv:
        meta["python"] = venv["python"]
    namespace_meta.write(repo.namespace, meta)


def record_live(session: Session, repo: Repository, release: Release, *, actor: str, reason: str) -> None:
    write_namespace_meta(repo, release)
    previous_id = repo.live_release_id
    if previous_id and previous_id != release.id:
        previous = session.get(Release, previous_id)
        if previous is not None and previous.status == "live":
            previous.status = "retired"
    release.status = "live"
    repo.live_release_id = release.id
    if previous_id != release.id:
        from airflow_dagops.diff import diff_releases  # diff.py reads releases through this module

        before = session.get(Release, previous_id) if previous_id else None
        session.add(
            DeployEvent(
                repository_id=repo.id,
                from_release_id=previous_id,
                to_release_id=release.id,
                actor=actor,
                reason=reason,
                diff=diff_releases(before, release),
            )
        )
        events.record_went_live(session, repo, release, actor=actor, reason=reason, previous_id=previous_id)


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
        _record_run(snapshot, trigger, airflow_run_id, "unchanged", snapshot.live_commit, snapshot.live_release_id)
    return SyncOutcome(
        snapshot.name,
        "pinned",
        f"{snapshot.name} is pinned; new commits are not followed",
        snapshot.live_commit,
        snapshot.live_release_id,
    )


def _mark_pruned(session: Session, repo: Repository) -> list[Path]:
    """Keep `releases_to_keep` release folders, never the live or the pinned one; returns the folders to
    retire once the transaction is committed."""
    keep = max(1, settings.get_int("releases_to_keep"))
    protected = {repo.live_release_id, repo.pinned_release_id}
    on_disk = session.scalars(
        select(Release)
        .where(Release.repository_id == repo.id, Release.pruned_at.is_(None))
        .order_by(Release.created_at.desc(), Release.id.desc())
    ).all()
    doomed = [r for r in on_disk[keep:] if r.id not in protected]
    for release in doomed:
        release.pruned_at = utcnow()
    return [Path(r.path) for r in doomed]


def empty_trash() -> int:
    """Delete the folders of pruned releases. Runs in the sense step and after `dagops sync`, not inside
    a sync, so removing thousands of files never delays a publish. Temporary folders of killed processes go too."""
    from airflow_dagops import tempdirs

    tempdirs.sweep()
    return empty_release_trash(settings.dagops_home() / "releases")


def mark_seen(name: str, commit: str) -> None:
    with session_scope() as session:
        load_repository(session, name).last_seen_commit = commit


# -- sync run bookkeeping ---------------------------------------------------------------------------------
def _start_run(name: str, trigger: str, airflow_run_id: str | None) -> tuple[int, RepoSnapshot]:
    """Record the run, repair what a killed sync left behind, and read the repository: one transaction."""
    with session_scope() as session:
        repo = load_repository(session, name)
        run = _claim_queued(session, repo.id, airflow_run_id) or SyncRun(
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


def _claim_queued(session: Session, repository_id: int, airflow_run_id: str | None) -> SyncRun | None:
    """The row `request_sync` wrote when it triggered this Airflow run: the task continues that row, so
    the run id the API answered with follows the sync to its end."""
    if not airflow_run_id:
        return None
    return session.scalar(
        select(SyncRun).where(
            SyncRun.repository_id == repository_id,
            SyncRun.airflow_run_id == airflow_run_id,
            SyncRun.status == "queued",
        )
    )


def finish_run(run_id, status, commit, release_id, error: str | None = None, *, code: str | None = None):
    with session_scope() as session:
        run = session.get(SyncRun, run_id)
        run.status = status
        run.commit_sha = commit or run.commit_sha
        run.release_id = release_id
        run.error = redact_text(error) if error else None
        run.error_code = code if error else None
        run.ended_at = utcnow()
    events.record_sync_run(run_id)


def _record_run(snapshot, trigger, airflow_run_id, status, commit, release_id, error=None, code=None) -> int:
    """Record a run that did no work (unchanged, pinned, failed before the lock) in one write."""
    with session_scope() as session:
        now = utcnow()
        run = _claim_queued(session, snapshot.id, airflow_run_id) or SyncRun(
            repository_id=snapshot.id, trigger=trigger, airflow_run_id=airflow_run_id, started_at=now
        )
        run.status, run.commit_sha, run.release_id, run.ended_at = status, commit, release_id, now
        run.error = redact_text(error) if error else None
        run.error_code = code if error else None
        session.add(run)
        session.flush()
        events.record_sync_run(run.id, session=session)
        return run.id


def _record_failure(snapshot, trigger, airflow_run_id, commit, err: DagOpsError) -> SyncOutcome:
    message = redact_text(str(err))
    run_id = _record_run(snapshot, trigger, airflow_run_id, "failed", commit, None, message, err.code)
    return SyncOutcome(snapshot.name, "failed", f"{snapshot.name}: {message}", commit, sync_run_id=run_id)


# -- registry changes, versions and on-demand syncs (the REST API and page call these) --------------------
UPDATABLE = (
    "url",
    "ref",
    "conn_id",
    "subdir",
    "priority",
    "poll_interval",
    "enabled",
    "webhook_conn_id",
    "on_conflict",
    "access_control",
    "promotion",
    "isolated_env",
)


def update_repository(name: str, *, verify: bool = True, **changes) -> RepositoryInfo:
    """Change a repository's settings. A new URL, ref or connection is checked with `git ls-remote` first
    (unless `verify` is false) and makes the next check sync again; bad input changes nothing.

    Setting `conn_id` (even to the same one) attaches the connection to the URL the repository has after the
    change; changing only `url` does not, so the connection's credentials stay with the host they were attached
    for (git/credentials.py) until an admin sets `conn_id` again. Who may do either is the faces' business."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}; changeable: {', '.join(UPDATABLE)}")
    with session_scope() as session:
        repo = load_repository(session, name)
        current = {"url": repo.url, "ref": repo.ref, "conn_id": repo.conn_id}
    clean = _clean_changes(changes)
    source = {**current, **{k: v for k, v in clean.items() if k in current}}
    source_changed = source != current
    reattach = "conn_id" in clean and clean["conn_id"] is not None
    if verify and source_changed:
        mirror = Mirror(path=paths.mirror_dir(name), url=source["url"], conn_id=source["conn_id"], retry_delays=())
        with attaching(source["conn_id"] if reattach else None, source["url"]):
            mirror.ls_remote(source["ref"])
    with session_scope() as session:
        repo = load_repository(session, name)
        if "promotion" in clean:
            _check_stage_namespaces(session, name, repo.namespace, clean["promotion"])
        for key, value in clean.items():
            setattr(repo, key, value)
        if "conn_id" in clean:
            repo.conn_origin = attached_origin(repo.conn_id, repo.url)
        if source_changed:
            repo.last_seen_commit = None  # follow the new source at the next check
        session.flush()
        write_namespace_meta(repo)
        log.info("updated repository %s: %s", name, ", ".join(sorted(clean)) or "nothing")
        info = repository_info(session, repo)
    if "priority" in clean:
        reconcile_conflicts()
    return info


def _clean_changes(changes: dict) -> dict:
    clean = dict(changes)
    if "url" in clean:
        clean["url"] = validate_url(str(clean["url"]).strip(), allowed_protocols=settings.allowed_protocols())
    if "ref" in clean:
        clean["ref"] = validate_ref(clean["ref"])
    if "subdir" in clean:
        clean["subdir"] = validate_subdir(clean["subdir"])
    for key in ("conn_id", "webhook_conn_id"):
        if key in clean:
            clean[key] = validate_conn_id(clean[key])
    if clean.get("poll_interval") is not None and clean["poll_interval"] < 1:
        raise InvalidInput(f"poll interval must be a positive number of seconds, got {clean['poll_interval']}")
    if "priority" in clean:
        clean["priority"] = _validate_priority(clean["priority"])
    if "isolated_env" in clean:
        clean["isolated_env"] = bool(clean["isolated_env"])
    if "on_conflict" in clean:
        clean["on_conflict"] = repo_options.validate_on_conflict(clean["on_conflict"])
    if "access_control" in clean:
        clean["access_control"] = repo_options.validate_access_control(clean["access_control"])
    if "promotion" in clean:
        clean["promotion"] = repo_options.validate_promotion(clean["promotion"])
    return clean


def _validate_priority(value) -> int:
    """Lower numbers win dag_id clashes (1 beats 100), as in dagops.yaml's examples."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise InvalidInput(f"priority must be a whole number from 0 to 1000000 (lower wins), got {value!r}")
    return value


def request_sync(
    name: str,
    *,
    actor: str,
    force: bool = False,
    trigger: str = "manual",
    commit: str | None = None,
    coalesce: bool = False,
) -> dict:
    """Ask Airflow to sync one repository now: records a queued run and triggers `dagops_sync` for it.
    No git work happens here; the sync task continues the queued run (see `_claim_queued`).

    Without `coalesce` (a person pressing "Sync Now"), an open run is a 409. With it (webhooks), a burst
    of requests keeps at most one running and one queued run per repository: a queued run that has not
    started will fetch the newest head anyway, so a request arriving meanwhile joins it (`coalesced`).
    """
    from airflow_dagops import airflow_bridge

    if trigger not in TRIGGERS:
        raise InvalidInput(f"unknown trigger {trigger!r}; one of {', '.join(TRIGGERS)}")
    # Serialises check-then-insert across threads and processes (the sync itself holds another lock).
    with repository_lock(paths.locks_dir(), f"{name}.requests", timeout=settings.get_int("lock_timeout")):
        with session_scope() as session:
            repo = load_repository(session, name)
            open_runs = session.scalars(
                select(SyncRun).where(SyncRun.repository_id == repo.id, SyncRun.status.in_(("queued", "running")))
            ).all()
            queued = next((run for run in open_runs if run.status == "queued"), None)
            if coalesce and queued is not None:
                log.info("%s: sync request from %s joins queued sync %d", name, actor, queued.id)
                return {**_sync_run_dict(queued, name), "coalesced": True}
            if open_runs and not coalesce:
                busy = open_runs[0]
                raise Conflict(
                    f"a sync of {name!r} is already {busy.status} (sync {busy.id}); wait for it to finish",
                    details={"sync_id": busy.id, "airflow_run_id": busy.airflow_run_id},
                )
            airflow_run_id = f"dagops__{name}__{utcnow().strftime('%Y%m%dT%H%M%S.%fZ')}"
            run = SyncRun(repository_id=repo.id, trigger=trigger, status="queued", airflow_run_id=airflow_run_id)
            session.add(run)
            session.flush()
            run_id = run.id
        conf = {"repository": name, "force": force, "trigger": trigger, "requested_by": actor}
        if commit:
            conf["commit"] = commit  # informative: the sync publishes the ref's head when it runs
        try:
            airflow_bridge.trigger_sync(run_id=airflow_run_id, conf=conf, user=actor)
        except DagOpsError as err:
            finish_run(run_id, "failed", None, None, str(err), code=err.code)
            raise
        except Exception as err:
            finish_run(run_id, "failed", None, None, f"Airflow refused the run: {err}", code="airflow_unavailable")
            raise
    log.info("%s asked for a sync of %s (Airflow run %s)", actor, name, airflow_run_id)
    return {**get_sync_run(run_id), "coalesced": False}


def reconcile_sync_runs(name: str | None, airflow_states: Callable[[list[str]], dict[str, str]]) -> int:
    """Close queued/running runs (of one repository, or all) whose Airflow run already ended without them
    (a task killed before it could record anything), so nothing shows 'syncing' forever. Returns how many."""
    with session_scope() as session:
        query = select(SyncRun).where(SyncRun.status.in_(("queued", "running")), SyncRun.airflow_run_id.is_not(None))
        if name is not None:
            query = query.where(SyncRun.repository_id == load_repository(session, name).id)
        open_runs = session.scalars(query).all()
        if not open_runs:
            return 0
        states = airflow_states([run.airflow_run_id for run in open_runs])
        closed = 0
        for run in open_runs:
            if states.get(run.airflow_run_id) in ("success", "failed"):
                run.status, run.ended_at, run.error_code = "failed", utcnow(), "unexpected"
                run.error = f"Airflow run {run.airflow_run_id} ended without finishing this sync; see its task log"
                closed += 1
        return closed


def _newest_first(session: Session, model, repo: Repository, limit: int, offset: int) -> tuple[list, int]:
    """One page of a repository's rows (sync runs, releases), newest first, and how many there are."""
    where = model.repository_id == repo.id
    total = session.scalar(select(func.count()).select_from(model).where(where))
    rows = session.scalars(select(model).where(where).order_by(model.id.desc()).limit(limit).offset(offset)).all()
    return rows, total


def list_sync_runs(name: str, *, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    with session_scope() as session:
        runs, total = _newest_first(session, SyncRun, load_repository(session, name), limit, offset)
        return [_sync_run_dict(run, name) for run in runs], total


MAX_ID = 2**31 - 1  # ids are 32-bit integers in every supported database


def get_sync_run(run_id: int) -> dict:
    with session_scope() as session:
        run = session.get(SyncRun, run_id) if 0 < run_id <= MAX_ID else None
        if run is None:
            raise NotFound(f"no sync run with id {run_id}")
        return _sync_run_dict(run, session.get(Repository, run.repository_id).name)


def list_releases(name: str, *, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    with session_scope() as session:
        repo = load_repository(session, name)
        releases, total = _newest_first(session, Release, repo, limit, offset)
        return [_release_dict(r, repository=name, pinned_id=repo.pinned_release_id) for r in releases], total


def get_release(release_id: int) -> dict:
    with session_scope() as session:
        release = session.get(Release, release_id) if 0 < release_id <= MAX_ID else None
        if release is None:
            raise NotFound(f"no release with id {release_id}")
        repo = session.get(Repository, release.repository_id)
        return _release_dict(release, with_findings=True, repository=repo.name, pinned_id=repo.pinned_release_id)


def live_dags(name: str) -> tuple[str, list[dict]]:
    """The namespace and the DAGs (dag_id, file) of a repository's live release, as validation found them."""
    with session_scope() as session:
        repo = load_repository(session, name)
        live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
        dags = list((live.validation_summary or {}).get("dags") or []) if live else []
        hidden = (live.hidden_files or {}) if live else {}  # left out: another repository owns the dag_id
        return repo.namespace, sorted((d for d in dags if d.get("file") not in hidden), key=lambda d: d["dag_id"])


def rollback(name: str, release: int | str | None = None, *, actor: str, pin: bool = False) -> RepositoryInfo:
    """Point the namespace at an earlier release that passed validation (default: the one live before the
    current one). A pruned release is re-exported from the mirror first. With `pin`, stay there."""
    with repository_lock(paths.locks_dir(), name, timeout=settings.get_int("lock_timeout")):
        with session_scope() as session:
            repo = load_repository(session, name)
            if release is None:
                target = previous_good_release(session, repo)
            else:
                target = find_release(session, repo, release)
            if target.status == "failed":
                raise Conflict(
                    f"release {target.id} ({target.commit_sha[:12]}) did not pass validation and cannot go live; "
                    "pick one that passed (see the releases list)"
                )
            snapshot = RepoSnapshot.read(session, name)
            target_id, commit = target.id, target.commit_sha
            path = Path(target.path)
        if read_manifest(path) is None:
            path = _reexport(snapshot, commit)
        with session_scope() as session:
            repo = load_repository(session, name)
            target = session.get(Release, target_id)
            target.path, target.pruned_at = str(path), None
            go_live(session, repo, target, actor=actor, reason="rollback")
            if pin:
                repo.pinned_release_id = target.id
            session.flush()
            log.info("%s rolled %s back to %s%s", actor, name, commit[:12], " and pinned it" if pin else "")
            return repository_info(session, repo)


def find_release(session: Session, repo: Repository, ref: int | str) -> Release:
    """A release of this repository by id, or by commit sha (7 or more hex digits)."""
    query = select(Release).where(Release.repository_id == repo.id)
    text_ref = str(ref).strip().lower()
    if isinstance(ref, int) or (text_ref.isdigit() and len(text_ref) < 7):
        found = session.scalars(query.where(Release.id == int(text_ref))).all() if 0 < int(text_ref) <= MAX_ID else []
    elif len(text_ref) >= 7 and all(c in "0123456789abcdef" for c in text_ref):
        found = session.scalars(query.where(Release.commit_sha.startswith(text_ref))).all()
    else:
        raise InvalidInput(f"{ref!r} is neither a release id nor a commit sha (7+ hex digits)")
    if not found:
        raise NotFound(f"repository {repo.name!r} has no release {ref!r}; see its releases list")
    if len(found) > 1:
        raise InvalidInput(f"{ref!r} matches {len(found)} releases; give more digits of the commit sha")
    return found[0]


def previous_good_release(session: Session, repo: Repository) -> Release:
    """The release that was live before the current one (from the deploy log), or the newest other good one."""
    events = session.scalars(
        select(DeployEvent).where(DeployEvent.repository_id == repo.id).order_by(DeployEvent.id.desc())
    )
    for event in events:
        if event.from_release_id and event.from_release_id != repo.live_release_id:
            candidate = session.get(Release, event.from_release_id)
            if candidate is not None and candidate.status != "failed":
                return candidate
    raise Conflict(f"{repo.name!r} has no earlier release that passed validation to roll back to")


def _reexport(snapshot: RepoSnapshot, commit: str) -> Path:
    mirror = Mirror(path=paths.mirror_dir(snapshot.name), url=snapshot.url, conn_id=snapshot.conn_id)
    dest = paths.release_dir(snapshot.namespace, commit)
    export_release(
        mirror=mirror,
        sha=commit,
        subdir=snapshot.subdir,
        dest=dest,
        base=Path(snapshot.live_path) if snapshot.live_path else None,
        max_size=settings.get_int("max_repo_size"),
        metadata={"repository": snapshot.name, "namespace": snapshot.namespace, "ref": snapshot.ref},
    )
    return dest


def pin(name: str, release: int | str | None = None, *, actor: str) -> RepositoryInfo:
    """Keep the live release (or roll back to `release` and keep that): new commits are not followed."""
    if release is not None:
        with session_scope() as session:
            repo = load_repository(session, name)
            wanted = find_release(session, repo, release)
            is_live = wanted.id == repo.live_release_id
        if not is_live:
            return rollback(name, release, actor=actor, pin=True)
    with session_scope() as session:
        repo = load_repository(session, name)
        if not repo.live_release_id:
            raise Conflict(f"nothing of {name!r} is live yet, so there is nothing to pin; sync it first")
        repo.pinned_release_id = repo.live_release_id
        _log_event(session, repo, actor=actor, reason="pin")
        session.flush()
        return repository_info(session, repo)


def unpin(name: str, *, actor: str) -> RepositoryInfo:
    """Follow the branch again from the next check."""
    with session_scope() as session:
        repo = load_repository(session, name)
        if repo.pinned_release_id:
            live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
            if live is None or live.commit_sha != repo.last_seen_commit:
                repo.last_seen_commit = None  # the live release is not the branch head: sync at the next check
            repo.pinned_release_id = None
            _log_event(session, repo, actor=actor, reason="unpin")
        session.flush()
        return repository_info(session, repo)


def _log_event(session: Session, repo: Repository, *, actor: str, reason: str) -> None:
    """A deploy-log entry that changes nothing live (pin/unpin): who did it, and when."""
    session.add(
        DeployEvent(
            repository_id=repo.id,
            from_release_id=repo.live_release_id,
            to_release_id=repo.live_release_id,
            actor=actor,
            reason=reason,
        )
    )


def health() -> dict:
    """Can dagops work? The state DB answers and the dags folder is there. Says nothing secret."""
    from airflow_dagops import __version__

    checks = {}
    try:
        with read_connection() as connection:
            connection.execute(select(func.count()).select_from(Repository))
        checks["state_db"] = "ok"
    except Exception as err:  # health must answer, whatever the failure
        log.warning("health: the state DB does not answer: %s", redact(str(err)))
        checks["state_db"] = "unavailable"
    checks["dags_folder"] = "ok" if settings.dags_folder().is_dir() else "missing"
    ok = all(value == "ok" for value in checks.values())
    return {"status": "ok" if ok else "unavailable", "version": __version__, **checks}


# -- reading --------------------------------------------------------------------------------------------
def load_repository(session: Session, name: str) -> Repository:
    repo = session.scalar(select(Repository).where(Repository.name == name))
    if repo is None:
        raise NotFound(f"no repository named {name!r} is registered; see `dagops repos list`")
    return repo


def _live_path(session: Session, repo: Repository) -> str | None:
    if not repo.live_release_id:
        return None
    release = session.get(Release, repo.live_release_id)
    return release.path if release else None


def repository_info(session: Session, repo: Repository) -> RepositoryInfo:
    live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
    last = session.scalar(select(SyncRun).where(SyncRun.repository_id == repo.id).order_by(SyncRun.id.desc()))
    dag_files = 0
    if live is not None:
        manifest = read_manifest(Path(live.path)) or {}
        dag_files = sum(1 for path in manifest.get("files", {}) if path.endswith(".py"))
    status, status_message = _status_of(repo, live, _reason_run(session, last))
    return RepositoryInfo(
        name=repo.name,
        url=display_url(repo.url),
        ref=repo.ref,
        namespace=repo.namespace,
        priority=repo.priority,
        conn_id=repo.conn_id,
        subdir=repo.subdir,
        enabled=repo.enabled,
        poll_interval=repo.poll_interval or settings.get_int("default_poll_interval"),
        webhook_conn_id=repo.webhook_conn_id,
        on_conflict=repo.on_conflict or repo_options.DEFAULT_ON_CONFLICT,
        access_control=repo.access_control,
        promotion=repo.promotion,
        isolated_env=bool(repo.isolated_env),
        live_commit=live.commit_sha if live else None,
        live_release_id=repo.live_release_id,
        live_message=(live.message or "").splitlines()[0] if live and live.message else None,
        pinned_release_id=repo.pinned_release_id,
        dag_files=dag_files,
        last_sync_status=last.status if last else None,
        last_sync_at=iso_time(last.started_at) if last else None,
        last_sync_error=last.error if last else None,
        status=status,
        status_message=status_message,
        # The DAGs validation found in the live release; without the structure check, its .py files.
        dag_count=len((live.validation_summary or {}).get("dags") or []) or dag_files if live else 0,
        live_author=live.author if live else None,
        live_committed_at=iso_time(live.committed_at) if live else None,
        last_sync=_sync_run_dict(last, repo.name) if last else None,
    )


_ERRORS_IN_WORDS = {
    "authentication_failed": "Invalid credentials",
    "remote_unreachable": "Remote unreachable",
    "ref_not_found": "Branch or tag not found",
    "git_timeout": "Git timed out",
    "lock_busy": "Another sync held the lock too long",
    "unexpected": "Sync crashed",
}


def _in_words(run: SyncRun) -> str | None:
    """A failed run's reason in a few words, for a status line: 'Invalid credentials',
    'Validation failed: 3 errors in 2 files'."""
    if run.status != "failed":
        return None
    if run.error_code in _ERRORS_IN_WORDS:
        return _ERRORS_IN_WORDS[run.error_code]
    error = run.error or "Sync failed"
    if error.startswith("Validation failed:"):
        return ":".join(error.split(":")[:2])  # drop the list of findings after the counts
    return error.splitlines()[0][:200]


def _reason_run(session: Session, last: SyncRun | None) -> SyncRun | None:
    """The run that explains the repository's state: for a 'rejected' run (the head commit was already
    refused), the failed run that refused it, so a retry does not hide the failure."""
    if last is None or last.status != "rejected":
        return last
    failed = session.scalar(
        select(SyncRun)
        .where(SyncRun.repository_id == last.repository_id, SyncRun.status == "failed")
        .where(SyncRun.commit_sha == last.commit_sha)
        .order_by(SyncRun.id.desc())
    )
    return failed or last


def _status_of(repo: Repository, live: Release | None, last: SyncRun | None) -> tuple[str, str | None]:
    if last is not None and last.status in ("queued", "running"):
        return "syncing", None
    if not repo.enabled:
        return "disabled", None
    if last is not None and last.status == "failed":
        return "failed", _in_words(last)
    if repo.pinned_release_id:
        return "pinned", None
    return ("synced" if live is not None else "pending"), None


def iso_time(value: datetime | None) -> str | None:
    return _aware(value).isoformat() if value is not None else None


def _sync_run_dict(run: SyncRun, repository: str | None = None) -> dict:
    duration = None
    if run.ended_at and run.started_at:
        duration = round((_aware(run.ended_at) - _aware(run.started_at)).total_seconds(), 3)
    return {
        "id": run.id,
        "repository": repository,
        "trigger": run.trigger,
        "airflow_run_id": run.airflow_run_id,
        "status": run.status,
        "commit": run.commit_sha,
        "release_id": run.release_id,
        "error": run.error,
        "error_code": run.error_code,
        "status_message": _in_words(run),
        "started_at": iso_time(run.started_at),
        "ended_at": iso_time(run.ended_at),
        "duration_seconds": duration,
    }


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _release_dict(
    release: Release, *, with_findings: bool = False, repository: str | None = None, pinned_id: int | None = None
) -> dict:
    data = {
        "id": release.id,
        "repository": repository,
        "commit": release.commit_sha,
        "short_commit": release.commit_sha[:7],
        "ref": release.ref,
        "status": release.status,
        "author": release.author,
        "message": (release.message or "").splitlines()[0] if release.message else "",
        "committed_at": iso_time(release.committed_at),
        "created_at": iso_time(release.created_at),
        "file_count": release.file_count,
        "validation": release.validation_summary,
        "on_disk": release.pruned_at is None,
        "pinned": release.id == pinned_id,
        # file -> why: left out of Airflow because another repository owns its dag_id (conflicts.py)
        "hidden_files": release.hidden_files or {},
        "tests": _tests_overview(release.tests),
    }
    if with_findings:
        data["findings"] = [
            {
                "rule": f.rule,
                "severity": f.severity,
                "file": f.file,
                "line": f.line,
                "message": f.message,
                "hint": f.hint,
            }
            for f in release.findings
        ]
    return data


def _tests_overview(tests: dict | None) -> dict | None:
    """The test results without the bulky JUnit XML and output (those stay in the DB for `dagops tests`)."""
    if not tests:
        return None
    modules = [{k: v for k, v in m.items() if k not in ("junit_xml", "output_tail")} for m in tests.get("modules", [])]
    return {**tests, "modules": modules}


def status() -> dict:
    """A whole-installation summary for `dagops status`."""
    from airflow_dagops.validate import sandbox_host

    repos = list_repositories()
    support = sandbox_host.sandbox_support()
    return {
        "dagops_home": str(settings.dagops_home()),
        "state_db": redact(settings.sql_alchemy_conn()),
        "dags_folder": str(settings.dags_folder()),
        "sandbox": {
            "available": support.available,
            "setting": settings.get("sandbox"),
            "detail": sandbox_host.describe_support(),
        },
        "repositories": [r.to_dict() for r in repos],
    }
