"""`dagops`: the command line face. Thin: parse arguments, call one service, render the result.

A command's modules load when it runs, not before: the command groups in their own modules are listed in
`LAZY` (their names and one-line help, which `dagops --help` shows) and imported by `LazyGroup` only when one
of their commands is invoked or asked for its help; the commands here import their services inside. So a read
such as `dagops repos list` loads what queries the state DB (store/reads.py: Python's sqlite3 on SQLite, no ORM)
and what it prints, never Airflow or the validation tools (tests/cli/test_fast_reads.py holds it to that;
BENCHMARKS.md (j) times it).
"""

from __future__ import annotations

import contextlib
import getpass
import importlib
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from airflow_dagops import settings
from airflow_dagops.cli import fast_params
from airflow_dagops.cli.common import JsonOption, command, err, print_json, reconcile_sync_runs, say
from airflow_dagops.errors import DagOpsError, InvalidInput
from airflow_dagops.redaction import install_log_redaction
from airflow_dagops.safety import redact
from airflow_dagops.statuses import SyncOutcomeStatus


@dataclass(frozen=True)
class LazyCommand:
    """A top-level command (or group) defined in `module`, whose `register(app)` adds it; `help` is the first
    paragraph of its own help, shown by `dagops --help` without importing the module."""

    module: str
    help: str


_VERSIONS = "airflow_dagops.cli.versions"
LAZY: dict[str, LazyCommand] = {
    "repos": LazyCommand("airflow_dagops.cli.repos", "Register and inspect repositories."),
    "bundle": LazyCommand(
        "airflow_dagops.cli.bundle", "The dagops-releases DAG bundle: every DAG run pinned to its release."
    ),
    "versions": LazyCommand(_VERSIONS, "Every release of a repository, newest first, and its deploy log."),
    "rollback": LazyCommand(
        _VERSIONS, "Put an earlier release that passed validation back live (re-exported if it was pruned)."
    ),
    "pin": LazyCommand(
        _VERSIONS, "Keep a release live (the live one, or roll back to --version): new commits are not followed."
    ),
    "unpin": LazyCommand(_VERSIONS, "Follow the tracked branch again from the next check."),
    "deploy": LazyCommand(
        _VERSIONS, "Validate one commit or tag and, if it passes, publish it and pin the repository to it."
    ),
    "diff": LazyCommand(
        _VERSIONS,
        "What changed between two releases: DAGs and tasks added/removed, schedule, owners, retries, tags.",
    ),
    "promote": LazyCommand(
        "airflow_dagops.cli.promotion",
        "Move the release waiting in a promotion stage one stage on now (to prod from the last one).",
    ),
    "promotion": LazyCommand(
        "airflow_dagops.cli.promotion",
        "Where a repository's releases stand in its promotion stages: live in each, soaking, blocked.",
    ),
    "test": LazyCommand(
        "airflow_dagops.cli.tests",
        "Run the repository's tests/ against a release now (one sandboxed pytest per module) and store the "
        "results with it. Publishes nothing, unless that release was waiting for its tests.",
    ),
    "tests": LazyCommand(
        "airflow_dagops.cli.tests",
        "The stored test results of a release: counts, and each failing test with its message.",
    ),
    "events": LazyCommand(
        "airflow_dagops.cli.events",
        "Print what dagops did (syncs, validations, publishes, rollbacks, promotions, proposals, DAG runs) as "
        "JSON lines, or --text.",
    ),
    "propose": LazyCommand(
        "airflow_dagops.cli.proposals",
        "Validate files against the live release, push them as branch dagops/proposal-<id>, open a pull request.",
    ),
    "credentials": LazyCommand(
        "airflow_dagops.cli.credentials",
        "Test and rotate repositories' credentials (Airflow connections of type git).",
    ),
    "webhooks": LazyCommand(
        "airflow_dagops.cli.webhooks", "Webhooks from GitHub, GitLab, Gitea and Bitbucket (docs/webhooks.md)."
    ),
    "discover": LazyCommand(
        "airflow_dagops.cli.discovery",
        "Find repositories in GitHub organizations, GitLab groups and Gitea organizations that match a rule "
        "(topic, name pattern, a file that must exist); propose them, or register them with --apply.",
    ),
    "ab": LazyCommand("airflow_dagops.cli.experiments", "A/B experiments: two releases of one DAG, runs split."),
    "marketplace": LazyCommand(
        "airflow_dagops.cli.marketplace", "The DAG marketplace: search, install, rate and review shared DAG packages."
    ),
    "mcp": LazyCommand(
        "airflow_dagops.cli.mcp",
        "Serve the dagops MCP tools and resources over stdio, as the local user (docs/assistants.md).",
    ),
}


