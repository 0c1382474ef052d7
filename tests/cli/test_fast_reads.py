"""`dagops` reads load what they use: no Airflow, no validation, packaging or HTTP tools, no pydantic (issue 19,
"Fast CLI").

Structural, not timed: each read runs in a new process with `-X importtime`, which names every module the
process imported. How long they take is measured by `make bench` (BENCHMARKS.md, section (j)).
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest
import typer

from airflow_dagops.cli import main as cli_main
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store import db, reads, schema
from airflow_dagops.sync.sync import sync_repository

# Modules a read must not load: Airflow (about two seconds), the schema migrations, the tools of validation,
# packaging and Git hosts that only writes use, YAML and the package schema, and pydantic (typer converts a read's
# plain values without it: cli/fast_params.py).
HEAVY = ("airflow", "alembic", "jsonschema", "bandit", "libcst", "requests", "git", "yaml", "pydantic")
# Every read command, with a word its output must hold (so the probe sees a command that worked).
READS = [
    (["repos", "list"], "team"),
    (["repos", "list", "--json"], "team"),
    (["repos", "show", "team"], "team"),
    (["repos", "export"], "name: team"),
    (["status"], "team"),
    (["events"], "team"),
    (["versions", "team"], "team"),
    (["diff", "team", "1", "1", "--json"], "dags_added"),
    (["tests", "team", "--json"], "null"),
    (["promotion", "team"], "no promotion stages"),
    (["webhooks", "show", "team"], "Webhook for repository 'team'"),
    (["marketplace", "search", "etl"], "No package matches"),
    (["marketplace", "list"], "No package in the catalogs"),
    (["marketplace", "list", "--installed"], "No package is installed"),
    (["discover", "--list"], "No discovery source"),
    (["marketplace", "catalogs", "list"], "No catalog registered"),
    (["--help"], "Usage"),
]
NEEDS = {("repos", "export"): {"yaml"}}  # what a read writes needs: dagops.yaml is YAML
# The reads that query the state DB through store/reads.py: on SQLite (Python's sqlite3) they load no SQLAlchemy at
# all, and writing to a pipe they load no rich either (cli/common.py `Output`). `--help` is laid out by rich.
WITHOUT_ORM = [
    ["repos", "list"],
    ["repos", "list", "--json"],
    ["repos", "show", "team"],
    ["status"],
    ["versions", "team"],
    ["diff", "team", "1", "1", "--json"],
    ["tests", "team", "--json"],
    ["marketplace", "search", "etl"],
    ["marketplace", "list"],
    ["marketplace", "list", "--installed"],
    ["marketplace", "catalogs", "list"],
    ["discover", "--list"],
    ["webhooks", "show", "team"],
    ["repos", "export"],
    ["promotion", "team"],
    ["events"],
    ["events", "--text", "--repository", "team"],
    ["events", "--follow", "--max-polls", "2", "--interval", "0.1"],
    ["--help"],
]


@pytest.fixture
def installation(dagops_env, git_remote):
    """A repository with a live release, so every read has rows to print."""
    add_repository("team", git_remote().url)
    assert sync_repository("team", trigger="cli").ok
    return dagops_env


def _imported(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "airflow_dagops.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    modules = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done, modules


@pytest.mark.parametrize("args,shown", READS, ids=[" ".join(args) for args, _ in READS])
def test_a_read_imports_no_airflow_and_no_heavy_tool(installation, args, shown):
    done, modules = _imported(args, installation.env())
    assert done.returncode in (0, 1), done.stderr[-3000:]  # `status` exits 1 while a repository is degraded
    assert shown in done.stdout
    assert "airflow_dagops.cli.common" in modules  # the probe sees the command's imports at all
    heavy = set(HEAVY) - NEEDS.get(tuple(args), set())
    assert sorted(m for m in modules if m.split(".")[0] in heavy) == []


@pytest.mark.parametrize("args", WITHOUT_ORM, ids=" ".join)
def test_a_read_of_a_sqlite_state_db_loads_no_sqlalchemy(installation, args):
    if reads.sqlite_path(installation.db_url) is None:
        pytest.skip("other databases are read through SQLAlchemy Core")
    done, modules = _imported(args, installation.env())
    assert done.returncode in (0, 1), done.stderr[-3000:]
    unwanted = {"sqlalchemy"} | ({"rich"} if args != ["--help"] else set())
    assert sorted(m for m in modules if m.split(".")[0] in unwanted) == []


def test_an_error_of_a_read_loads_no_airflow(installation):
    """The error message is redacted without Airflow's config when it holds none of its values (redaction.py)."""
    done, modules = _imported(["repos", "show", "nope"], installation.env())
    assert done.returncode == 1 and "no repository named 'nope'" in done.stderr
    on_sqlite = reads.sqlite_path(installation.db_url) is not None  # other databases are read through SQLAlchemy
    unwanted = ("airflow", "sqlalchemy") if on_sqlite else ("airflow",)
    assert not any(m.split(".")[0] in unwanted for m in modules)


