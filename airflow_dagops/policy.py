"""A cluster policy shipped through Airflow's `airflow.policy` entry point (no airflow_local_settings.py to
edit): every DAG published by dagops is tagged `dagops:<namespace>` and `dagops-repo:<repository>`, so the
Airflow UI can filter a team's DAGs. DAGs outside dagops namespaces are untouched.

It runs in the dag-processor for every parsed DAG, so it reads no database: the namespace folder is a
symlink to an immutable release whose manifest names the repository, cached per release.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from airflow.policies import hookimpl

from airflow_dagops import settings
from airflow_dagops.deploy.releases import read_manifest

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
    return _owner_of_release(str(link.resolve()))


@functools.lru_cache(maxsize=1024)
def _owner_of_release(release_dir: str) -> tuple[str, str] | None:
    """Releases never change once published, so their owner is cached by folder."""
    manifest = read_manifest(Path(release_dir)) or {}
    if manifest.get("namespace") and manifest.get("repository"):
        return manifest["namespace"], manifest["repository"]
    return None
