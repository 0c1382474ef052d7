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
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from airflow_dagops import paths, settings
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
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.safety import (
    display_url,
    redact,
    validate_name,
    validate_ref,
    validate_subdir,
    validate_url,
)
from airflow_dagops.store.db import read_connection, session_scope
from airflow_dagops.store.models import DeployEvent, Finding, Release, Repository, SyncRun, utcnow
from airflow_dagops.validate import Report, validate
from airflow_dagops.validate.gate import apply_gate

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
    live_commit: str | None = None
    live_release_id: int | None = None
    live_message: str | None = None
    pinned_release_id: int | None = None
    dag_files: int = 0
    last_sync_status: str | None = None
    last_sync_at: str | None = None
    last_sync_error: str | None = None

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
) -> RepositoryInfo:
    """Register a repository. With `verify`, the remote and its ref are checked first; bad input changes nothing."""
    name = validate_name(name, what="repository name")
    namespace = validate_name(namespace or name, what="namespace")
    url = validate_url(url.strip(), allowed_protocols=settings.allowed_protocols())
    ref = validate_ref(ref)
    subdir = validate_subdir(subdir)
    conn_id = _validate_conn_id(conn_id)
    if poll_interval is not None and poll_interval < 1:
        raise InvalidInput(f"poll interval must be a positive number of seconds, got {poll_interval}")
    with session_scope() as session:
        _ensure_free(session, name, namespace)
    link = paths.namespace_link(namespace)
    if (link.exists() or link.is_symlink()) and not link.is_symlink():
        raise Conflict(
            f"{link} already exists in the dags folder and is not managed by dagops; "
            "choose another namespace or move that folder away"
        )
    if verify:
        Mirror(path=paths.mirror_dir(name), url=url, conn_id=conn_id).ls_remote(ref)
    with session_scope() as session:
        _ensure_free(session, name, namespace)  # again: another process may have registered it meanwhile
        repo = Repository(
            name=name,
            url=url,
            ref=ref,
            namespace=namespace,
            conn_id=conn_id,
            subdir=subdir,
            priority=priority,
            poll_interval=poll_interval,
            enabled=enabled,
        )
        session.add(repo)
        session.flush()
        log.info("registered repository %s (%s @ %s) as namespace %s", name, display_url(url), ref, namespace)
        return _info(session, repo)


def _validate_conn_id(conn_id: str | None) -> str | None:
    if conn_id in (None, ""):
        return None
    if conn_id.startswith("-") or len(conn_id) > 250 or any(c.isspace() for c in conn_id):
        raise InvalidInput(f"invalid connection id {conn_id!r}")
    return conn_id


def _ensure_free(session: Session, name: str, namespace: str) -> None:
    if session.scalar(select(Repository).where(Repository.name == name)):
        raise Conflict(f"a repository named {name!r} is already registered; pick another name or remove it first")
    owner = session.scalar(select(Repository).where(Repository.namespace == namespace))
    if owner:
        raise Conflict(
            f"namespace {namespace!r} is already used by repository {owner.name!r}; "
            "each repository publishes into its own namespace (use --namespace)"
        )


def list_repositories() -> list[RepositoryInfo]:
    with session_scope() as session:
        repos = session.scalars(select(Repository).order_by(Repository.priority, Repository.name)).all()
        return [_info(session, repo) for repo in repos]


def get_repository(name: str) -> RepositoryInfo:
    with session_scope() as session:
        return _info(session, _load(session, name))


def repository_history(name: str, *, limit: int = 10) -> dict:
    """Recent sync runs, releases (with findings) and deploy events of one repository."""
    with session_scope() as session:
        repo = _load(session, name)
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
                    "created_at": _iso(e.created_at),
                }
                for e in events
            ],
        }


def remove_repository(name: str, *, keep_dags: bool = False) -> str:
    """Unregister a repository. Its DAGs leave Airflow, unless `keep_dags` leaves a plain copy in place."""
    with session_scope() as session:
        repo = _load(session, name)
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
            session.delete(_load(session, name))
        shutil.rmtree(paths.mirror_dir(name), ignore_errors=True)
        shutil.rmtree(paths.namespace_releases_dir(namespace), ignore_errors=True)
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
        _full_ref, remote = Mirror(path=paths.mirror_dir(name), url=url, conn_id=conn_id).ls_remote(ref)
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
) -> SyncOutcome:
    """Bring one repository's namespace up to date with its tracked ref."""
    progress = progress or (lambda _step: None)
    if trigger not in TRIGGERS:
        raise InvalidInput(f"unknown trigger {trigger!r}; one of {', '.join(TRIGGERS)}")
    with read_connection() as connection:
        snapshot = _RepoSnapshot.read(connection, name)
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
        return _sync_locked(name, full_ref, trigger, airflow_run_id, force, progress, validator, mirror)


