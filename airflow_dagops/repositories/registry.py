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
from airflow_dagops.deploy import dags_folder, live_set
from airflow_dagops.deploy.conflicts import reconcile_conflicts
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.deploy.publish import unpublish
from airflow_dagops.errors import Conflict
from airflow_dagops.git.credentials import attached_origin, attaching
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.releases.golive import write_namespace_meta
from airflow_dagops.releases.stages import check_stage_namespaces, ensure_not_a_stage_namespace
from airflow_dagops.repositories import options as repo_options
from airflow_dagops.safety import display_url, validate_name
from airflow_dagops.safety import validate_conn_id as _safe_conn_id
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Repository
from airflow_dagops.store.queries import load_repository
from airflow_dagops.store.views import RepositoryInfo, repository_info

log = logging.getLogger(__name__)


# -- registry ----------------------------------------------------------------------------------------
def add_repository(name: str, url: str, *, verify: bool = True, **options) -> RepositoryInfo:
    """Register a repository with any options of repositories/options.py (the rest take their defaults). With
    `verify`, the remote and its ref are checked first; bad input changes nothing."""
    name = validate_name(name, what="repository name")
    values = repo_options.clean_new({**options, "url": url})
    values["namespace"] = values["namespace"] or validate_name(name, what="namespace")
    namespace, url, ref, conn_id = values["namespace"], values["url"], values["ref"], values["conn_id"]
    with session_scope() as session:
        _ensure_free(session, name, namespace)
        check_stage_namespaces(session, name, namespace, values["promotion"])
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
        repo = Repository(name=name, conn_origin=attached_origin(conn_id, url), **values)
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
    ensure_not_a_stage_namespace(session, namespace)


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
            session.delete(load_repository(session, name))  # and its live set rows (bundle mode) with it
        if keep_dags:
            dags_folder.show(namespace)  # the plain copy is the dags-folder bundle's from now on
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
UPDATABLE = repo_options.UPDATABLE  # every option but the namespace


def update_repository(name: str, *, verify: bool = True, **changes) -> RepositoryInfo:
    """Change a repository's settings. A new URL, ref or connection is checked with `git ls-remote` first
    (unless `verify` is false) and makes the next check sync again; bad input changes nothing.

    Setting `conn_id` (even to the same one) attaches the connection to the URL the repository has after the
    change; changing only `url` does not, so the connection's credentials stay with the host they were attached
    for (git/credentials.py) until an admin sets `conn_id` again. Who may do either is the faces' business."""
    clean = repo_options.clean_changes(changes)
    with session_scope() as session:
        repo = load_repository(session, name)
        current = {"url": repo.url, "ref": repo.ref, "conn_id": repo.conn_id}
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
            check_stage_namespaces(session, name, repo.namespace, clean["promotion"])
        for key, value in clean.items():
            setattr(repo, key, value)
        if "conn_id" in clean:
            repo.conn_origin = attached_origin(repo.conn_id, repo.url)
        if source_changed:
            repo.last_seen_commit = None  # follow the new source at the next check
        session.flush()
        write_namespace_meta(repo)
        live_set.refresh(session, repo.namespace)  # bundle mode: its DAGs are parsed with the new settings
        log.info("updated repository %s: %s", name, ", ".join(sorted(clean)) or "nothing")
        info = repository_info(session, repo)
    if "priority" in clean:
        reconcile_conflicts()
    return info
