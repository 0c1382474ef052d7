"""`dagops`: the command line face. Thin: parse arguments, call one service, render the result."""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from airflow_dagops.cli import credentials as cli_credentials
from airflow_dagops.cli import declarative as cli_declarative
from airflow_dagops.cli import events as cli_events
from airflow_dagops.cli import marketplace as cli_marketplace
from airflow_dagops.cli import promotion as cli_promotion
from airflow_dagops.cli import proposals as cli_proposals
from airflow_dagops.cli import tests as cli_tests
from airflow_dagops.cli import versions as cli_versions
from airflow_dagops.cli import webhooks as cli_webhooks
from airflow_dagops.cli.common import JsonOption, command, err, out
from airflow_dagops.cli.common import print_json as _print_json
from airflow_dagops.cli.common import say as _say
from airflow_dagops.errors import DagOpsError, InvalidInput
from airflow_dagops.redaction import install_log_redaction
from airflow_dagops.repositories import info as repo_info
from airflow_dagops.repositories.info import RepositoryInfo, get_repository, list_repositories, repository_history
from airflow_dagops.repositories.registry import add_repository, remove_repository
from airflow_dagops.safety import redact
from airflow_dagops.sync.runs import request_sync
from airflow_dagops.sync.sense import empty_trash
from airflow_dagops.sync.sync import sync_repository

app = typer.Typer(
    help="GitOps for Airflow DAGs: register, sync, validate and publish DAG repositories.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
repos_app = typer.Typer(help="Register and inspect repositories.", no_args_is_help=True)
db_app = typer.Typer(help="The dagops state DB.", no_args_is_help=True)
app.add_typer(repos_app, name="repos")
app.add_typer(db_app, name="db")
cli_declarative.register(repos_app)
app.add_typer(cli_credentials.app, name="credentials")
app.add_typer(cli_webhooks.app, name="webhooks")
cli_versions.register(app)
cli_promotion.register(app)
cli_tests.register(app)
cli_marketplace.register(app)
cli_events.register(app)
cli_proposals.register(app)


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
):
    """Prepare dagops: check Airflow's config, create folders, migrate the state DB, add the system DAG bundle."""
    from airflow_dagops.airflow import install as setup_service

    for line in setup_service.init(add_bundle=bundle):
        warning = line.startswith("Validation sandbox: ") and ("UNAVAILABLE" in line or "DEGRADED" in line)
        _say(f"✗ {line}" if warning else f"✓ {line}", "red" if warning else None)


@command(db_app, "migrate")
def db_migrate():
    """Create or upgrade the dagops state DB schema."""
    from airflow_dagops import settings
    from airflow_dagops.store import db

    revision = db.migrate()
    _say(f"dagops state DB at {redact(settings.sql_alchemy_conn())} is at revision {revision}")


@command(repos_app, "add")
def repos_add(
    name: Annotated[str, typer.Argument(help="Repository name: lower-case letters, digits, '-' or '_'.")],
    url: Annotated[str, typer.Argument(help="Git URL (https, ssh, git or file). No credentials: use --conn-id.")],
    ref: Annotated[str, typer.Option(help="Branch, tag or commit to track.")] = "main",
    namespace: Annotated[str | None, typer.Option(help="Folder in the dags folder (default: the name).")] = None,
    conn_id: Annotated[str | None, typer.Option(help="Airflow connection (type 'git') with credentials.")] = None,
    subdir: Annotated[str | None, typer.Option(help="Publish only this folder of the repository.")] = None,
    priority: Annotated[int, typer.Option(help="Lower wins when two repositories define one dag_id.")] = 100,
    poll_interval: Annotated[int | None, typer.Option(help="Seconds between checks for new commits.")] = None,
    verify: Annotated[bool, typer.Option(help="Check that the remote and ref exist before registering.")] = True,
    webhook_conn_id: Annotated[
        str | None, typer.Option(help="Airflow connection whose password is this repository's webhook secret.")
    ] = None,
    on_conflict: Annotated[
        str | None,
        typer.Option(
            help="When a higher-priority repository owns one of its dag_ids: publish without that file "
            "(skip_files, the default) or do not publish the release (block)."
        ),
    ] = None,
    access_control: Annotated[
        list[str] | None,
        typer.Option(
            metavar="ROLE=PERM,PERM",
            help="FAB auth manager: give ROLE these permissions (can_read, can_edit, can_delete) on every DAG "
            "of the namespace. Repeat for more roles.",
        ),
    ] = None,
):
    """Register a repository. Run `dagops sync NAME` (or wait for dagops_sync) to publish it."""
    info = add_repository(
        name,
        url,
        ref=ref,
        namespace=namespace,
        conn_id=conn_id,
        subdir=subdir,
        priority=priority,
        poll_interval=poll_interval,
        verify=verify,
        webhook_conn_id=webhook_conn_id,
        on_conflict=on_conflict,
        access_control=parse_access_control(access_control or []),
    )
    _say(
        f"Registered {info.name} ({info.url} @ {info.ref}) → namespace {info.namespace}. "
        f"Next: `dagops sync {info.name}`."
    )


