"""The baselines the engine is compared with, run in the same process and on the same repositories.

- Airflow's own `GitDagBundle.refresh()` (apache-airflow-providers-git): the peer to beat.
- A bare `git ls-remote`: the floor for "is there anything new?".
- `git clone --depth 1` + `cp -r` (the seed's "Method 1"): what a naive publish costs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from benchmarks.repos import SourceRepo


class BundleBaseline:
    """A GitDagBundle tracking `main` of a source repository, with its connection given as an env var.

    The connection lives in `AIRFLOW_CONN_<ID>` (consulted before the metastore), so no Airflow
    metadata DB is needed. AIRFLOW_HOME and the bundle storage path must be set before airflow is
    imported; `benchmarks.run` does that first.
    """

    def __init__(self, name: str, repo: SourceRepo):
        from airflow.providers.git.bundles.git import GitDagBundle

        self.name, self.conn_id = name, f"bench_git_{name}"
        os.environ[f"AIRFLOW_CONN_{self.conn_id.upper()}"] = json.dumps({"conn_type": "git", "host": repo.url})
        self.bundle = GitDagBundle(name=name, git_conn_id=self.conn_id, tracking_ref="main", refresh_interval=0)
        self.bundle.initialize()

    def refresh(self) -> None:
        """The dag-processor's side: fetch the new commit and check it out in the tracking clone."""
        self.bundle.refresh()

    def worker_checkout(self, version: str) -> Path:
        """A worker's side, before it runs a task of `version`: `GitDagBundle(version=...).initialize()`, a clone of
        the bundle's bare repository (on this machine: the dag-processor's, already fetched) and a checkout of that
        commit. A worker on another machine would fetch its bare repository from the remote first."""
        from airflow.providers.git.bundles.git import GitDagBundle

        bundle = GitDagBundle(
            name=self.name, git_conn_id=self.conn_id, tracking_ref="main", version=version, refresh_interval=0
        )
        bundle.initialize()
        return bundle.path

    def version(self) -> str:
        version = self.bundle.get_current_version()
        return getattr(version, "version", version)


def ls_remote(url: str) -> str:
    """A bare `git ls-remote <url> refs/heads/main`, as a subprocess; returns the advertised sha."""
    output = subprocess.run(
        ["git", "ls-remote", url, "refs/heads/main"], check=True, capture_output=True, text=True
    ).stdout
    return output.split("\t", 1)[0]


def clone_and_copy(url: str, scratch: Path, dest: Path) -> None:
    """The seed's Method 1: a shallow clone into a temp folder, then a full copy of its dags/ folder."""
    subprocess.run(["git", "clone", "-q", "--depth", "1", url, str(scratch)], check=True, capture_output=True)
    subprocess.run(["cp", "-r", str(scratch / "dags"), str(dest)], check=True, capture_output=True)


def copy_folder(source: Path, dest: Path) -> None:
    """`cp -r` of a folder: the file-writing half of clone + cp, timed apart to show how fast the machine creates
    files at the time (it varies several-fold on this VM, and with it every ratio against clone + cp)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-r", str(source), str(dest)], check=True, capture_output=True)


def remove_tree(path: Path) -> None:
    """Undo a clone_and_copy, outside the timer."""
    shutil.rmtree(path, ignore_errors=True)
