"""The dagops-releases bundle in process: its version follows the live set, every version can be rebuilt, on a
machine that has the release folders (hard-linked copies) and on one that has only git."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from airflow_dagops import paths
from airflow_dagops.airflow import cluster_policy, namespace_meta
from airflow_dagops.bundle import manifest as live_sets
from airflow_dagops.bundle.manifest import read_live_set
from airflow_dagops.bundle.materialize import provide_environments
from airflow_dagops.bundle.releases_bundle import DagopsReleasesBundle
from airflow_dagops.deploy import dags_folder
from airflow_dagops.release_manifest import read_manifest
from airflow_dagops.releases.environments import namespace_python
from airflow_dagops.releases.rollback import rollback
from airflow_dagops.repositories.registry import add_repository, remove_repository, update_repository
from airflow_dagops.store import bundle_versions
from airflow_dagops.sync.sync import sync_repository
from benchmarks.venv_reuse import write_wheel  # the benchmark builds its wheelhouse the same way
from tests.helpers.parsing import parsed_dags
from tests.helpers.repos import dag_source
from tests.releases.test_venvs import ISOLATED_DAG, _imports  # the isolated DAG of the venv tests, and its check


@pytest.fixture
def bundle_env(dagops_env):
    """An installation in the default publish mode, bundle (dagops_env gives it bundle storage of its own)."""
    return dagops_env


@pytest.fixture
def team_live(bundle_env, git_remote):
    """Repository `team` (one DAG file) published, and the dag-processor's bundle initialized on it."""
    remote = git_remote({"dags/team_a.py": dag_source("team_a")})
    add_repository("team", remote.url, verify=False)
    sync_repository("team", trigger="cli")
    processor = bundle()
    processor.initialize()
    return remote, processor


def bundle(version: str | None = None) -> DagopsReleasesBundle:
    return DagopsReleasesBundle(name=paths.RELEASES_BUNDLE, version=version, refresh_interval=5)


def namespaces_in(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if not name.startswith("."))


def test_publishing_records_the_live_set_and_makes_a_new_version(bundle_env, git_remote):
    remote = git_remote({"dags/team_a.py": dag_source("team_a")})
    add_repository("team", remote.url, verify=False)
    first_commit = remote.head()
    assert sync_repository("team", trigger="cli").status == "published"
    # The namespace's atomic link stays in the dags folder, which the dags-folder bundle is told to leave alone.
    assert (bundle_env.dags_folder / "team").is_symlink()
    assert dags_folder.listed() == ["team"]
    assert read_live_set()["team"]["commit"] == first_commit

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


def test_a_worker_builds_the_version_of_its_run_not_the_live_one(bundle_env, team_live):
    remote, processor = team_live
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
    release = Path(os.readlink(bundle_env.dags_folder / "team")).parent
    assert built.stat().st_nlink >= 2
    assert not (worker.path / "team").is_symlink()
    assert release.is_dir()
    # The cluster policy finds the namespace of a file of a version folder, and its settings snapshot.
    assert cluster_policy.published_by(str(built)) == ("team", "team")


def test_a_worker_without_the_release_folders_exports_the_commit_from_git(
    bundle_env, git_remote, tmp_path, monkeypatch
):
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
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(tmp_path / "other-machine"))
    worker = bundle(version)
    worker.initialize()
    assert worker.path == tmp_path / "other-machine" / paths.RELEASES_BUNDLE / "versions" / version
    assert (worker.path / "team" / "dags" / "team_a.py").read_text() == dag_source("team_a")
    assert (worker.path / "team" / "helpers" / "util.py").read_text() == "X = 1\n"
    assert read_manifest(worker.path / "team")["commit"] == old_commit
    assert not list(worker.path.parent.glob(".tmp-*"))  # built through a temp folder, renamed into place


def test_a_worker_with_its_own_dagops_home_never_reads_the_publishers_release_folders(
    bundle_env, team_live, tmp_path, monkeypatch
):
    """On one disk a publisher's release folder may be readable by a worker that has a dagops_home of its own; it
    is another machine's all the same (the multi-process Celery test runs such a worker): the worker builds from
    git, and the publisher's files are not linked into its version folder."""
    remote, processor = team_live
    version = processor.get_current_version().version
    release_file = Path(os.readlink(bundle_env.dags_folder / "team")) / "dags" / "team_a.py"
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
    assert namespaces_in(processor.path) == ["other", "team"]
    remove_repository("other")
    assert dags_folder.listed() == ["team"]  # its link is gone, and its line with it
    processor.refresh()
    assert namespaces_in(processor.path) == ["team"]
    assert list(bundle_versions.load(processor.get_current_version().version)["namespaces"]) == ["team"]


def test_keeping_a_removed_repositorys_dags_hands_them_to_the_dags_folder_bundle(bundle_env, git_remote):
    add_repository("team", git_remote({"dags/team_a.py": dag_source("team_a")}).url, verify=False)
    sync_repository("team", trigger="cli")
    assert parsed_dags(bundle_env.dags_folder)["team_a"].bundle == paths.RELEASES_BUNDLE
    remove_repository("team", keep_dags=True)
    assert dags_folder.listed() == []
    assert read_live_set() == {}
    assert parsed_dags(bundle_env.dags_folder)["team_a"].bundle == "dags-folder"  # once, from the plain copy


