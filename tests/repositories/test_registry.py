"""The repository registry on real git remotes and the state DB (SQLite and PostgreSQL): what `add_repository`
refuses, names and namespaces claimed once, and what removing a repository leaves behind."""

from __future__ import annotations

import pytest

from airflow_dagops import paths
from airflow_dagops.errors import Conflict, InvalidInput, NotFound, RefNotFound, RemoteUnreachable
from airflow_dagops.repositories.info import list_repositories
from airflow_dagops.repositories.registry import add_repository, remove_repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"name": "Team"}, InvalidInput, "invalid repository name"),
        ({"name": "a/b"}, InvalidInput, "invalid repository name"),
        (
            {
                "name": "..",
            },
            InvalidInput,
            "invalid repository name",
        ),
        ({"name": "-x"}, InvalidInput, "invalid repository name"),
        ({"namespace": "../etc"}, InvalidInput, "invalid namespace"),
        ({"ref": "-b"}, InvalidInput, "invalid ref"),
        ({"ref": "missing"}, RefNotFound, "not found"),
        ({"url": "ext::sh -c id"}, InvalidInput, "URL"),
        ({"url": "-oProxyCommand=x"}, InvalidInput, "URL"),
        ({"url": "file:///nonexistent/repo"}, RemoteUnreachable, "not a git repository"),
        ({"url": "git://127.0.0.1:9/x"}, RemoteUnreachable, "cannot reach"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(dagops_env, git_remote, kwargs, error, match):
    args = {"name": "team", "url": git_remote().url, **kwargs}
    with pytest.raises(error, match=match):
        add_repository(args.pop("name"), args.pop("url"), **args)
    assert list_repositories() == []
    assert list(dagops_env.dags_folder.iterdir()) == []


def test_a_namespace_or_name_cannot_be_claimed_twice(dagops_env, git_remote):
    remote = git_remote()
    add_repository("first", remote.url, namespace="shared")
    with pytest.raises(Conflict, match="namespace 'shared' is already used by repository 'first'"):
        add_repository("second", remote.url, namespace="shared")
    with pytest.raises(Conflict, match="already registered"):
        add_repository("first", remote.url, namespace="other")
    (dagops_env.dags_folder / "handmade").mkdir()
    with pytest.raises(Conflict, match="not managed by dagops"):
        add_repository("handmade", remote.url)
    assert [r.name for r in list_repositories()] == ["first"]


def test_removing_a_repository_removes_its_dags_unless_kept(dagops_env, git_remote):
    remote = git_remote()
    for name in ("gone", "kept"):
        add_repository(name, remote.url)
        sync_repository(name)
    remove_repository("gone")
    assert not (dagops_env.dags_folder / "gone").exists() and not (dagops_env.dags_folder / "gone").is_symlink()
    assert not paths.namespace_releases_dir("gone").exists() and not paths.mirror_dir("gone").exists()
    remove_repository("kept", keep_dags=True)
    kept = dagops_env.dags_folder / "kept"
    assert kept.is_dir() and not kept.is_symlink()
    assert (kept / "dags/hello.py").read_text() == dag_source("hello")
    assert not (kept / ".dagops-release.json").exists()
    assert sorted(p.name for p in dagops_env.dags_folder.iterdir()) == ["kept"]
    assert list_repositories() == []
    with pytest.raises(NotFound):
        remove_repository("gone")
