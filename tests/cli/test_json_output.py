"""Every `dagops` command takes `--json` (issue 19): its result as one JSON document on stdout, and an error as the
REST API's envelope `{"error": {"code", "message", "details"}}` on stderr with the exit code the command uses in
text. The first test walks the whole command tree, lazily loaded groups included, so a new command without
`--json` fails it; the others parse the real output of the commands that gained it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
import yaml
from typer.testing import CliRunner

from airflow_dagops.cli import main as cli_main
from airflow_dagops.repositories.info import list_repositories
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source, write_file
from tests.helpers.servers import new_key_pair
from tests.marketplace.conftest import package_files, tag


def _leaves(command, path: tuple[str, ...] = ()):
    """(path, command) of every runnable command under `command`. Indexing the top-level group's `commands` loads a
    lazy group (cli/main.py), as invoking it would."""
    commands = getattr(command, "commands", None)
    if commands is None:
        yield path, command
        return
    for name in command.list_commands(typer.Context(command)):
        yield from _leaves(commands[name], (*path, name))


def test_every_command_takes_json():
    leaves = dict(_leaves(typer.main.get_command(cli_main.app)))
    assert set(cli_main.LAZY) <= {path[0] for path in leaves}  # the walk reached every lazily loaded group
    assert {("marketplace", "catalogs", "add"), ("credentials", "rotate"), ("init",)} <= set(leaves)
    without = [" ".join(path) for path, command in leaves.items() if not _takes_json(command)]
    assert without == [], f"commands without --json: {without}"


def _takes_json(command) -> bool:
    return any("--json" in getattr(parameter, "opts", ()) for parameter in command.params)


def _error(result) -> dict:
    """The JSON error a failed command wrote on stderr; nothing on stdout."""
    assert result.stdout == "", result.stdout
    return json.loads(result.stderr)["error"]


# -- errors ---------------------------------------------------------------------------------------------------------
def test_an_error_is_json_on_stderr_with_the_commands_exit_code(cli, dagops_env):
    missing = cli("repos", "show", "missing", "--json")
    assert missing.exit_code == 1
    error = _error(missing)
    assert error["code"] == "not_found" and "no repository named 'missing'" in error["message"]
    assert error["details"] == {}


def test_bad_input_is_a_json_error_with_exit_2_and_changes_nothing(cli, dagops_env):
    refused = cli("repos", "add", "Bad", "file:///x", "--json")
    assert refused.exit_code == 2
    error = _error(refused)
    assert error["code"] == "invalid_input" and "invalid repository name" in error["message"]
    assert list_repositories() == []


def test_a_url_with_a_password_is_redacted_in_a_json_error(cli, dagops_env):
    refused = cli("repos", "add", "team", "https://bot:hunter2hunter2@example.com/x.git", "--ref", "-x", "--json")
    assert refused.exit_code == 2
    assert "hunter2hunter2" not in refused.stderr and _error(refused)["code"] == "invalid_input"


# -- repos remove / export --------------------------------------------------------------------------------------------
@pytest.fixture
def team(dagops_env, git_remote):
    remote = git_remote()
    add_repository("team", remote.url, namespace="analytics")
    assert sync_repository("team", trigger="cli").ok
    return remote


def test_repos_remove_json(cli, team, dagops_env):
    removed = cli("repos", "remove", "team", "--json")
    assert removed.exit_code == 0, removed.output
    answer = json.loads(removed.stdout)
    assert answer["repository"] == "team" and answer["removed"] is True and answer["dags_kept"] is False
    assert "removed" in answer["message"] and not (dagops_env.dags_folder / "analytics").exists()
    again = cli("repos", "remove", "team", "--json")
    assert again.exit_code == 1 and _error(again)["code"] == "not_found"


def test_repos_export_json_is_the_registry_and_applies_as_it_is(cli, team, tmp_path):
    exported = cli("repos", "export", "--json")
    assert exported.exit_code == 0, exported.output
    document = json.loads(exported.stdout)
    (entry,) = document["repositories"]
    assert (entry["name"], entry["url"], entry["namespace"]) == ("team", team.url, "analytics")
    assert document == yaml.safe_load(cli("repos", "export").stdout)  # the YAML form says the same

    as_file = tmp_path / "dagops.json"
    as_file.write_text(exported.stdout)
    plan = json.loads(cli("repos", "apply", "-f", str(as_file), "--dry-run", "--json").stdout)
    assert plan["applied"] == [] and plan["actions"] == []  # applying its own export changes nothing

    written = cli("repos", "export", "-o", str(tmp_path / "dagops.yaml"), "--json")
    assert json.loads(written.stdout) == {"output": str(tmp_path / "dagops.yaml"), "repositories": 1}
    assert yaml.safe_load((tmp_path / "dagops.yaml").read_text()) == document


# -- validate, bundle, init -------------------------------------------------------------------------------------------
def test_validate_json_is_format_json(cli, tmp_path):
    (tmp_path / "hello.py").write_text(dag_source("hello"))
    report = cli("validate", str(tmp_path), "--json", "--no-cache")
    assert report.exit_code == 0, report.output
    as_format = cli("validate", str(tmp_path), "--format", "json", "--no-cache")
    without_timings = [{k: v for k, v in json.loads(r.stdout).items() if k != "stats"} for r in (report, as_format)]
    assert without_timings[0] == without_timings[1] and without_timings[0]["findings"] == []
    clash = cli("validate", str(tmp_path), "--json", "--format", "sarif")
    assert clash.exit_code == 2 and "--json is --format json" in _error(clash)["message"]


def test_bundle_migrate_json(cli, team, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONFIG", raising=False)
    monkeypatch.setenv("AIRFLOW__DAGOPS__PUBLISH_MODE", "symlinks")
    moved = cli("bundle", "migrate", "--to", "symlinks", "--json")
    assert moved.exit_code == 0, moved.output
    answer = json.loads(moved.stdout)
    assert answer["to"] == "symlinks" and any("restart the dag-processor" in line for line in answer["done"])
    refused = cli("bundle", "migrate", "--to", "elsewhere", "--json")
    assert refused.exit_code == 2 and _error(refused)["code"] == "invalid_input"


def test_init_json(dagops_env):
    """In a process of its own, as `dagops init` runs: it writes the test's airflow.cfg through Airflow's config."""
    done = subprocess.run(
        [sys.executable, "-m", "airflow_dagops.cli.main", "init", "--json"],
        env=dagops_env.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    assert any(line.startswith("state DB migrated to revision") for line in answer["done"])
    assert isinstance(answer["sandbox"]["available"], bool) and "sandbox" in answer["sandbox"]["detail"].lower()


# -- credentials deploy-key -------------------------------------------------------------------------------------------
def test_credentials_deploy_key_json(cli, dagops_env, git_remote, monkeypatch):
    key = new_key_pair("team-deploy-key")
    extra = {"private_key": key.private}
    monkeypatch.setenv("AIRFLOW_CONN_TEAM_SSH", json.dumps({"conn_type": "git", "extra": extra}))
    remote = git_remote()
    add_repository("team", remote.url, conn_id="team_ssh", verify=False)
    add_repository("plain", remote.url, verify=False)

    shown = cli("credentials", "deploy-key", "team", "--json")
    assert shown.exit_code == 0, shown.output
    answer = json.loads(shown.stdout)
    assert answer == {"repository": "team", "conn_id": "team_ssh", "public_key": answer["public_key"]}
    assert answer["public_key"].split()[:2] == key.public.split()[:2]
    assert "PRIVATE" not in shown.stdout
    assert cli("credentials", "deploy-key", "team").stdout.strip() == answer["public_key"]

    none = cli("credentials", "deploy-key", "plain", "--json")
    assert none.exit_code == 1 and "has no SSH key" in _error(none)["message"]


def test_credentials_rotate_json_of_an_unknown_repository(dagops_env):
    result = CliRunner().invoke(cli_main.app, ["credentials", "rotate", "nope", "--yes", "--json"])
    assert result.exit_code == 1 and _error(result)["code"] == "not_found"


# -- marketplace ------------------------------------------------------------------------------------------------------
def test_marketplace_writes_json(cli, dagops_env, git_remote):
    catalog = git_remote(package_files("kit", "1.0.0"))
    tag(catalog, "kit/v1.0.0")
    added = cli("marketplace", "catalogs", "add", "team", catalog.url, "--json")
    assert added.exit_code == 0, added.output
    answer = json.loads(added.stdout)
    assert answer["name"] == "team" and [r["status"] for r in answer["refresh"]] == ["ok"]

    assert cli("marketplace", "install", "kit", "--json").exit_code == 0
    rated = json.loads(cli("marketplace", "rate", "kit", "4", "--json").stdout)
    assert (rated["package"], rated["stars"], rated["rating"], rated["ratings_count"]) == ("kit", 4, 4.0, 1)
    bad = cli("marketplace", "rate", "kit", "six", "--json")
    assert bad.exit_code == 2 and _error(bad)["code"] == "invalid_input"
    reviewed = json.loads(cli("marketplace", "review", "kit", "Does what it says.", "--json").stdout)
    assert reviewed["package"] == "kit" and isinstance(reviewed["id"], int)

    uninstalled = json.loads(cli("marketplace", "uninstall", "kit", "--json").stdout)
    assert uninstalled["package"] == "kit" and uninstalled["uninstalled"] is True
    removed = json.loads(cli("marketplace", "catalogs", "remove", "team", "--json").stdout)
    assert removed == {"catalog": "team", "removed": True, "message": removed["message"]}
    assert json.loads(cli("marketplace", "catalogs", "list", "--json").stdout) == []


def test_marketplace_publish_json(cli, dagops_env, git_remote, tmp_path):
    catalog = git_remote({"README.md": "catalog\n"})
    assert cli("marketplace", "catalogs", "add", "team", catalog.url, "--no-refresh").exit_code == 0
    for relative, content in package_files("kit", "1.0.0").items():
        write_file(tmp_path / "work", relative, content)
    published = cli("marketplace", "publish", str(tmp_path / "work" / "kit"), "--catalog", "team", "--json")
    assert published.exit_code == 0, published.output
    answer = json.loads(published.stdout)
    assert answer["branch"] == "dagops/publish-kit-1.0.0"
    assert catalog.git("rev-parse", f"refs/heads/{answer['branch']}") == answer["commit"]
