"""Old versions of the dagops-releases bundle go the way Airflow's own go, never while a run uses one
(airflow_dagops/bundle/cleanup.py): version folders by Airflow's BundleUsageTrackingManager, what a killed build
left by the bundle, and the state DB's rows of versions Airflow no longer names."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from airflow.dag_processing.bundles import base as airflow_bundles
from airflow.dag_processing.bundles.base import BundleUsageTrackingManager, BundleVersionLock
from sqlalchemy import update

from airflow_dagops import paths
from airflow_dagops.bundle.cleanup import forget_unused_versions
from airflow_dagops.bundle.releases_bundle import DagopsReleasesBundle
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store import bundle_versions
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import BundleVersion, utcnow
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source

KEEP = timedelta(hours=6)


def bundle(version: str | None = None) -> DagopsReleasesBundle:
    return DagopsReleasesBundle(name=paths.RELEASES_BUNDLE, version=version, refresh_interval=5)


def made_current(version: str, *, hours_ago: float) -> None:
    bundle_versions.record(version, {"namespaces": {}})
    with session_scope() as session:
        when = utcnow() - timedelta(hours=hours_ago)
        session.execute(update(BundleVersion).where(BundleVersion.version == version).values(current_since=when))


def test_rows_go_once_airflow_names_their_version_no_more(dagops_env):
    made_current("old-unused", hours_ago=30)
    made_current("old-run", hours_ago=20)  # a DAG run of Airflow's metadata DB names it
    made_current("recent", hours_ago=2)  # a parse or a new run may be about to name it
    made_current("current", hours_ago=1)
    asked = []

    def in_use(versions):
        asked.append(sorted(versions))
        return {"old-run"}

    assert forget_unused_versions(in_use, keep_for=KEEP) == ["old-unused"]
    assert asked == [["old-run", "old-unused"]]  # Airflow is asked about the old versions only
    assert bundle_versions.load("old-unused") is None
    assert all(bundle_versions.load(v) is not None for v in ("old-run", "recent", "current"))


def test_the_current_version_stays_however_long_it_has_served(dagops_env):
    made_current("before", hours_ago=30)
    made_current("current", hours_ago=10)  # nothing was published since
    assert forget_unused_versions(lambda versions: set(), keep_for=KEEP) == ["before"]
    assert bundle_versions.load("current") is not None


def test_nothing_is_forgotten_when_airflow_cannot_say_what_it_uses(dagops_env):
    made_current("old", hours_ago=30)
    made_current("current", hours_ago=1)
    assert forget_unused_versions(lambda versions: None, keep_for=KEEP) == []
    assert bundle_versions.load("old") is not None


@pytest.fixture
def airflow_cleans_now(dagops_env, tmp_path, monkeypatch):
    """Airflow's cleanup of stale version folders over the dagops-releases bundle, with no minimum kept and no
    age required, and the usage files in this test's folder (Airflow fixes that folder when it is imported)."""
    classpath = f"{DagopsReleasesBundle.__module__}.DagopsReleasesBundle"
    config = [{"name": paths.RELEASES_BUNDLE, "classpath": classpath, "kwargs": {}}]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(config))
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__STALE_BUNDLE_CLEANUP_MIN_VERSIONS", "0")
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__STALE_BUNDLE_CLEANUP_AGE_THRESHOLD", "0")
    monkeypatch.setattr(airflow_bundles, "STALE_BUNDLE_TRACKING_FOLDER", tmp_path / "_tracking")
    return BundleUsageTrackingManager().remove_stale_bundle_versions


def test_airflow_removes_a_version_folder_no_running_task_holds(airflow_cleans_now, git_remote):
    add_repository("team", git_remote({"dags/team_a.py": dag_source("team_a")}).url, verify=False)
    sync_repository("team", trigger="cli")
    processor = bundle()
    processor.initialize()
    version = processor.get_current_version().version
    # A build killed halfway left its temp folder: the next build on this machine removes it.
    leftover = processor.versions_dir / f".tmp-{version}-99999"
    (leftover / "team").mkdir(parents=True)

    worker = bundle(version)
    worker.initialize()
    assert worker.path.is_dir() and not leftover.exists()
    with BundleVersionLock(bundle_name=worker.name, bundle_version=version):  # what a running task holds
        airflow_cleans_now()
        assert (worker.path / "team" / "dags" / "team_a.py").is_file()
    airflow_cleans_now()
    assert not worker.path.exists()

    # A later task of the version (a cleared run) builds it again from the state DB's row.
    again = bundle(version)
    again.initialize()
    assert (again.path / "team" / "dags" / "team_a.py").is_file()
