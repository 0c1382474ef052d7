"""Registering, changing and removing repositories. Bad input changes nothing; a new source is checked with `git ls-
remote` first.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from airflow_dagops import paths, settings
from airflow_dagops.airflow import namespace_meta
from airflow_dagops.deploy.conflicts import reconcile_conflicts
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.deploy.publish import unpublish
from airflow_dagops.errors import Conflict, InvalidInput
from airflow_dagops.git.credentials import attached_origin, attaching
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.releases.golive import write_namespace_meta
from airflow_dagops.repositories import options as repo_options
from airflow_dagops.repositories.info import RepositoryInfo, repository_info
from airflow_dagops.safety import display_url, validate_name, validate_ref, validate_subdir, validate_url
from airflow_dagops.safety import validate_conn_id as _safe_conn_id
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Repository
from airflow_dagops.store.queries import load_repository

log = logging.getLogger(__name__)


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
    from airflow_dagops.releases import promotion as rollout

    rollout.ensure_not_a_stage_namespace(session, namespace)


def _check_stage_namespaces(session: Session, name: str, namespace: str, stages: dict | None) -> None:
    from airflow_dagops.releases import promotion as rollout

    rollout.check_stage_namespaces(session, name, namespace, stages)


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