class _Commands(dict):
    """The top-level group's commands by name; indexing one of `LAZY` that is not loaded yet loads it (what
    code that reads `group.commands[name]` expects)."""

    def __init__(self, commands: Mapping[str, Any], load: Callable[[str], None]) -> None:
        super().__init__(commands)
        self._load = load

    def __missing__(self, name: str):
        if name not in LAZY:
            raise KeyError(name)
        self._load(LAZY[name].module)
        return dict.__getitem__(self, name)


class LazyGroup(TyperGroup):
    """The top-level group: the commands of `LAZY` are imported when invoked; until then `dagops --help` lists
    them by their one-line help."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _Commands(self.commands, self.load)

    def list_commands(self, ctx) -> list[str]:
        return [*super().list_commands(ctx), *(name for name in LAZY if name not in self.commands)]

    def get_command(self, ctx, cmd_name: str):
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in LAZY:
            return TyperCommand(cmd_name, help=LAZY[cmd_name].help)  # a listing only: invoking loads the real one
        return found

    def resolve_command(self, ctx, args: list[str]):
        name = args[0] if args else None
        if name in LAZY and name not in self.commands:
            self.load(LAZY[name].module)
        elif name and name not in self.commands:  # a typo: load the lazy commands it resembles, for "Did you mean"
            for close in get_close_matches(name, [lazy for lazy in LAZY if lazy not in self.commands]):
                self.load(LAZY[close].module)
        return super().resolve_command(ctx, args)

    def load(self, module: str) -> None:
        """Import a command module and add what its `register` defines (a group, or top-level commands)."""
        holder = typer.Typer()
        importlib.import_module(module).register(holder)
        for name, found in typer.main.get_group(holder).commands.items():
            self.add_command(found, name)


fast_params.install()  # a read's plain values skip typer's pydantic step (cli/fast_params.py)
app = typer.Typer(
    cls=LazyGroup,
    help="GitOps for Airflow DAGs: register, sync, validate and publish DAG repositories.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The dagops state DB.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.callback()
def _main_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show dagops' log lines.")] = False,
) -> None:
    # Airflow's logging config shows INFO from every library; a CLI should show results, not chatter.
    for name in ("airflow_dagops", "alembic"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)


@command(app)
def init(
    bundle: Annotated[bool, typer.Option(help="Add the `dagops` DAG bundle (system DAGs) to airflow.cfg.")] = True,
    as_json: JsonOption = False,
):
    """Prepare dagops: check Airflow's config, create folders, migrate the state DB, add the system DAG bundle."""
    from airflow_dagops.airflow import install as setup_service  # lazy: CLI start-up (Airflow's config)
    from airflow_dagops.validate.sandbox_host import describe_support, sandbox_support  # lazy: CLI start-up

    done = setup_service.init(add_bundle=bundle)
    # Whether DAG files can be validated here, and if not, what fixes it (docs/security.md).
    sandbox = describe_support()
    if as_json:
        print_json({"done": done, "sandbox": {"available": sandbox_support().available, "detail": sandbox}})
        return
    for line in done:
        say(f"✓ {line}")
    warning = "UNAVAILABLE" in sandbox or "DEGRADED" in sandbox
    say(f"✗ {sandbox}" if warning else f"✓ {sandbox}", "red" if warning else None)


@command(db_app, "migrate")
def db_migrate(as_json: JsonOption = False):
    """Create or upgrade the dagops state DB schema."""
    from airflow_dagops.store import db  # lazy: CLI start-up (SQLAlchemy, alembic)

    revision = db.migrate()
    if as_json:
        print_json({"state_db": redact(settings.sql_alchemy_conn()), "revision": revision})
        return
    say(f"dagops state DB at {redact(settings.sql_alchemy_conn())} is at revision {revision}")


