"""Versions, as use cases: deploy a chosen commit or tag, read the deploy log, and the `dagops_deploy` actions.

Deploying a version validates it exactly as a sync validates a new commit (same export, pipeline, gate and
Release row), publishes it only when it passes, records a deploy event with reason "deploy", and pins the
repository to it: otherwise the next poll would put the branch head back and undo the deploy.
Rollback, pin and unpin are the services' own; this module only adds what they lack.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from sqlalchemy import select

from airflow_dagops import paths, settings
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.errors import DagOpsError, InvalidInput, NotFound, RefNotFound, ValidationFailed
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.git.runner import run_git
from airflow_dagops.releases.golive import go_live
from airflow_dagops.releases.rollback import pin, rollback, unpin
from airflow_dagops.repositories.info import RepositoryInfo, repository_info
from airflow_dagops.safety import validate_ref
from airflow_dagops.store.db import read_connection, session_scope
from airflow_dagops.store.models import DeployEvent, Release, iso_time
from airflow_dagops.store.queries import load_repository
from airflow_dagops.sync.sync import RepoSnapshot, export_and_validate
from airflow_dagops.validate import Report, validate

log = logging.getLogger(__name__)

VERSION_REFS = "refs/dagops/versions"  # deployed tags and commits keep a ref here, so their objects stay
_HEX = re.compile(r"^[0-9a-f]{7,40}$")
ACTIONS = ("deploy", "rollback", "pin", "unpin")
Progress = Callable[[str], None]


def deploy_version(
    name: str,
    version: str,
    *,
    actor: str,
    progress: Progress | None = None,
    validator: Callable[..., Report] = validate,
) -> RepositoryInfo:
    """Validate the commit `version` names (a sha, 7+ hex digits, or a tag/branch on the remote), publish it
    when it passes, and pin the repository to it. A version that fails validation changes nothing live."""
    progress = progress or (lambda _step: None)
    version = (version or "").strip()
    if not version:
        raise InvalidInput("give a version: a commit sha (7+ hex digits) or a tag")
    validate_ref(version)
    with read_connection() as connection:
        RepoSnapshot.read(connection, name)  # NotFound before taking the lock
    with repository_lock(paths.locks_dir(), name, timeout=settings.get_int("lock_timeout")):
        with read_connection() as connection:
            snapshot = RepoSnapshot.read(connection, name)
        paths.check_layout()
        mirror = Mirror(path=paths.mirror_dir(name), url=snapshot.url, conn_id=snapshot.conn_id)
        progress(f"resolving {version}")
        info, source_ref = _resolve(mirror, snapshot, version)
        progress(f"exporting {info.sha[:12]}")
        release_id, report = export_and_validate(snapshot, mirror, info, source_ref, validator, progress)
        if not report.passed:
            raise ValidationFailed(
                f"{name}: {version} ({info.sha[:12]}) did not pass validation: {report.describe_errors()}. "
                "Nothing was deployed; what was live stays live.",
                details={"release_id": release_id, "findings": [f.to_dict() for f in report.findings]},
            )
        progress("publishing")
        with session_scope() as session:
            repo = load_repository(session, name)
            release = session.get(Release, release_id)
            go_live(session, repo, release, actor=actor, reason="deploy")
            repo.pinned_release_id = release.id  # a deployed version stays until unpinned
            session.flush()
            log.info("%s deployed %s of %s and pinned it", actor, info.sha[:12], name)
            return repository_info(session, repo)


def _resolve(mirror: Mirror, snapshot, version: str):
    """(commit info, the ref it came from). A sha is looked for among the mirror's objects after fetching the
    tracked ref (it is usually an older commit of the branch); a name is fetched into a ref of its own, so
    the tracked ref never moves."""
    lowered = version.lower()
    if _HEX.match(lowered):
        full_ref, _head = mirror.ls_remote(snapshot.ref)
        mirror.fetch(full_ref)
        try:
            info = mirror.commit_info(f"{lowered}^{{commit}}")
        except RefNotFound:
            info = None
        if info is None and len(lowered) == 40:
            try:  # not on the branch: servers that allow it hand out any reachable commit by sha
                mirror.fetch_into(lowered, f"{VERSION_REFS}/{lowered}")
                info = mirror.commit_info(lowered)
            except DagOpsError:
                info = None
        if info is not None:
            mirror_keep(mirror, info.sha)
            return info, full_ref
    try:
        remote_ref, _sha = mirror.ls_remote(version)
    except RefNotFound:
        raise NotFound(
            f"{version!r} is neither a commit of {snapshot.name!r} (on its branch {snapshot.ref!r}) nor a tag "
            "or branch of its remote; see `git log` / `git tag` there"
        ) from None
    local_ref = f"{VERSION_REFS}/named/{remote_ref.removeprefix('refs/')}"
    mirror.fetch_into(remote_ref, local_ref)
    info = mirror.commit_info(local_ref)
    mirror_keep(mirror, info.sha)
    return info, remote_ref


def mirror_keep(mirror: Mirror, sha: str) -> None:
    """Keep a ref on a deployed commit, so a later rollback can re-export it even after the branch moved."""
    run_git(["-C", str(mirror.path), "update-ref", f"{VERSION_REFS}/{sha}", sha], timeout=mirror.timeout, check=False)


def deploy_log(name: str, limit: int = 20) -> list[dict]:
    """The deploy events of a repository, newest first: when, from which commit to which, who, and why."""
    with session_scope() as session:
        repo = load_repository(session, name)
        events = session.scalars(
            select(DeployEvent)
            .where(DeployEvent.repository_id == repo.id)
            .order_by(DeployEvent.id.desc())
            .limit(max(1, limit))
        ).all()
        ids = {e.from_release_id for e in events} | {e.to_release_id for e in events}
        ids.discard(None)
        commits = (
            dict(session.execute(select(Release.id, Release.commit_sha).where(Release.id.in_(ids))).all())
            if ids
            else {}
        )
        return [
            {
                "id": e.id,
                "at": iso_time(e.created_at),
                "from_release_id": e.from_release_id,
                "to_release_id": e.to_release_id,
                "from_commit": commits.get(e.from_release_id),
                "to_commit": commits.get(e.to_release_id),
                "actor": e.actor,
                "reason": e.reason,
                "diff": e.diff,
            }
            for e in events
        ]


def run_action(conf: dict, *, actor: str, progress: Progress | None = None) -> dict:
    """What a `dagops_deploy` run does with its conf {"repository", "action", "version"?, "pin"?}."""
    if not isinstance(conf, dict):
        raise InvalidInput('dagops_deploy needs a conf object: {"repository": NAME, "action": ...}')
    name, action = conf.get("repository"), conf.get("action")
    version = conf.get("version")
    if not isinstance(name, str) or not name:
        raise InvalidInput('dagops_deploy needs conf {"repository": NAME, "action": ...}')
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if version is not None and not isinstance(version, (str, int)):
        raise InvalidInput('"version" is a release id, a commit sha or (for deploy) a tag')
    if action == "deploy":
        if version is None:
            raise InvalidInput('action "deploy" needs a "version" (a commit sha or a tag)')
        info = deploy_version(name, str(version), actor=actor, progress=progress)
    elif action == "rollback":
        info = rollback(name, version, actor=actor, pin=bool(conf.get("pin")))
    elif action == "pin":
        info = pin(name, version, actor=actor)
    else:
        info = unpin(name, actor=actor)
    return {
        "repository": info.name,
        "action": action,
        "live_commit": info.live_commit,
        "live_release_id": info.live_release_id,
        "pinned_release_id": info.pinned_release_id,
    }
