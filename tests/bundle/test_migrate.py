"""`dagops bundle migrate`: the live namespace links move between the dags folder and the bundle's live folder,
nothing is re-exported, and the way back works."""

from __future__ import annotations

import os

from airflow_dagops import paths
from airflow_dagops.bundle.migrate import migrate
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source


def test_links_move_to_the_bundle_and_back(dagops_env, git_remote, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONFIG", raising=False)
    add_repository("team", git_remote({"dags/team_a.py": dag_source("team_a")}).url, verify=False)
    sync_repository("team", trigger="cli")
    old_link = dagops_env.dags_folder / "team"
    release = os.readlink(old_link)
    (dagops_env.dags_folder / "plain.py").write_text("# not dagops'\n")

    done = migrate("bundle")
    assert not old_link.is_symlink()
    assert os.readlink(paths.bundle_live_dir() / "team") == release  # the same release, not a new export
    assert (dagops_env.dags_folder / "plain.py").exists()  # what dagops did not publish stays
    config = (dagops_env.airflow_home / "airflow.cfg").read_text()
    assert "publish_mode = bundle" in config
    assert "airflow_dagops.bundle.releases_bundle.DagopsReleasesBundle" in config
    assert any("moved 1 namespace link(s)" in line for line in done)

    monkeypatch.setenv("AIRFLOW__DAGOPS__PUBLISH_MODE", "bundle")  # what a restarted process reads
    migrate("bundle")  # again: nothing left to move, nothing breaks
    assert os.readlink(paths.bundle_live_dir() / "team") == release

    monkeypatch.setenv("AIRFLOW__DAGOPS__PUBLISH_MODE", "symlinks")
    migrate("symlinks")
    assert os.readlink(old_link) == release
    assert not (paths.bundle_live_dir() / "team").is_symlink()
