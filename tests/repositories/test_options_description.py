"""The one description of a repository's options (repositories/options.py) reaches every face: the OpenAPI
schemas, the flags of `dagops repos add` / `repos update` (help text included), dagops.yaml, the read model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import typer
from rich.markup import escape

from airflow_dagops.api.openapi import document
from airflow_dagops.cli.main import app
from airflow_dagops.repositories import declarative
from airflow_dagops.repositories import options as repo_options
from airflow_dagops.store.models import Repository
from airflow_dagops.store.views import RepositoryInfo

OPTIONS = repo_options.OPTIONS
NAMES = [option.name for option in OPTIONS]


def _cli_params(command: str) -> dict:
    """The click parameters typer builds for `dagops repos <command>`, by name."""
    repos = typer.main.get_command(app).commands["repos"]
    return {param.name: param for param in repos.commands[command].params}


@pytest.mark.parametrize("option", OPTIONS, ids=NAMES)
def test_every_option_is_in_the_openapi_schemas_with_its_help(option):
    schemas = document()["components"]["schemas"]
    create, update, shown = (
        schemas[name]["properties"] for name in ("RepositoryCreate", "RepositoryUpdate", "Repository")
    )
    assert create[option.name]["description"] == option.help
    assert shown[option.name]["description"] == option.help
    assert (option.name in update) is option.updatable
    assert "name" in schemas["RepositoryCreate"]["required"] and "url" in schemas["RepositoryCreate"]["required"]


@pytest.mark.parametrize("option", OPTIONS, ids=NAMES)
def test_every_option_has_a_flag_whose_help_is_the_description(option):
    adding, updating = _cli_params("add"), _cli_params("update")
    assert adding[option.name].help.startswith(escape(option.help))
    if not option.argument:
        assert option.flag in adding[option.name].opts
    if option.updatable:
        assert option.flag in updating[option.name].opts
        assert updating[option.name].help.startswith(escape(option.help))
    else:
        assert option.name not in updating


def test_the_help_of_repos_add_and_update_lists_every_flag(cli):
    for command in ("add", "update"):
        shown = cli("repos", command, "--help")
        assert shown.exit_code == 0, shown.output
        flags = [o.flag for o in OPTIONS if not (command == "add" and o.argument) and (command == "add" or o.updatable)]
        assert [flag for flag in flags if flag not in shown.output] == []


def test_every_option_is_accepted_in_dagops_yaml(dagops_env):
    lines = ["repositories:", "  - name: team"]
    lines += [f"    {option.name}: {_yaml(option.example)}" for option in OPTIONS]
    (spec,) = declarative.parse("\n".join(lines) + "\n").repositories
    assert spec.settings == {option.name: option.clean(option.example) for option in OPTIONS}
    assert set(NAMES) <= set(declarative.KNOWN_KEYS)


def test_every_option_is_in_the_read_model_and_the_state_db():
    fields = {field.name for field in dataclasses.fields(RepositoryInfo)}
    assert [name for name in NAMES if name not in fields] == []
    assert [name for name in NAMES if name not in Repository.__table__.columns] == []


def test_every_option_is_documented_in_the_reference():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    section = doc.split("## Repository options", 1)[1].split("\n## ", 1)[0]
    assert [name for name in NAMES if f"| `{name}` |" not in section] == []


def test_the_registry_changes_exactly_the_updatable_options():
    assert set(repo_options.UPDATABLE) == {option.name for option in OPTIONS} - {"namespace"}


@pytest.mark.parametrize("option", OPTIONS, ids=NAMES)
def test_null_puts_an_option_back_to_its_default(dagops_env, option):
    if option.name == "url":
        pytest.skip("a repository has no default URL")
    assert option.clean(None) == option.default


def _yaml(value) -> str:
    """A value as flow-style YAML (JSON is YAML)."""
    return json.dumps(value)
