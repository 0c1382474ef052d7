"""`dagops`: the command line face. Thin: parse arguments, call one service, render the result."""

from __future__ import annotations

import contextlib
import functools
import getpass
import inspect
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from airflow_dagops import settings
from airflow_dagops.airflow import bridge as airflow_bridge
from airflow_dagops.airflow import install as setup_service
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
from airflow_dagops.redaction import install_log_redaction, redact_text
from airflow_dagops.repositories import info as repo_info
from airflow_dagops.repositories import options as repo_options
from airflow_dagops.repositories.info import get_repository, list_repositories, repository_history
from airflow_dagops.repositories.options import RepositoryOption
from airflow_dagops.repositories.registry import add_repository, remove_repository, update_repository
from airflow_dagops.safety import redact
from airflow_dagops.statuses import SyncOutcomeStatus
from airflow_dagops.store import db
from airflow_dagops.store.views import RepositoryInfo
from airflow_dagops.sync.runs import reconcile_sync_runs, request_sync
from airflow_dagops.sync.sense import empty_trash
from airflow_dagops.sync.sync import sync_repository
from airflow_dagops.validate import folder as validate_service
from airflow_dagops.validate.sandbox_host import describe_support

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

    # Whether DAG files can be validated here, and if not, what fixes it (docs/security.md).
    for line in [*setup_service.init(add_bundle=bundle), describe_support()]:
        warning = line.startswith("Validation sandbox: ") and ("UNAVAILABLE" in line or "DEGRADED" in line)
        _say(f"✗ {line}" if warning else f"✓ {line}", "red" if warning else None)


@command(db_app, "migrate")
def db_migrate():
    """Create or upgrade the dagops state DB schema."""

    revision = db.migrate()
    _say(f"dagops state DB at {redact(settings.sql_alchemy_conn())} is at revision {revision}")


# -- repository options as flags: one per option of repositories/options.py, derived from its description ----
def _option_help(option: RepositoryOption) -> str:
    """The description's help, then its text form; escaped, as typer reads rich markup ('[dagops] ...')."""
    return escape(f"{option.help} {option.text_hint}".strip())


def _flag_parameter(option: RepositoryOption, *, adding: bool) -> inspect.Parameter:
    """The typer parameter of one option. `repos add` starts from the option's default; `repos update` from
    None, which leaves the option as it is."""
    help_text = _option_help(option)
    if adding and option.argument:
        annotation = Annotated[str, typer.Argument(help=help_text, show_default=False)]
        return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)
    default = option.default if adding else None
    if option.kind is bool:
        declaration = typer.Option(f"{option.flag}/--no-{option.flag[2:]}", help=help_text)
        kind: Any = bool if adding else bool | None
    else:
        declaration = typer.Option(option.flag, help=help_text, metavar=option.metavar)
        kind = (list[str] if option.repeatable else str) if option.from_text else option.kind
        kind = kind if default is not None else kind | None
        default = None if option.from_text else default
    return inspect.Parameter(
        option.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, declaration]
    )


def _given_options(chosen: list[RepositoryOption], flags: dict) -> dict:
    """The options given on the command line (every one when adding), their text forms turned into values."""
    options = {}
    for option in chosen:
        value = flags.pop(option.name)
        if value is not None:
            options[option.name] = option.from_text(value) if option.from_text else value
    return options


def with_repository_options(*, adding: bool):
    """Give a command one flag per repository option (for `add`, the URL as its second argument, after the
    name); the command receives them as `options`. Typer reads the generated signature."""
    chosen = [option for option in repo_options.OPTIONS if adding or option.updatable]

    def decorate(func):
        own = [
            parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for parameter in inspect.signature(func, eval_str=True).parameters.values()
            if parameter.name != "options"
        ]
        parameters = [own[0], *(_flag_parameter(option, adding=adding) for option in chosen), *own[1:]]

        @functools.wraps(func)
        def wrapper(**flags):
            options = _given_options(chosen, flags)  # takes the options' flags out of `flags`
            return func(**flags, options=options)

        wrapper.__signature__ = inspect.Signature(parameters)
        wrapper.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        return wrapper

    return decorate