def _sync_locked(name, full_ref, trigger, airflow_run_id, force, progress, validator, mirror) -> SyncOutcome:
    run_id, snapshot = _start_run(name, trigger, airflow_run_id)
    try:
        paths.check_layout()
        progress("fetching")
        info = mirror.fetch(full_ref)
        commit = info.sha
        if not force and commit == snapshot.last_seen_commit and snapshot.link_healthy():
            # Another sync processed this commit while we waited for the lock.
            outcome = _unchanged_outcome(snapshot, commit, run_id)
            _finish_run(run_id, outcome.status, commit, snapshot.live_release_id)
            return outcome
        if not force and commit == snapshot.live_commit and snapshot.live_path:
            progress("publishing")
            publish(paths.namespace_link(snapshot.namespace), Path(snapshot.live_path))
            _mark_seen(name, commit)
            _finish_run(run_id, "success", commit, snapshot.live_release_id)
            return SyncOutcome(
                name,
                "published",
                f"{name}: live link restored to {commit[:12]}",
                commit,
                snapshot.live_release_id,
                run_id,
            )
        progress("exporting")
        release_id, report = _export_and_validate(snapshot, mirror, info, full_ref, validator, progress)
        if not report.passed:
            _mark_seen(name, commit)
            message = report.describe_errors()
            _finish_run(run_id, "failed", commit, release_id, message)
            return SyncOutcome(
                name,
                "failed",
                f"{name}: {message}. The previous release stays live.",
                commit,
                release_id,
                run_id,
                [f.to_dict() for f in report.findings],
            )
        progress("publishing")
        _publish_and_record(name, release_id, run_id, actor=trigger, reason=f"sync ({trigger})")
        return SyncOutcome(
            name,
            "published",
            f"{name}: published {commit[:12]}",
            commit,
            release_id,
            run_id,
            [f.to_dict() for f in report.findings],
        )
    except DagOpsError as err:
        _finish_run(run_id, "failed", None, None, redact(str(err)))
        return SyncOutcome(name, "failed", f"{name}: {redact(str(err))}", sync_run_id=run_id)
    except BaseException as err:
        _finish_run(run_id, "failed", None, None, redact(f"unexpected error: {type(err).__name__}: {err}"))
        raise


def _unchanged_outcome(snapshot: _RepoSnapshot, commit: str, run_id: int | None = None) -> SyncOutcome:
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


@dataclass
class _RepoSnapshot:
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
    def read(cls, session: Session | Connection, name: str) -> _RepoSnapshot:
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


def _export_and_validate(snapshot, mirror, info, full_ref, validator, progress) -> tuple[int, Report]:
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
    report = validator(dest, extra_findings=export.findings, dag_owners=_dag_owners_elsewhere(snapshot.id))
    report = apply_gate(dest, report)
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
        release.validation_summary = report.summary()
        if release.status != "live":
            release.status = "validated" if report.passed else "failed"
        release.findings = [
            Finding(rule=f.rule, severity=f.severity, file=f.file, line=f.line, message=f.message, hint=f.hint)
            for f in report.findings
        ]
        session.flush()
        return release.id, report


def _dag_owners_elsewhere(repository_id: int) -> dict[str, str]:
    """dag_id -> namespace for the DAGs other repositories have live: a release may not take them over."""
    with read_connection() as connection:
        rows = connection.execute(
            select(Release.namespace, Release.validation_summary)
            .join(Repository, Repository.live_release_id == Release.id)
            .where(Repository.id != repository_id)
        ).all()
    return {dag["dag_id"]: namespace for namespace, summary in rows for dag in (summary or {}).get("dags", [])}


def _publish_and_record(name: str, release_id: int, run_id: int, *, actor: str, reason: str) -> None:
    """Swap the namespace link, then record it all in one transaction: the release is live, the commit
    seen, old releases pruned, the run finished. The link is the truth Airflow reads; should the
    process die before the commit, the next sync adopts the link (see `_recover`)."""
    with session_scope() as session:
        repo = _load(session, name)
        release = session.get(Release, release_id)
        publish(paths.namespace_link(repo.namespace), Path(release.path))
        _record_live(session, repo, release, actor=actor, reason=reason)
        repo.last_seen_commit = release.commit_sha
        doomed = _mark_pruned(session, repo)
        run = session.get(SyncRun, run_id)
        run.status, run.commit_sha, run.release_id, run.ended_at = "success", release.commit_sha, release_id, utcnow()
    # Only after the commit, so no row ever claims a folder that is gone.
    for path in doomed:
        retire_release_dir(path)


def _record_live(session: Session, repo: Repository, release: Release, *, actor: str, reason: str) -> None:
    previous_id = repo.live_release_id
    if previous_id and previous_id != release.id:
        previous = session.get(Release, previous_id)
        if previous is not None and previous.status == "live":
            previous.status = "retired"
    release.status = "live"
    repo.live_release_id = release.id
    if previous_id != release.id:
        session.add(
            DeployEvent(
                repository_id=repo.id,
                from_release_id=previous_id,
                to_release_id=release.id,
                actor=actor,
                reason=reason,
            )
        )


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


