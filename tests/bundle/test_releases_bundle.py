"""The dagops-releases bundle in process: its version follows the live set, every version can be rebuilt, on a
machine that has the release folders (hard-linked copies) and on one that has only git."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from airflow_dagops import paths
from airflow_dagops.airflow import cluster_policy
from airflow_dagops.bundle import manifest as live_sets
from airflow_dagops.bundle.releases_bundle import DagopsReleasesBundle
from airflow_dagops.releases.rollback import rollback
from airflow_dagops.repositories.registry import add_repository, remove_repository
from airflow_dagops.store import bundle_versions
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source


@pytest.fixture
def bundle_env(dagops_env, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__PUBLISH_MODE", "bundle")
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(tmp_path / "bundles"))
    return dagops_env


def bundle(version: str | None = None) -> DagopsReleasesBundle:
    return DagopsReleasesBundle(name=paths.RELEASES_BUNDLE, version=version, refresh_interval=5)


def test_publishing_goes_to_the_live_folder_and_makes_a_new_version(bundle_env, git_remote):
    remote = git_remote({"dags/team_a.py": dag_source("team_a")})
    add_repository("team", remote.url, verify=False)
    first_commit = remote.head()
    assert sync_repository("team", trigger="cli").status == "published"
    link = paths.bundle_live_dir() / "team"
    assert link.is_symlink()
    assert not (bundle_env.dags_folder / "team").exists()  # the dags-folder bundle must not parse it too

    processor = bundle()
    processor.initialize()
    first = processor.get_current_version().version
    assert (processor.path / "team" / "dags" / "team_a.py").is_file()
    recorded = bundle_versions.load(first)
    assert recorded["namespaces"]["team"]["commit"] == first_commit
    assert recorded["namespaces"]["team"]["url"] == remote.url

    processor.refresh()
    assert processor.get_current_version().version == first  # nothing changed: same version

    remote.commit("second", {"dags/team_a.py": dag_source("team_a").replace('"team_a"', '"team_a_v2"', 1)})
    sync_repository("team", trigger="cli")
    processor.refresh()
    second = processor.get_current_version().version
    assert second != first
    assert "team_a_v2" in (processor.path / "team" / "dags" / "team_a.py").read_text()

    # A rollback returns to the first set, and so to its version id.
    rollback("team", first_commit, actor="test")
    processor.refresh()
    assert processor.get_current_version().version == first


def test_a_worker_builds_the_version_of_its_run_not_the_live_one(bundle_env, git_remote):
    remote = git_remote({"dags/team_a.py": dag_source("team_a")})
    add_repository("team", remote.url, verify=False)
    sync_repository("team", trigger="cli")
    processor = bundle()
    processor.initialize()
    old = processor.get_current_version().version

    remote.commit("second", {"dags/team_a.py": "# the new code\n" + dag_source("team_a")})
    sync_repository("team", trigger="cli")
    processor.refresh()
    assert processor.get_current_version().version != old

    worker = bundle(old)
    worker.initialize()
    built = worker.path / "team" / "dags" / "team_a.py"
    assert "# the new code" not in built.read_text()
    # Hard links to the release folder, not copies and not a link that would dangle once the release is pruned.
    release = Path(os.readlink(paths.bundle_live_dir() / "team")).parent
    assert built.stat().st_nlink >= 2
    assert not (worker.path / "team").is_symlink()
    assert release.is_dir()
    # The cluster policy finds the namespace of a file of a version folder, and its settings snapshot.
    assert cluster_policy.published_by(str(built)) == ("team", "team")


def test_a_worker_without_the_release_folders_exports_the_commit_from_git(bundle_env, git_remote, tmp_path):
    remote = git_remote({"dags/team_a.py": dag_source("team_a"), "helpers/util.py": "X = 1\n"})
    add_repository("team", remote.url, verify=False)
    sync_repository("team", trigger="cli")
    processor = bundle()
    processor.initialize()
    version = processor.get_current_version().version
    old_commit = remote.head()
    remote.commit("moves on", {"dags/team_a.py": "# later\n" + dag_source("team_a")})

    # Another machine: its own dagops_home (no releases, no mirrors) and its own bundle storage; only the state
    # DB and the Git remote are shared.
    shutil.rmtree(bundle_env.dagops_home / "releases")
    shutil.rmtree(bundle_env.dagops_home / "mirrors")
    os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"] = str(tmp_path / "other-machine")
    worker = bundle(version)
    worker.initialize()
    assert worker.path == tmp_path / "other-machine" / paths.RELEASES_BUNDLE / "versions" / version
    assert (worker.path / "team" / "dags" / "team_a.py").read_text() == dag_source("team_a")
    assert (worker.path / "team" / "helpers" / "util.py").read_text() == "X = 1\n"
    assert live_sets._release_of(str(worker.path / "team"))["commit"] == old_commit
    assert not list(worker.path.parent.glob(".tmp-*"))  # built through a temp folder, renamed into place


def test_a_worker_with_its_own_dagops_home_never_reads_the_publishers_release_folders(
    bundle_env, git_remote, tmp_path, monkeypatch
):
    """On one disk a publisher's release folder may be readable by a worker that has a dagops_home of its own; it
    is another machine's all the same (the multi-process Celery test runs such a worker): the worker builds from
    git, and the publisher's files are not linked into its version folder."""
    remote = git_remote({"dags/team_a.py": dag_source("team_a")})
    add_repository("team", remote.url, verify=False)
    sync_repository("team", trigger="cli")
    processor = bundle()
    processor.initialize()
    version = processor.get_current_version().version
    release_file = Path(os.readlink(paths.bundle_live_dir() / "team")) / "dags" / "team_a.py"
    assert release_file.is_file()

    monkeypatch.setenv("AIRFLOW__DAGOPS__DAGOPS_HOME", str(tmp_path / "worker-home"))
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(tmp_path / "worker-storage"))
    worker = bundle(version)
    worker.initialize()
    built = worker.path / "team" / "dags" / "team_a.py"
    assert built.read_text() == dag_source("team_a")
    assert built.stat().st_ino != release_file.stat().st_ino
    assert (tmp_path / "worker-storage" / paths.RELEASES_BUNDLE / "mirrors" / "team.git" / "HEAD").is_file()


def test_removing_a_repository_leaves_the_set(bundle_env, git_remote):
    add_repository("team", git_remote({"dags/team_a.py": dag_source("team_a")}).url, verify=False)
    add_repository("other", git_remote({"dags/other_a.py": dag_source("other_a")}, name="other").url, verify=False)
    sync_repository("team", trigger="cli")
    sync_repository("other", trigger="cli")
    processor = bundle()
    processor.initialize()
    assert sorted(os.listdir(processor.path)) == ["other", "team"]
    remove_repository("other")
    processor.refresh()
    assert sorted(name for name in os.listdir(processor.path) if not name.startswith(".")) == ["team"]
    assert list(bundle_versions.load(processor.get_current_version().version)["namespaces"]) == ["team"]


def test_an_unknown_version_says_what_to_check(bundle_env):
    from airflow_dagops.errors import NotFound

    with pytest.raises(NotFound, match="no version 'feedbeef'"):
        bundle("feedbeef").initialize()