@command(app)
def sync(
    name: Annotated[str | None, typer.Argument(help="Repository to sync.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Sync every enabled repository.")] = False,
    force: Annotated[bool, typer.Option(help="Re-export and re-validate even if the commit was seen.")] = False,
    via_airflow: Annotated[
        bool, typer.Option("--via-airflow", help="Trigger dagops_sync in Airflow instead; prints the run ids.")
    ] = False,
    as_json: JsonOption = False,
):
    """Fetch, validate and publish now, in this process (CI and local use), or --via-airflow."""
    from airflow_dagops.repositories.info import list_repositories  # lazy: CLI start-up (state DB)
    from airflow_dagops.sync.sense import empty_trash  # lazy: CLI start-up (git)
    from airflow_dagops.sync.sync import sync_repository  # lazy: CLI start-up (git, validation)

    if bool(name) == all_:
        raise DagOpsError("give a repository name or --all (not both)")
    names = [r.name for r in list_repositories() if r.enabled] if all_ or not name else [name]
    if via_airflow:
        _request_syncs(names, force=force, as_json=as_json)
        return
    outcomes = []
    for repo_name in names:
        with err.status(f"{repo_name}: starting") as spinner:  # progress goes to stderr, results to stdout

            def progress(step: str, n: str = repo_name) -> None:
                spinner.update(f"{n}: {step}…")

            outcome = sync_repository(repo_name, trigger="cli", force=force, progress=progress)
        outcomes.append(outcome)
        if not as_json:
            colour = "green" if outcome.status == SyncOutcomeStatus.PUBLISHED else ("red" if not outcome.ok else "cyan")
            say(f"{outcome.status}: {outcome.message}", colour)
            for finding in outcome.findings:
                if finding["severity"] == "error":
                    where = f"{finding['file']}:{finding['line']}" if finding["line"] else finding["file"]
                    say(f"    {where}: {finding['message']}")
    empty_trash()  # pruned release folders; done here, after the syncs, to keep publishes fast
    if as_json:
        print_json([o.to_dict() for o in outcomes])
    if any(not o.ok for o in outcomes):
        raise typer.Exit(1)


def _request_syncs(names: list[str], *, force: bool, as_json: bool) -> None:
    """Queue one dagops_sync run per repository in Airflow (needs Airflow's metadata DB, like the API)."""
    from airflow_dagops.sync.runs import request_sync  # lazy: CLI start-up (Airflow)

    actor = f"cli:{getpass.getuser()}"
    with contextlib.redirect_stdout(sys.stderr):  # Airflow logs to stdout; stdout is for results (--json)
        runs = [request_sync(repo_name, actor=actor, force=force, trigger="cli") for repo_name in names]
    if as_json:
        print_json(runs)
        return
    for run in runs:
        say(f"queued: {run['repository']} as Airflow run {run['airflow_run_id']} (sync {run['id']})", "cyan")


@command(app)
def validate(
    path: Annotated[str, typer.Argument(help="A folder of DAGs (a repository checkout, a release).")] = ".",
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, json, sarif or junit.")] = "text",
    changed_since: Annotated[
        str | None, typer.Option(help="Only files changed since this git ref (and the files importing them).")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Check everything again; ignore cached results.")
    ] = False,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write the report to a file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON: the same as --format json.")] = False,
):
    """Run the validation pipeline on a folder, as dagops does before publishing. Exit 1 when there are errors.

    Needs no state DB and no running Airflow: use it in CI and pre-commit."""
    from airflow_dagops.validate import folder as validate_service  # lazy: CLI start-up (validation tools)

    if as_json:
        if fmt not in ("text", "json"):
            raise InvalidInput(f"--json is --format json: give one of them, not --format {fmt} as well")
        fmt = "json"
    report, text = validate_service.validate_folder(
        Path(path), fmt=fmt, changed_since=changed_since, use_cache=not no_cache
    )
    if output:
        Path(output).write_text(text)
    else:
        sys.stdout.write(text)
    if not report.passed:
        raise typer.Exit(1)


@command(app)
def status(as_json: JsonOption = False):
    """Where dagops keeps its state, and how every repository is doing."""
    from airflow_dagops.cli import health as cli_health  # lazy: CLI start-up (state DB)
    from airflow_dagops.repositories import info as repo_info  # lazy: CLI start-up (state DB)

    reconcile_sync_runs()
    data = repo_info.status()
    exit_code = cli_health.add_health(data)  # 0 ok, 1 degraded, 2 failing (docs/operations.md)
    if as_json:
        print_json(data)
        raise typer.Exit(exit_code)
    sandbox = data["sandbox"]
    say(f"dagops home:  {data['dagops_home']}\nstate DB:     {data['state_db']}\ndags folder:  {data['dags_folder']}")
    say(f"sandbox:      {sandbox['detail']}", None if sandbox["available"] else "red")
    say(f"repositories: {len(data['repositories'])}")
    for repo in data["repositories"]:
        live = (repo["live_commit"] or "nothing live")[:12]
        pinned = ", pinned" if repo["pinned_release_id"] else ""
        say(f"  {repo['name']}: {repo['status']}, {live}{pinned}, last sync {repo['last_sync_status'] or 'never'}")
    cli_health.print_health(data["health"])
    raise typer.Exit(exit_code)


def main() -> None:
    # Like `airflow connections ...`, this is a server-side process: connection lookups (GitHook) may
    # read Airflow's metadata DB, not only env vars and secrets backends (the Task SDK's view).
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    app()


if __name__ == "__main__":
    main()