def _keep_pinned(snapshot: _RepoSnapshot, trigger, airflow_run_id) -> SyncOutcome:
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
    a sync, so removing thousands of files never delays a publish."""
    return empty_release_trash(settings.dagops_home() / "releases")


def _mark_seen(name: str, commit: str) -> None:
    with session_scope() as session:
        _load(session, name).last_seen_commit = commit


# -- sync run bookkeeping ---------------------------------------------------------------------------------
def _start_run(name: str, trigger: str, airflow_run_id: str | None) -> tuple[int, _RepoSnapshot]:
    """Record the run, repair what a killed sync left behind, and read the repository: one transaction."""
    with session_scope() as session:
        repo = _load(session, name)
        run = SyncRun(repository_id=repo.id, trigger=trigger, airflow_run_id=airflow_run_id)
        session.add(run)
        _recover(session, repo)
        session.flush()
        snapshot = _RepoSnapshot.read(session, name)
        session.flush()
        return run.id, snapshot


def _finish_run(run_id: int, status: str, commit: str | None, release_id: int | None, error: str | None = None):
    with session_scope() as session:
        run = session.get(SyncRun, run_id)
        run.status = status
        run.commit_sha = commit or run.commit_sha
        run.release_id = release_id
        run.error = redact(error) if error else None
        run.ended_at = utcnow()


def _record_run(snapshot, trigger, airflow_run_id, status, commit, release_id, error=None) -> int:
    with session_scope() as session:
        now = utcnow()
        run = SyncRun(
            repository_id=snapshot.id,
            trigger=trigger,
            airflow_run_id=airflow_run_id,
            status=status,
            commit_sha=commit,
            release_id=release_id,
            error=redact(error) if error else None,
            started_at=now,
            ended_at=now,
        )
        session.add(run)
        session.flush()
        return run.id


def _record_failure(snapshot, trigger, airflow_run_id, commit, err: DagOpsError) -> SyncOutcome:
    message = redact(str(err))
    run_id = _record_run(snapshot, trigger, airflow_run_id, "failed", commit, None, message)
    return SyncOutcome(snapshot.name, "failed", f"{snapshot.name}: {message}", commit, sync_run_id=run_id)


# -- reading --------------------------------------------------------------------------------------------
def _load(session: Session, name: str) -> Repository:
    repo = session.scalar(select(Repository).where(Repository.name == name))
    if repo is None:
        raise NotFound(f"no repository named {name!r} is registered; see `dagops repos list`")
    return repo


def _live_path(session: Session, repo: Repository) -> str | None:
    if not repo.live_release_id:
        return None
    release = session.get(Release, repo.live_release_id)
    return release.path if release else None


def _info(session: Session, repo: Repository) -> RepositoryInfo:
    live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
    last = session.scalar(select(SyncRun).where(SyncRun.repository_id == repo.id).order_by(SyncRun.id.desc()))
    dag_files = 0
    if live is not None:
        manifest = read_manifest(Path(live.path)) or {}
        dag_files = sum(1 for path in manifest.get("files", {}) if path.endswith(".py"))
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
        live_commit=live.commit_sha if live else None,
        live_release_id=repo.live_release_id,
        live_message=(live.message or "").splitlines()[0] if live and live.message else None,
        pinned_release_id=repo.pinned_release_id,
        dag_files=dag_files,
        last_sync_status=last.status if last else None,
        last_sync_at=_iso(last.started_at) if last else None,
        last_sync_error=last.error if last else None,
    )


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()


def _sync_run_dict(run: SyncRun) -> dict:
    return {
        "id": run.id,
        "trigger": run.trigger,
        "airflow_run_id": run.airflow_run_id,
        "status": run.status,
        "commit": run.commit_sha,
        "release_id": run.release_id,
        "error": run.error,
        "started_at": _iso(run.started_at),
        "ended_at": _iso(run.ended_at),
    }


def _release_dict(release: Release, *, with_findings: bool = False) -> dict:
    data = {
        "id": release.id,
        "commit": release.commit_sha,
        "ref": release.ref,
        "status": release.status,
        "author": release.author,
        "message": (release.message or "").splitlines()[0] if release.message else "",
        "committed_at": _iso(release.committed_at),
        "created_at": _iso(release.created_at),
        "file_count": release.file_count,
        "validation": release.validation_summary,
        "on_disk": release.pruned_at is None,
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


def status() -> dict:
    """A whole-installation summary for `dagops status`."""
    repos = list_repositories()
    return {
        "dagops_home": str(settings.dagops_home()),
        "state_db": redact(settings.sql_alchemy_conn()),
        "dags_folder": str(settings.dags_folder()),
        "repositories": [r.to_dict() for r in repos],
    }
