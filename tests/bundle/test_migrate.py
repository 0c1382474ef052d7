"""`dagops bundle migrate`: the namespace links stay where they are in the dags folder and nothing is re-exported;
what moves is which of Airflow's bundles parses them (each DAG exactly once, before and after), and the way back
works. (tests/bundle/test_migrate_live.py does the same against a running Airflow.)"""

from __future__ import annotations

import os

import pytest

from airflow_dagops import paths
from airflow_dagops.bundle.manifest import read_live_set
from airflow_dagops.bundle.migrate import migrate
from airflow_dagops.deploy import dags_folder
from airflow_dagops.errors import DagOpsError, InvalidInput
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.parsing import parsed_dags
from tests.helpers.repos import dag_source

MODE = "AIRFLOW__DAGOPS__PUBLISH_MODE"


@pytest.fixture
def symlinks_installation(dagops_env, git_remote, monkeypatch):
    """An installation that chose symlinks, with one repository live and a user's own `.airflowignore` line."""
    monkeypatch.delenv("AIRFLOW_CONFIG", raising=False)
    monkeypatch.setenv(MODE, "symlinks")
    add_repository("team", git_remote({"dags/team_a.py": dag_source("team_a")}).url, verify=False)
    sync_repository("team", trigger="cli")
    (dagops_env.dags_folder / ".airflowignore").write_text("scratch/\n")
    (dagops_env.dags_folder / "plain.py").write_text(dag_source("plain"))
    return dagops_env


def bundles_of(dags) -> dict[str, str]:
    return {dag_id: found.bundle for dag_id, found in parsed_dags(dags).items()}


def test_a_symlinks_installation_moves_to_the_bundle_and_back(symlinks_installation, monkeypatch):
    dags = symlinks_installation.dags_folder
    link = dags / "team"
    release = os.readlink(link)
    assert read_live_set() == {} and dags_folder.listed() == []  # symlinks mode records no live set
    assert bundles_of(dags) == {"team_a": "dags-folder", "plain": "dags-folder"}

    monkeypatch.delenv(MODE)  # the mode comes from airflow.cfg, which the migration writes
    done = migrate("bundle")
    assert os.readlink(link) == release  # the same release, not a new export, and its link stays
    assert dags_folder.listed() == ["team"]
    assert (dags / ".airflowignore").read_text().startswith("scratch/\n")  # the user's line is kept
    assert read_live_set()["team"]["path"] == release
    config = (symlinks_installation.airflow_home / "airflow.cfg").read_text()
    assert "publish_mode = bundle" in config
    assert "airflow_dagops.bundle.releases_bundle.DagopsReleasesBundle" in config
    assert any("leaves 1 namespace to the dagops-releases bundle: team" in line for line in done)

    monkeypatch.setenv(MODE, "bundle")  # what a restarted process reads
    assert bundles_of(dags) == {"team_a": paths.RELEASES_BUNDLE, "plain": "dags-folder"}
    migrate("bundle")  # again: nothing changes, nothing breaks
    assert read_live_set()["team"]["path"] == release and dags_folder.listed() == ["team"]

    monkeypatch.setenv(MODE, "symlinks")
    migrate("symlinks")
    assert os.readlink(link) == release
    assert read_live_set() == {} and dags_folder.listed() == []
    assert (dags / ".airflowignore").read_text() == "scratch/\n"
    assert bundles_of(dags) == {"team_a": "dags-folder", "plain": "dags-folder"}


def test_links_an_older_bundle_layout_kept_in_dagops_home_move_to_the_dags_folder(symlinks_installation, monkeypatch):
    dags = symlinks_installation.dags_folder
    release = os.readlink(dags / "team")
    legacy = paths.legacy_live_dir()
    legacy.mkdir(parents=True)
    os.symlink(release, legacy / "team")
    (dags / "team").unlink()

    monkeypatch.setenv(MODE, "bundle")
    migrate("bundle")
    assert os.readlink(dags / "team") == release
    assert not (legacy / "team").is_symlink()
    assert read_live_set()["team"]["path"] == release
    assert bundles_of(dags) == {"team_a": paths.RELEASES_BUNDLE, "plain": "dags-folder"}


def test_bad_input_changes_nothing(symlinks_installation, monkeypatch):
    dags = symlinks_installation.dags_folder
    before = (dags / ".airflowignore").read_text()
    with pytest.raises(InvalidInput, match="--to must be one of bundle, symlinks"):
        migrate("links")
    with pytest.raises(DagOpsError, match="set it to 'bundle' in every Airflow process's environment"):
        migrate("bundle")  # the environment says symlinks: airflow.cfg would not win
    assert (dags / ".airflowignore").read_text() == before
    assert read_live_set() == {} and not (symlinks_installation.airflow_home / "airflow.cfg").exists()
