"""Bundle mode keeps the namespace links in the dags folder and lists them in the managed section of its
`.airflowignore`, so Airflow's walk of the dags-folder bundle (its own `find_path_from_directory`, in either
`[core] dag_ignore_file_syntax`) never enters them; the user's lines are kept; symlinks mode writes nothing."""

from __future__ import annotations

import pytest
from airflow._shared.module_loading.file_discovery import find_path_from_directory

from airflow_dagops.deploy import dags_folder
from airflow_dagops.deploy.publish import publish, unpublish
from airflow_dagops.errors import Conflict

DAG_FILE = "from airflow.sdk import DAG\n"


@pytest.fixture
def releases(dagops_env):
    """Two release folders outside the dags folder, as dagops keeps them, each with a DAG file."""
    made = {}
    for namespace in ("team", "other"):
        folder = dagops_env.dagops_home / "releases" / namespace / "c0ffee"
        (folder / "dags").mkdir(parents=True)
        (folder / "dags" / f"{namespace}.py").write_text(DAG_FILE)
        made[namespace] = folder
    return made


def walked(folder, syntax: str = "glob") -> list[str]:
    """The files Airflow's walk of a bundle lists, relative to the bundle's root."""
    return sorted(str(p).removeprefix(f"{folder}/") for p in find_path_from_directory(folder, ".airflowignore", syntax))


@pytest.mark.parametrize("syntax", ["glob", "regexp"])
def test_airflow_walks_past_every_published_namespace(dagops_env, releases, monkeypatch, syntax):
    monkeypatch.setenv("AIRFLOW__DAGOPS__PUBLISH_MODE", "bundle")
    monkeypatch.setenv("AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX", syntax)
    dags = dagops_env.dags_folder
    (dags / "plain.py").write_text(DAG_FILE)
    (dags / ".airflowignore").write_text("scratch\n" if syntax == "regexp" else "scratch/\n")
    for namespace, folder in releases.items():
        publish(dags / namespace, folder)

    assert (dags / "team").is_symlink() and (dags / "other").is_symlink()  # the atomic links stay
    assert dags_folder.listed() == ["other", "team"]
    assert walked(dags, syntax) == ["plain.py"]  # nothing under the links: they are the other bundle's
    assert (dags / ".airflowignore").read_text().splitlines()[0] in ("scratch", "scratch/")  # the user's line

    unpublish(dags / "other")
    assert dags_folder.listed() == ["team"]
    assert walked(dags, syntax) == ["plain.py"]


def test_a_users_negation_cannot_bring_a_namespace_back(dagops_env, releases, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__PUBLISH_MODE", "bundle")
    dags = dagops_env.dags_folder
    (dags / ".airflowignore").write_text("!team/\n")
    publish(dags / "team", releases["team"])
    assert walked(dags) == []  # the managed section comes last, and the last matching pattern wins


def test_symlinks_mode_leaves_the_namespaces_to_the_dags_folder_bundle(dagops_env, releases, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__PUBLISH_MODE", "symlinks")
    dags = dagops_env.dags_folder
    publish(dags / "team", releases["team"])
    assert not (dags / ".airflowignore").exists()
    assert walked(dags) == ["team/dags/team.py"]


def test_removing_the_last_namespace_restores_the_users_file(dagops_env, releases):
    dags = dagops_env.dags_folder
    (dags / ".airflowignore").write_text("scratch/\n")
    publish(dags / "team", releases["team"])  # the default mode: bundle
    assert dags_folder.listed() == ["team"]
    unpublish(dags / "team")
    assert (dags / ".airflowignore").read_text() == "scratch/\n"


def test_a_folder_dagops_does_not_manage_is_refused_and_nothing_is_listed(dagops_env, releases):
    dags = dagops_env.dags_folder
    (dags / "team").mkdir()
    with pytest.raises(Conflict, match="not managed by dagops"):
        publish(dags / "team", releases["team"])
    assert dags_folder.listed() == []
    assert not (dags / ".airflowignore").exists()