def test_a_settings_change_reaches_the_live_set(bundle_env, git_remote):
    add_repository("team", git_remote({"dags/team_a.py": dag_source("team_a")}).url, verify=False)
    sync_repository("team", trigger="cli")
    before = live_sets.version_of(read_live_set())
    update_repository("team", access_control={"data-eng": ["can_read"]})
    assert read_live_set()["team"]["meta"]["access_control"] == {"data-eng": ["can_read"]}
    assert live_sets.version_of(read_live_set()) != before  # DAGs are parsed again, with the new settings


def test_the_dag_processor_writes_a_namespaces_settings_snapshot_only_when_they_change(bundle_env, team_live):
    remote, processor = team_live
    snapshot = processor.tracking_dir / namespace_meta.SNAPSHOT_DIR / "team.json"
    written = snapshot.stat().st_ino
    remote.commit("second", {"dags/team_a.py": dag_source("team_a").replace('"team_a"', '"team_a_v2"', 1)})
    sync_repository("team", trigger="cli")
    processor.refresh()
    assert "team_a_v2" in (processor.path / "team" / "dags" / "team_a.py").read_text()
    assert snapshot.stat().st_ino == written  # a new commit, the same settings: the file is left alone
    update_repository("team", access_control={"data-eng": ["can_read"]})
    processor.refresh()
    assert namespace_meta.read_snapshot(processor.tracking_dir, "team")["access_control"] == {"data-eng": ["can_read"]}


def test_a_dag_processor_without_the_publishers_volume_builds_each_commit_from_git(
    bundle_env, git_remote, tmp_path, monkeypatch
):
    """The dag-processor needs the state DB and the Git host only: with a dagops_home of its own (no releases, no
    mirrors), each tracking link leads to a build of the live commit, exported from git once per (namespace,
    commit), with the release's `.airflowignore` and the namespace's settings as they went live."""
    remote = git_remote(
        {"dags/team_a.py": dag_source("team_a"), "dags/skip.py": "# not a DAG\n", ".airflowignore": "dags/skip.py\n"}
    )
    add_repository("team", remote.url, verify=False, access_control={"data-eng": ["can_read"]})
    sync_repository("team", trigger="cli")
    publisher = bundle()
    publisher.initialize()
    release = Path(os.readlink(bundle_env.dags_folder / "team"))
    publisher_home = os.environ["AIRFLOW__DAGOPS__DAGOPS_HOME"]

    def on_the_dag_processor():
        monkeypatch.setenv("AIRFLOW__DAGOPS__DAGOPS_HOME", str(tmp_path / "processor-home"))
        monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(tmp_path / "processor-storage"))

    def publish(message: str, files: dict) -> str:
        monkeypatch.setenv("AIRFLOW__DAGOPS__DAGOPS_HOME", publisher_home)
        remote.commit(message, files)
        assert sync_repository("team", trigger="cli").status == "published"
        on_the_dag_processor()
        processor.refresh()
        return remote.head()

    on_the_dag_processor()
    processor = bundle()
    processor.initialize()
    assert processor.get_current_version().version == publisher.get_current_version().version  # same set, same id
    builds = tmp_path / "processor-storage" / paths.RELEASES_BUNDLE / "builds" / "team"
    tracked = processor.path / "team"
    first = remote.head()
    assert Path(os.readlink(tracked)) == builds / first
    assert (tracked / "dags" / "team_a.py").read_text() == dag_source("team_a")
    assert (tracked / ".airflowignore").read_text() == (release / ".airflowignore").read_text()
    assert namespace_meta.read_snapshot(processor.path, "team")["access_control"] == {"data-eng": ["can_read"]}
    assert cluster_policy.published_by(str(tracked / "dags" / "team_a.py")) == ("team", "team")
    assert not (tmp_path / "processor-home" / "releases").exists()

    second = publish("second", {"dags/team_a.py": "# second\n" + dag_source("team_a")})
    assert Path(os.readlink(tracked)) == builds / second
    assert (builds / first).is_dir()  # a parse of the previous version may still read it
    third = publish("third", {"dags/team_a.py": "# third\n" + dag_source("team_a")})
    assert sorted(os.listdir(builds)) == sorted([second, third])
    assert (tracked / "dags" / "team_a.py").read_text().startswith("# third")


def test_an_unknown_version_says_what_to_check(bundle_env):
    from airflow_dagops.errors import NotFound

    with pytest.raises(NotFound, match="no version 'feedbeef'"):
        bundle("feedbeef").initialize()


