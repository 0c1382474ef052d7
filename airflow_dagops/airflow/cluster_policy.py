"""A cluster policy shipped through Airflow's `airflow.policy` entry point (no airflow_local_settings.py to
edit): every DAG published by dagops is tagged `dagops:<namespace>` and `dagops-repo:<repository>`, so the
Airflow UI can filter a team's DAGs; a repository's `access_control` becomes its DAGs' access_control (FAB
auth manager); in a promotion stage before the last, dag_ids get the stage's suffix and new DAGs start
paused, so a staging copy never clashes with production. DAGs outside dagops namespaces are untouched.

It runs in the dag-processor for every parsed DAG, so it reads no database: the namespace folder is a
symlink to an immutable release whose manifest names the repository (cached per release), and the
namespace's settings are in a small JSON file (airflow_dagops/namespace_meta.py, cached by mtime).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from airflow.policies import hookimpl

from airflow_dagops import settings
from airflow_dagops.airflow import namespace_meta
from airflow_dagops.release_manifest import read_manifest

log = logging.getLogger(__name__)


@hookimpl
def dag_policy(dag) -> None:
    owner = published_by(getattr(dag, "fileloc", None))
    if owner is None:
        return
    namespace, repository = owner
    tags = {f"dagops:{namespace}", f"dagops-repo:{repository}"}
    if dag.tags is None:
        dag.tags = set(tags)
    else:
        dag.tags.update(tags)
    meta = namespace_meta.read(namespace) or {}
    if meta.get("access_control"):
        dag.access_control = {role: set(perms) for role, perms in meta["access_control"].items()}
    suffix = meta.get("dag_id_suffix")
    if suffix and not dag.dag_id.endswith(suffix):
        dag.dag_id = f"{dag.dag_id}{suffix}"
    if meta.get("paused"):
        dag.is_paused_upon_creation = True


def published_by(fileloc: str | None) -> tuple[str, str] | None:
    """(namespace, repository) when `fileloc` lies in a namespace dagops publishes, else None."""
    if not fileloc:
        return None
    try:
        relative = Path(fileloc).relative_to(settings.dags_folder())
    except ValueError:
        return None
    if len(relative.parts) < 2:
        return None  # a file directly in the dags folder belongs to no namespace
    link = settings.dags_folder() / relative.parts[0]
    if not link.is_symlink():
        return None
    owner = _owner_of_release(str(link.resolve()))
    # A promotion stage's folder is a hard-linked copy of the release, whose manifest still names the prod
    # namespace: the link's own name is the namespace (and its meta carries the stage's suffix).
    return (link.name, owner[1]) if owner else None


@functools.lru_cache(maxsize=1024)
def _owner_of_release(release_dir: str) -> tuple[str, str] | None:
    """Releases never change once published, so their owner is cached by folder."""
    manifest = read_manifest(Path(release_dir)) or {}
    if manifest.get("namespace") and manifest.get("repository"):
        return manifest["namespace"], manifest["repository"]
    return None