def parse_access_control(entries: list[str]) -> dict[str, list[str]] | None:
    """`["data-eng=can_read,can_edit", "viewers=can_read"]` -> {role: [permissions]}; services check the values."""
    mapping: dict[str, list[str]] = {}
    for entry in entries:
        role, separator, permissions = entry.partition("=")
        if not separator or not role.strip() or not permissions.strip():
            raise InvalidInput(
                f"--access-control takes ROLE=PERMISSION[,PERMISSION...], e.g. data-eng=can_read,can_edit; "
                f"got {entry!r}"
            )
        mapping.setdefault(role.strip(), []).extend(p.strip() for p in permissions.split(",") if p.strip())
    return mapping or None


@command(repos_app, "list")
def repos_list(as_json: JsonOption = False):
    """List registered repositories with their live commit and last sync."""
    repos = list_repositories()
    if as_json:
        _print_json([r.to_dict() for r in repos])
        return
    if not repos:
        _say("No repositories registered. Add one with `dagops repos add NAME URL`.")
        return
    table = Table("name", "namespace", "url", "ref", "live", "dag files", "last sync")
    for r in repos:
        table.add_row(r.name, r.namespace, r.url, r.ref, (r.live_commit or "-")[:12], str(r.dag_files), _last_sync(r))
    out.print(table)


def _setting_text(key: str, value) -> str:
    """One setting as `repos show` prints it; the mappings in the words dagops.yaml uses."""
    if value is None:
        return {"access_control": "none (Airflow's defaults)", "promotion": "none"}.get(key, "-")
    if key == "access_control":
        return "; ".join(f"{role}={','.join(permissions)}" for role, permissions in value.items())
    if key == "promotion":
        return f"stages {' → '.join(value['stages'])}, soak_runs {value['soak_runs']}"
    return str(value)


def _last_sync(repo: RepositoryInfo) -> str:
    if not repo.last_sync_status:
        return "never"
    text = f"{repo.last_sync_status} {repo.last_sync_at[:19].replace('T', ' ')}"
    return text


@command(repos_app, "show")
def repos_show(name: str, as_json: JsonOption = False):
    """Show one repository: settings, live release, recent syncs, releases and their findings."""
    info = get_repository(name)
    history = repository_history(name)
    if as_json:
        _print_json({**info.to_dict(), **history})
        return
    for key, value in info.to_dict().items():
        _say(f"{key:>18}  {_setting_text(key, value)}")
    _say("\nRecent syncs", "bold")
    for run in history["sync_runs"]:
        commit = (run["commit"] or "")[:12]
        line = f"  #{run['id']} {run['started_at'][:19]} {run['trigger']:<8} {run['status']:<9} {commit}"
        _say(line + (f"  {run['error']}" if run["error"] else ""), "red" if run["status"] == "failed" else None)
    _say("\nReleases", "bold")
    for rel in history["releases"]:
        summary = rel["validation"] or {}
        _say(
            f"  #{rel['id']} {rel['commit'][:12]} {rel['status']:<9} {summary.get('errors', 0)} errors, "
            f"{summary.get('warnings', 0)} warnings  {rel['message'][:60]}"
        )
        for finding in rel["findings"][:20]:
            where = f"{finding['file']}:{finding['line']}" if finding["line"] else (finding["file"] or "")
            _say(f"      {finding['severity']:<7} {finding['rule']:<22} {where}  {finding['message']}")


