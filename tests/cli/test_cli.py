"""The `dagops` command line: exit codes, one-line errors, JSON listings, progress on stderr."""

from __future__ import annotations

import json

import pytest

from tests.helpers.repos import dag_source


def test_help_is_everywhere(cli):
    for args in ([], ["repos"], ["repos", "add"], ["sync"], ["db"], ["init"], ["status"]):
        result = cli(*args, "--help")
        assert result.exit_code == 0 and "Usage" in result.output


def test_add_list_show_sync_remove(cli, git_remote, dagops_env):
    remote = git_remote()
    assert cli("repos", "add", "team", remote.url, "--namespace", "analytics").exit_code == 0
    listing = json.loads(cli("repos", "list", "--json").stdout)
    assert [(r["name"], r["namespace"], r["live_commit"]) for r in listing] == [("team", "analytics", None)]

    synced = cli("sync", "team")
    assert synced.exit_code == 0 and f"published {remote.head()[:12]}" in synced.stdout
    assert (dagops_env.dags_folder / "analytics" / "dags" / "hello.py").exists()
    again = cli("sync", "--all", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)[0]["status"] == "unchanged"

    shown = json.loads(cli("repos", "show", "team", "--json").stdout)
    assert shown["live_commit"] == remote.head() and shown["releases"][0]["status"] == "live"
    assert "team" in cli("status").stdout

    removed = cli("repos", "remove", "team")
    assert removed.exit_code == 0 and "removed" in removed.stdout
    assert not (dagops_env.dags_folder / "analytics").exists()


def test_a_broken_commit_exits_non_zero_naming_file_and_line(cli, git_remote):
    remote = git_remote()
    cli("repos", "add", "team", remote.url)
    cli("sync", "team")
    remote.commit("broken", {"dags/bad.py": dag_source("bad") + "\nif True\n"})
    result = cli("sync", "team")
    assert result.exit_code == 1
    assert "dags/bad.py:" in result.stdout and "previous release stays live" in result.stdout


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["repos", "add", "Bad", "file:///x"], 2, "invalid repository name"),
        (["repos", "add", "ok", "ext::sh -c id"], 2, "URL"),
        (["repos", "show", "missing"], 1, "no repository named 'missing'"),
        (["sync"], 1, "give a repository name or --all"),
        (["sync", "missing"], 1, "no repository named"),
        (["repos", "remove", "missing"], 1, "no repository named"),
    ],
)
def test_errors_are_one_line_with_a_non_zero_exit(cli, args, code, message):
    result = cli(*args)
    assert result.exit_code == code
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
