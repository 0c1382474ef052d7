"""A cluster policy shipped through Airflow's `airflow.policy` entry point (no airflow_local_settings.py to
edit): every DAG published by dagops is tagged `dagops:<namespace>` and `dagops-repo:<repository>`, so the
Airflow UI can filter a team's DAGs; a repository's `access_control` becomes its DAGs' access_control (FAB
auth manager); in a promotion stage before the last, dag_ids get the stage's suffix and new DAGs start
paused, so a staging copy never clashes with production; a DAG in an A/B experiment gets the experiment's gate on
every task (airflow/experiment_gate.py), and the candidate's namespace `<namespace>--ab` shows only the experiment's
DAGs. DAGs outside dagops namespaces are untouched.

It runs in the dag-processor for every parsed DAG, so it reads no database: the namespace folder is a
symlink to an immutable release whose manifest names the repository (cached per release), and the
namespace's settings are in a small JSON file (airflow_dagops/namespace_meta.py, cached by mtime).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from airflow.dag_processing.bundles.base import get_bundle_base_folder
from airflow.exceptions import AirflowClusterPolicySkipDag
from airflow.policies import hookimpl

from airflow_dagops import paths, settings
from airflow_dagops.airflow import experiment_gate, namespace_meta
from airflow_dagops.release_manifest import read_manifest

log = logging.getLogger(__name__)


@hookimpl
def dag_policy(dag) -> None:
    found = _namespace_of(getattr(dag, "fileloc", None))
    if found is None:
        return
    namespace, repository, snapshot = found
    tags = {f"dagops:{namespace}", f"dagops-repo:{repository}"}
    if dag.tags is None:
        dag.tags = set(tags)
    else:
        dag.tags.update(tags)
    meta = _settings(namespace, snapshot)
    experiment = experiment_gate.experiment_of(meta, dag.dag_id)
    if experiment is None and meta.get("only_experiment_dags"):
        # The candidate's namespace of an A/B experiment holds its whole release: only the experiment's DAG runs.
        raise AirflowClusterPolicySkipDag(f"{dag.dag_id} is not in the A/B experiment of namespace {namespace}")
    if experiment is not None:
        experiment_gate.install(dag, experiment)
    if meta.get("access_control"):
        dag.access_control = {role: set(perms) for role, perms in meta["access_control"].items()}
    suffix = meta.get("dag_id_suffix")
    if suffix and not dag.dag_id.endswith(suffix):
        dag.dag_id = f"{dag.dag_id}{suffix}"
    if meta.get("paused"):
        dag.is_paused_upon_creation = True


def published_by(fileloc: str | None) -> tuple[str, str] | None:
    """(namespace, repository) when `fileloc` lies in a namespace dagops publishes, else None."""
    found = _namespace_of(fileloc)
    return (found[0], found[1]) if found else None


def namespace_settings(fileloc: str | None) -> tuple[str, dict] | None:
    """(namespace, the settings the policy applies to its DAGs) when `fileloc` lies in a namespace dagops
    publishes, else None."""
    found = _namespace_of(fileloc)
    return (found[0], _settings(found[0], found[2])) if found else None


def _settings(namespace: str, snapshot: dict | None) -> dict:
    """A folder of the dagops-releases bundle carries the namespace's settings as they were in its version (on a
    dag-processor or worker without dagops_home, the only place they are); the dags folder reads the live ones."""
    return (snapshot if snapshot is not None else namespace_meta.read(namespace)) or {}


def _namespace_of(fileloc: str | None) -> tuple[str, str, dict | None] | None:
    """(namespace, repository, the settings snapshot of a bundle folder or None) for a file dagops published:
    under a namespace link of the dags folder (symlinks mode), or in a folder of the dagops-releases bundle
    (bundle mode: its tracking folder in the dag-processor, a version folder on a worker)."""
    if not fileloc:
        return None
    path = Path(fileloc)
    for root, depth in _roots():
        try:
            relative = path.relative_to(root)
        except ValueError:
            continue
        if len(relative.parts) < depth + 2:
            return None  # a file directly in the root belongs to no namespace
        base = root.joinpath(*relative.parts[:depth])
        folder = base / relative.parts[depth]
        if depth == 0 and not folder.is_symlink():
            return None  # the dags folder and the tracking folder hold links; anything else is not ours
        owner = _owner_of_release(str(folder.resolve()))
        if depth:
            snapshot = _snapshot(str(base), folder.name)
        else:  # the tracking folder's snapshots change at each refresh; the dags folder has none
            snapshot = namespace_meta.read_snapshot(root, folder.name)
        # A promotion stage's folder is a hard-linked copy of the release, whose manifest still names the prod
        # namespace: the folder's own name is the namespace (and its meta carries the stage's suffix).
        return (folder.name, owner[1], snapshot) if owner else None
    return None


def _roots() -> list[tuple[Path, int]]:
    """(folder, how many levels below it the namespace folders are)."""
    bundle = get_bundle_base_folder(paths.RELEASES_BUNDLE)
    return [(settings.dags_folder(), 0), (bundle / "tracking", 0), (bundle / "versions", 1)]


@functools.lru_cache(maxsize=256)
def _snapshot(version_root: str, namespace: str) -> dict | None:
    """A version folder never changes once built, so its settings snapshot is read once."""
    return namespace_meta.read_snapshot(Path(version_root), namespace)


@functools.lru_cache(maxsize=1024)
def _owner_of_release(release_dir: str) -> tuple[str, str] | None:
    """Releases never change once published, so their owner is cached by folder."""
    manifest = read_manifest(Path(release_dir)) or {}
    if manifest.get("namespace") and manifest.get("repository"):
        return manifest["namespace"], manifest["repository"]
    return None