@command(repos_app, "remove")
def repos_remove(
    name: str,
    keep_dags: Annotated[
        bool, typer.Option("--keep-dags", help="Leave the live DAGs in place as a plain folder.")
    ] = False,
):
    """Unregister a repository and remove its DAGs from Airflow (unless --keep-dags)."""
    _say(remove_repository(name, keep_dags=keep_dags))


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
    if bool(name) == all_:
        raise DagOpsError("give a repository name or --all (not both)")
    names = [r.name for r in list_repositories() if r.enabled] if all_ else [name]
    if via_airflow:
        _request_syncs(names, force=force, as_json=as_json)
        return
    outcomes = []
    for repo_name in names:
        with err.status(f"{repo_name}: starting") as spinner:  # progress goes to stderr, results to stdout
            outcome = sync_repository(
                repo_name,
                trigger="cli",
                force=force,
                progress=lambda step, n=repo_name: spinner.update(f"{n}: {step}…"),
            )
        outcomes.append(outcome)
        if not as_json:
            colour = "green" if outcome.status == "published" else ("red" if not outcome.ok else "cyan")
            _say(f"{outcome.status}: {outcome.message}", colour)
            for finding in outcome.findings:
                if finding["severity"] == "error":
                    where = f"{finding['file']}:{finding['line']}" if finding["line"] else finding["file"]
                    _say(f"    {where}: {finding['message']}")
    empty_trash()  # pruned release folders; done here, after the syncs, to keep publishes fast
    if as_json:
        _print_json([o.to_dict() for o in outcomes])
    if any(not o.ok for o in outcomes):
        raise typer.Exit(1)


def _request_syncs(names: list[str], *, force: bool, as_json: bool) -> None:
    """Queue one dagops_sync run per repository in Airflow (needs Airflow's metadata DB, like the API)."""
    actor = f"cli:{getpass.getuser()}"
    with contextlib.redirect_stdout(sys.stderr):  # Airflow logs to stdout; stdout is for results (--json)
        runs = [request_sync(repo_name, actor=actor, force=force, trigger="cli") for repo_name in names]
    if as_json:
        _print_json(runs)
        return
    for run in runs:
        _say(f"queued: {run['repository']} as Airflow run {run['airflow_run_id']} (sync {run['id']})", "cyan")


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
):
    """Run the validation pipeline on a folder, as dagops does before publishing. Exit 1 when there are errors.

    Needs no state DB and no running Airflow: use it in CI and pre-commit."""
    from airflow_dagops.validate import folder as validate_service

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
    data = repo_info.status()
    if as_json:
        _print_json(data)
        return
    _say(
        f"dagops home:  {data['dagops_home']}\nstate DB:     {data['state_db']}\n"
        f"dags folder:  {data['dags_folder']}\nrepositories: {len(data['repositories'])}"
    )
    sandbox = data["sandbox"]
    _say(f"sandbox:      {sandbox['detail']}", None if sandbox["available"] else "red")
    for repo in data["repositories"]:
        live = (repo["live_commit"] or "nothing live")[:12]
        flag = " (pinned)" if repo["pinned_release_id"] else ""
        _say(f"  {repo['name']:<24} {live:<12}{flag} last sync: {repo['last_sync_status'] or 'never'}")


def main() -> None:
    # Like `airflow connections ...`, this is a server-side process: connection lookups (GitHook) may
    # read Airflow's metadata DB, not only env vars and secrets backends (the Task SDK's view).
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    app()


if __name__ == "__main__":
    main()