def test_a_worker_with_its_own_dagops_home_builds_the_isolated_environment_of_its_version(
    bundle_env, git_remote, tmp_path, monkeypatch
):
    """`namespace_python(__file__)` runs while a DAG file is parsed: from the tracking folder in the dag-processor,
    from a version folder on a worker. Each names the environment of the folder's version; a worker whose
    dagops_home is its own builds it there when it initializes the version (no shared volume, no Celery here)."""
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    write_wheel(wheelhouse, "tinypkg", "1.0")
    monkeypatch.setenv("AIRFLOW__DAGOPS__WHEELHOUSE", str(wheelhouse))
    remote = git_remote({"dags/isolated.py": ISOLATED_DAG})
    add_repository("team", remote.url, verify=False, isolated_env=True)
    assert sync_repository("team", trigger="cli").status == "published"
    first_python = namespace_meta.read("team")["python"]
    processor = bundle()
    processor.initialize()
    first = processor.get_current_version().version
    assert namespace_python(str(processor.path / "team" / "dags" / "isolated.py")) == first_python

    # New requirements, a new environment: a run of the first version keeps the first one.
    remote.commit("any 1.x", {"dags/isolated.py": ISOLATED_DAG.replace("tinypkg==1.0", "tinypkg>=1.0,<2")})
    assert sync_repository("team", trigger="cli").status == "published"
    processor.refresh()
    assert namespace_python(str(processor.path / "team" / "dags" / "isolated.py")) != first_python
    pinned = bundle(first)
    pinned.initialize()
    assert namespace_python(str(pinned.path / "team" / "dags" / "isolated.py")) == first_python

    # Another machine: its own dagops_home (no environments) and bundle storage; the state DB and the Git remote
    # are shared, and the same wheelhouse is configured.
    monkeypatch.setenv("AIRFLOW__DAGOPS__DAGOPS_HOME", str(tmp_path / "worker-home"))
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(tmp_path / "worker-storage"))
    worker = bundle(first)
    worker.initialize()
    python = namespace_python(str(worker.path / "team" / "dags" / "isolated.py"))
    assert python.startswith(str(tmp_path / "worker-home" / "venvs" / "team"))
    assert _imports(Path(python), "tinypkg") == "1.0"

    # A later task of the version finds it; one pruned meanwhile is built again.
    shutil.rmtree(Path(python).parent.parent)
    bundle(first).initialize()
    assert _imports(Path(python), "tinypkg") == "1.0"


def test_an_environment_that_cannot_be_built_on_a_worker_leaves_the_other_namespaces_running(
    bundle_env, tmp_path, monkeypatch
):
    """A requirement this machine cannot install (another wheelhouse, no index) is logged; the version's folder
    is still usable, and a task of that namespace fails on its missing interpreter."""
    version_dir = tmp_path / "version"
    namespace_meta.write_snapshot(version_dir, "team", {"repository": "team", "venv_requirements": ["nosuchpkg==9"]})
    namespace_meta.write_snapshot(version_dir, "plain", {"repository": "plain"})
    (tmp_path / "empty-wheelhouse").mkdir()
    monkeypatch.setenv("AIRFLOW__DAGOPS__WHEELHOUSE", str(tmp_path / "empty-wheelhouse"))
    assert provide_environments(version_dir) == ["team"]


def test_a_dag_processor_going_back_to_a_build_it_kept_marks_the_files_that_differ_as_modified(
    bundle_env, git_remote, tmp_path, monkeypatch
):
    """Airflow parses at once a file modified since its last parse, others every min_file_process_interval: the
    build of the commit a rollback goes back to must look modified where it differs, even on a dag-processor
    without the publishers' volume (which marks its own builds)."""
    remote = git_remote({"dags/team_a.py": dag_source("team_a"), "dags/team_b.py": dag_source("team_b")})
    add_repository("team", remote.url, verify=False)
    sync_repository("team", trigger="cli")
    publisher_home = os.environ["AIRFLOW__DAGOPS__DAGOPS_HOME"]

    def as_publisher():
        monkeypatch.setenv("AIRFLOW__DAGOPS__DAGOPS_HOME", publisher_home)

    def as_dag_processor():
        monkeypatch.setenv("AIRFLOW__DAGOPS__DAGOPS_HOME", str(tmp_path / "processor-home"))
        monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(tmp_path / "processor-storage"))

    as_dag_processor()
    processor = bundle()
    processor.initialize()
    as_publisher()
    remote.commit("second", {"dags/team_a.py": "# second\n" + dag_source("team_a")})
    assert sync_repository("team", trigger="cli").status == "published"
    as_dag_processor()
    processor.refresh()
    builds = tmp_path / "processor-storage" / paths.RELEASES_BUNDLE / "builds" / "team"
    long_ago = time.time() - 3600
    for path in builds.rglob("*.py"):
        os.utime(path, (long_ago, long_ago))  # as if Airflow had parsed both builds since
    started = time.time()

    as_publisher()
    rollback("team", actor="test")
    as_dag_processor()
    processor.refresh()
    tracked = processor.path / "team" / "dags"
    assert not (tracked / "team_a.py").read_text().startswith("# second")
    assert os.stat(tracked / "team_a.py").st_mtime >= started - 1
    assert os.stat(tracked / "team_b.py").st_mtime < started - 1800