def test_help_lists_the_lazy_commands_by_their_own_help():
    """`dagops --help` shows LAZY's one-line help without importing the modules; it must be their real help."""
    group = typer.main.get_command(cli_main.app)
    for name, lazy in cli_main.LAZY.items():
        real = group.commands[name]  # indexing loads the module
        first = inspect.cleandoc(real.help or "").split("\n\n")[0].replace("\n", " ").strip()
        assert lazy.help == first, name


def test_the_schema_check_reads_the_head_revision_without_alembic():
    assert schema.head_from_files() == db.head_revision()


def test_a_typo_still_suggests_a_lazy_command(cli):
    result = cli("repo", "list")
    assert result.exit_code == 2 and "Did you mean 'repos'" in result.output


# -- `webhooks show`: whether the webhook secret exists, without Airflow ----------------------------------------------
def _webhook_secret_shown(installation, **env: str) -> tuple[bool, set[str]]:
    done, modules = _imported(["webhooks", "show", "team", "--json"], {**installation.env(), **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["secret_exists"], modules


def test_webhooks_show_reads_an_environment_connection_without_airflow(installation):
    uri = {"AIRFLOW_CONN_DAGOPS_WEBHOOK": "generic://:s3cr3t-webhook-value@"}
    no_password = {"AIRFLOW_CONN_DAGOPS_WEBHOOK": json.dumps({"conn_type": "generic", "login": "x"})}
    for env, exists in ((uri, True), (no_password, False), ({}, False)):
        shown, modules = _webhook_secret_shown(installation, **env)
        assert shown is exists and not any(m.split(".")[0] == "airflow" for m in modules), env


def test_webhooks_show_reads_the_metadata_db_row_as_airflow_does(installation, flask_app):
    """The session's real Airflow metadata DB, a row written by Airflow's own model: the direct read agrees with
    Airflow's lookup (`password_of`), and a custom secrets backend hands the question to Airflow."""
    from airflow.configuration import conf
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    from airflow_dagops.airflow.connections import password_of

    metadata_db = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conf.get("database", "sql_alchemy_conn")}
    with create_session() as session:
        session.add(Connection(conn_id="dagops_webhook", conn_type="generic", password="s3cr3t-row-value"))
    try:
        assert password_of("dagops_webhook") == "s3cr3t-row-value"
        shown, modules = _webhook_secret_shown(installation, **metadata_db)
        assert shown is True and not any(m.split(".")[0] == "airflow" for m in modules)
        backend = {"AIRFLOW__SECRETS__BACKEND": "airflow.secrets.local_filesystem.LocalFilesystemBackend"}
        _, modules = _webhook_secret_shown(installation, **metadata_db, **backend)
        assert "airflow.models.connection" in modules  # not sure by hand: Airflow answered
    finally:
        with create_session() as session:
            session.execute(delete(Connection).where(Connection.conn_id == "dagops_webhook"))
    assert _webhook_secret_shown(installation, **metadata_db)[0] is False


# -- cli/fast_params.py: values that skip typer's pydantic step are those it would return unchanged ---------------
def test_typed_values_are_still_converted_and_checked_by_typer(cli, installation):
    assert len(json.loads(cli("versions", "team", "--limit", "1", "--json").stdout)["releases"]) == 1
    for bad in (["--limit", "0"], ["--limit", "many"]):
        refused = cli("versions", "team", *bad)
        assert refused.exit_code == 2 and "--limit" in refused.output, refused.output
    assert json.loads(cli("versions", "team", "--json").stdout)["total"] == 1  # the default, passed as it is
