"""Versions, as use cases: deploy a chosen commit or tag, read the deploy log, and the `dagops_deploy` actions.

A deploy is an operator choosing an exact commit for prod. It goes through the one gate exactly as a sync's new
commit does (releases/gate.py, purpose DEPLOY: validation, dag_id conflicts, skip-files, dependency conflicts, the
isolated environment, and the repository's own tests when its .dagops.yaml asks for them, run here rather than
deferred, so a deploy answers at once), and through the same export and Release row (releases/candidate.py).
Only a release that passes goes live, with a deploy event (reason "deploy"); old release folders are pruned as
after a sync; and the repository is pinned to it, otherwise the next poll would put the branch head back (the one
rule for pins, releases/pins.py: a pinned repository's pin moves to the deployed release).
A deploy skips the promotion stages on purpose: it acts on prod directly, like rollback and pin (an open
promotion cannot overwrite it, since promoting to prod needs the repository unpinned; docs/promotion.md).
Rollback, pin and unpin live in releases/rollback.py; this module only adds what they lack.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from airflow_dagops import paths, settings
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.deploy.releases import retire_release_dir
from airflow_dagops.errors import DagOpsError, InvalidInput, NotFound, RefNotFound, ValidationFailed
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.git.runner import run_git
from airflow_dagops.releases.candidate import RepoSnapshot, export_and_check
from airflow_dagops.releases.gate import STAYS_LIVE, GatePurpose, tests_blocked
from airflow_dagops.releases.golive import go_live, mark_pruned
from airflow_dagops.releases.history import deploy_log  # noqa: F401 - re-exported
from airflow_dagops.releases.rollback import pin, rollback, unpin
from airflow_dagops.safety import validate_ref
from airflow_dagops.store.db import read_connection, session_scope
from airflow_dagops.store.models import Release
from airflow_dagops.store.queries import get_row, load_repository
from airflow_dagops.store.views import RepositoryInfo, repository_info
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
    """Put the commit `version` names (a sha, 7+ hex digits, or a tag/branch on the remote) through the gate
    (purpose DEPLOY, its tests included), publish it when it passes, and pin the repository to it. A version the
    gate holds back changes nothing live."""
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
        release_id, report = export_and_check(
            snapshot, mirror, info, source_ref, purpose=GatePurpose.DEPLOY, validator=validator, progress=progress
        )
        if not report.passed:
            tests = (tests_blocked(report) or "").removesuffix(STAYS_LIVE)
            why = f"was held back by its {tests}" if tests else f"did not pass validation: {report.describe_errors()}"
            raise ValidationFailed(
                f"{name}: {version} ({info.sha[:12]}) {why}. Nothing was deployed; what was live stays live.",
                details={"release_id": release_id, "findings": [f.to_dict() for f in report.findings]},
            )
        progress("publishing")
        return _go_live_pinned(name, release_id, actor=actor)


def _go_live_pinned(name: str, release_id: int, *, actor: str) -> RepositoryInfo:
    """Publish the deployed release, pin the repository to it and prune old release folders, as a sync's publish
    does; the folders go only after the commit, so no row ever claims a folder that is gone."""
    with session_scope() as session:
        repo = load_repository(session, name)
        release = get_row(session, Release, release_id)
        # A deployed version stays until unpinned: pinned to it, as every move by hand (releases/pins.py).
        go_live(session, repo, release, actor=actor, reason="deploy", by_hand=True, pin=True)
        doomed = mark_pruned(session, repo)
        session.flush()
        log.info("%s deployed %s of %s and pinned it", actor, release.commit_sha[:12], name)
        info = repository_info(session, repo)
    for path in doomed:
        retire_release_dir(path)
    return info


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
