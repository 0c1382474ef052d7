"""`dagops` reads load what they use: no Airflow, no validation or packaging tools (issue 19, "Fast CLI").

Structural, not timed: each read runs in a new process with `-X importtime`, which names every module the
process imported. How long they take is measured by `make bench` (BENCHMARKS.md, section (j)).
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
import typer

from airflow_dagops.cli import main as cli_main
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store import db
from airflow_dagops.sync.sync import sync_repository

# Modules a read must not load: Airflow (about a second), the schema migrations, and the tools of validation,
# packaging and Git hosts that only writes use.
HEAVY = ("airflow", "alembic", "jsonschema", "bandit", "libcst", "requests", "git")
READS = [
    ["repos", "list"],
    ["repos", "list", "--json"],
    ["repos", "show", "team"],
    ["status"],
    ["events"],
    ["versions", "team"],
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


@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_a_read_imports_no_airflow_and_no_heavy_tool(installation, args):
    done, modules = _imported(args, installation.env())
    assert done.returncode in (0, 1), done.stderr[-3000:]  # `status` exits 1 while a repository is degraded
    assert ("Usage" if args == ["--help"] else "team") in done.stdout
    assert "airflow_dagops.cli.common" in modules  # the probe sees the command's imports at all
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert loaded == []


def test_help_lists_the_lazy_commands_by_their_own_help():
    """`dagops --help` shows LAZY's one-line help without importing the modules; it must be their real help."""
    group = typer.main.get_command(cli_main.app)
    for name, lazy in cli_main.LAZY.items():
        real = group.commands[name]  # indexing loads the module
        first = inspect.cleandoc(real.help or "").split("\n\n")[0].replace("\n", " ").strip()
        assert lazy.help == first, name


def test_the_schema_check_reads_the_head_revision_without_alembic():
    assert db._head_from_files() == db.head_revision()


def test_a_typo_still_suggests_a_lazy_command(cli):
    result = cli("repo", "list")
    assert result.exit_code == 2 and "Did you mean 'repos'" in result.output