RepoName = Annotated[str, typer.Argument(help="Repository name: lower-case letters, digits, '-' or '_'.")]
VerifyOption = Annotated[
    bool, typer.Option(help="Check the remote, ref and credentials with git ls-remote first (new source only).")
]


@command(repos_app, "add")
@with_repository_options(adding=True)
def repos_add(name: RepoName, verify: VerifyOption = True, *, options: dict):
    """Register a repository. Run `dagops sync NAME` (or wait for dagops_sync) to publish it."""
    info = add_repository(name, verify=verify, **options)
    _say(
        f"Registered {info.name} ({info.url} @ {info.ref}) → namespace {info.namespace}. "
        f"Next: `dagops sync {info.name}`."
    )


@command(repos_app, "update")
@with_repository_options(adding=False)
def repos_update(name: RepoName, verify: VerifyOption = True, *, options: dict):
    """Change a repository's options: only the flags given change. '' clears a connection or the subdir,
    'none' the access control or promotion."""
    if not options:
        raise InvalidInput("nothing to change: give at least one option (see `dagops repos update --help`)")
    info = update_repository(name, verify=verify, **options)
    changed = ", ".join(f"{key} {repo_options.BY_NAME[key].text(getattr(info, key))}" for key in options)
    _say(f"Updated {info.name}: {changed}.")


def _reconcile(name: str | None = None) -> None:
    """Close sync runs whose Airflow run already ended, as the REST API does before it shows a status, so
    `repos list/show` and the API say the same."""
    reconcile_sync_runs(name, _airflow_run_states)


def _airflow_run_states(run_ids: list[str]) -> dict[str, str]:
    """Airflow's states of these dagops_sync runs; none, with a warning, where Airflow's metadata DB does not
    answer (the CLI on a machine without Airflow): then the stored status is shown."""
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Airflow logs to stdout; stdout is for results (--json)
            return airflow_bridge.sync_run_states(run_ids)
    except (ImportError, SQLAlchemyError) as error:
        reason = redact_text(str(error).splitlines()[0] if str(error) else type(error).__name__)
        _say(f"Warning: could not ask Airflow about running syncs ({reason}); statuses may be out of date", None, err)
        return {}


@command(repos_app, "list")
def repos_list(as_json: JsonOption = False):
    """List registered repositories with their status, live commit and last sync."""
    _reconcile()
    repos = list_repositories()
    if as_json:
        _print_json([r.to_dict() for r in repos])
        return
    if not repos:
        _say("No repositories registered. Add one with `dagops repos add NAME URL`.")
        return
    table = Table("name", "namespace", "url", "ref", "status", "live", "dag files", "last sync")
    for r in repos:
        live = (r.live_commit or "-")[:12]
        table.add_row(r.name, r.namespace, r.url, r.ref, _status_text(r), live, str(r.dag_files), _last_sync(r))
    out.print(table)


def _status_text(repo: RepositoryInfo) -> str:
    """The API's `status`, with its reason in words when there is one ('failed: Invalid credentials')."""
    return f"{repo.status}: {repo.status_message}" if repo.status_message else repo.status


def _setting_text(key: str, value) -> str:
    """One setting as `repos show` prints it; options in their text form (the one their flags take)."""
    option = repo_options.BY_NAME.get(key)
    if option is not None:
        return option.text(value)
    return "-" if value is None else str(value)


def _last_sync(repo: RepositoryInfo) -> str:
    if not repo.last_sync_status:
        return "never"
    text = f"{repo.last_sync_status} {(repo.last_sync_at or '')[:19].replace('T', ' ')}"
    return text


@command(repos_app, "show")
def repos_show(name: str, as_json: JsonOption = False):
    """Show one repository: settings, status, live release, recent syncs, releases and their findings."""
    _reconcile(name)
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
    _reconcile()
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
