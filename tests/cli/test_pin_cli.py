"""The one rule for pins through `dagops` (airflow_dagops/releases/pins.py): `dagops rollback` and `dagops deploy`
on a pinned repository move its pin to the release made live, and `dagops versions` and `dagops repos show` say so
in the same words as every other face."""

from __future__ import annotations

import json

import pytest

from tests.helpers.pins import assert_live_and_pinned
from tests.helpers.repos import dag_source


@pytest.fixture
def team(cli, git_remote):
    """`team` with two good releases, the second live: (remote, first release, second release) as listed by
    `dagops versions --json`."""
    remote = git_remote({"dags/a.py": dag_source("a")})
    assert cli("repos", "add", "team", remote.url).exit_code == 0
    assert cli("sync", "team").exit_code == 0
    remote.commit("second", {"dags/b.py": dag_source("b")})
    assert cli("sync", "team").exit_code == 0
    second, first = _versions(cli)["releases"]
    return remote, first, second


def _versions(cli) -> dict:
    result = cli("versions", "team", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _cli_agrees(cli, release: dict) -> None:
    """`dagops versions` (JSON and text) and `dagops repos show --json` name one release live and pinned."""
    versions = _versions(cli)
    assert versions["live_release_id"] == versions["pinned_release_id"] == release["id"]
    rows = versions["releases"]
    assert [r["id"] for r in rows if r["status"] == "live"] == [r["id"] for r in rows if r["pinned"]] == [release["id"]]
    text = cli("versions", "team").stdout
    assert f"release {release['id']} ({release['commit'][:12]}) is live; pinned to release {release['id']}" in text
    shown = json.loads(cli("repos", "show", "team", "--json").stdout)
    assert shown["status"] == "pinned"
    assert shown["live_release_id"] == shown["pinned_release_id"] == release["id"]
    assert [r["id"] for r in shown["releases"] if r["pinned"]] == [release["id"]]
    assert_live_and_pinned("team", release["id"])


def test_dagops_rollback_of_a_pinned_repository_moves_the_pin(cli, team, dagops_env):
    _remote, first, second = team
    assert cli("pin", "team").exit_code == 0
    _cli_agrees(cli, second)

    rolled = cli("rollback", "team", "--to", str(first["id"]))  # no --pin: it stays pinned, to this release
    assert rolled.exit_code == 0, rolled.output
    assert f"pinned to release {first['id']}" in rolled.stdout and "not pinned" not in rolled.stdout
    _cli_agrees(cli, first)
    assert {p.name for p in (dagops_env.dags_folder / "team" / "dags").iterdir()} == {"a.py"}


def test_dagops_deploy_of_a_pinned_repository_moves_the_pin(cli, team):
    _remote, first, second = team
    assert cli("pin", "team", "--version", str(first["id"])).exit_code == 0
    _cli_agrees(cli, first)
    deployed = cli("deploy", "team", "--version", second["commit"][:10])
    assert deployed.exit_code == 0, deployed.output
    _cli_agrees(cli, second)


def test_dagops_sync_of_a_new_commit_on_a_pinned_repository_keeps_live(cli, team):
    remote, first, _second = team
    cli("rollback", "team", "--to", first["commit"], "--pin")
    remote.commit("third", {"dags/c.py": dag_source("c")})
    synced = cli("sync", "team", "--json")
    assert synced.exit_code == 0 and json.loads(synced.stdout)[0]["status"] == "pinned"
    _cli_agrees(cli, first)
    unpinned = cli("unpin", "team")
    assert unpinned.exit_code == 0
    assert json.loads(cli("sync", "team", "--json").stdout)[0]["status"] == "published"
    assert _versions(cli)["pinned_release_id"] is None
