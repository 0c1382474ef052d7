"""`dagops repos ...`: register, change, list, show and remove repositories; `apply`/`export` a dagops.yaml.

Thin over repositories/ (registry, info, declarative). Every repository option is a flag of `repos add` and
`repos update`, derived from its one description in repositories/options.py. The use cases are imported inside
the commands: `dagops repos list` reads the state DB without the ORM (store/reads.py) and loads nothing it does
not use.
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Annotated, Any

import typer

from airflow_dagops.cli import declarative as cli_declarative
from airflow_dagops.cli.common import (
    JsonOption,
    command,
    escape_markup,
    key_values,
    print_json,
    print_rows,
    reconcile_sync_runs,
    say,
)
from airflow_dagops.errors import InvalidInput
from airflow_dagops.repositories import options as repo_options
from airflow_dagops.repositories.options import RepositoryOption
from airflow_dagops.wording import plural

if TYPE_CHECKING:
    from airflow_dagops.store.views import RepositoryInfo

repos_app = typer.Typer(help="Register and inspect repositories.", no_args_is_help=True)


def register(parent: typer.Typer) -> None:
    """Add the `repos` group (with `apply` and `export`) to the top-level app."""
    parent.add_typer(repos_app, name="repos")


# -- repository options as flags: one per option of repositories/options.py, derived from its description ----
def _option_help(option: RepositoryOption) -> str:
    """The description's help, then its text form; escaped, as typer reads rich markup ('[dagops] ...')."""
    return escape_markup(f"{option.help} {option.text_hint}".strip())


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
def repos_add(name: RepoName, verify: VerifyOption = True, as_json: JsonOption = False, *, options: dict):
    """Register a repository. Run `dagops sync NAME` (or wait for dagops_sync) to publish it."""
    from airflow_dagops.repositories.registry import add_repository  # lazy: CLI start-up (git, validation)

    info = add_repository(name, verify=verify, **options)
    if as_json:
        print_json(info.to_dict())
        return
    say(
        f"Registered {info.name} ({info.url} @ {info.ref}) → namespace {info.namespace}. "
        f"Next: `dagops sync {info.name}`."
    )


@command(repos_app, "update")
@with_repository_options(adding=False)
def repos_update(name: RepoName, verify: VerifyOption = True, as_json: JsonOption = False, *, options: dict):
    """Change a repository's options: only the flags given change. '' clears a connection or the subdir,
    'none' the access control or promotion."""
    from airflow_dagops.repositories.registry import update_repository  # lazy: CLI start-up (git, validation)

    if not options:
        raise InvalidInput("nothing to change: give at least one option (see `dagops repos update --help`)")
    info = update_repository(name, verify=verify, **options)
    if as_json:
        print_json(info.to_dict())
        return
    changed = ", ".join(f"{key} {repo_options.BY_NAME[key].text(getattr(info, key))}" for key in options)
    say(f"Updated {info.name}: {changed}.")


@command(repos_app, "list")
def repos_list(as_json: JsonOption = False):
    """List registered repositories with their status, live commit and last sync."""
    from airflow_dagops.store.reads import list_repositories  # lazy: CLI start-up (state DB)

    reconcile_sync_runs()
    repos = list_repositories()
    if as_json:
        print_json([r.to_dict() for r in repos])
        return
    if not repos:
        say("No repositories registered. Add one with `dagops repos add NAME URL`.")
        return
    headers = ["name", "namespace", "url", "ref", "status", "live", "DAG files", "last sync"]
    print_rows(headers, [_row(r) for r in repos], narrow=_two_lines)


def _row(repo: RepositoryInfo) -> list:
    live = (repo.live_commit or "-")[:12]
    return [repo.name, repo.namespace, repo.url, repo.ref, status_text(repo), live, repo.dag_files, _last_sync(repo)]


def _two_lines(row: list) -> list[str]:
    """One repository where the table does not fit: what it is doing, then where it comes from."""
    name, namespace, url, ref, status, live, dag_files, last_sync = row
    live_text = "nothing live" if live == "-" else f"live {live}"
    return [
        f"{name}: {status}, {live_text}, {plural(dag_files, 'DAG file')}, last sync {last_sync}",
        f"  {url} @ {ref} → namespace {namespace}",
    ]


def status_text(repo: RepositoryInfo) -> str:
    """The API's `status`, with its reason in words when there is one ('failed: Invalid credentials')."""
    return f"{repo.status}: {repo.status_message}" if repo.status_message else repo.status


def _last_sync(repo: RepositoryInfo) -> str:
    if not repo.last_sync_status:
        return "never"
    return f"{repo.last_sync_status} {_when(repo.last_sync_at)}".strip()


def _when(iso: str | None) -> str:
    return (iso or "")[:19].replace("T", " ")


@command(repos_app, "show")
def repos_show(name: str, as_json: JsonOption = False):
    """Show one repository: settings, status, live release, recent syncs, releases and their findings."""
    from airflow_dagops.store.reads import get_repository, repository_history  # lazy: CLI start-up (state DB)

    reconcile_sync_runs(name)
    info = get_repository(name)
    history = repository_history(name)
    if as_json:
        print_json({**info.to_dict(), **history})
        return
    say(info.name, "bold")
    key_values(_settings(info))
    say("")
    key_values(_state(info))
    _print_sync_runs(history["sync_runs"])
    _print_releases(history["releases"])


def _settings(info: RepositoryInfo) -> list[tuple[str, str]]:
    """Every option in the text form its flag takes (what `repos update` would be given)."""
    return [(option.name, option.text(getattr(info, option.name))) for option in repo_options.OPTIONS]


def _state(info: RepositoryInfo) -> list[tuple[str, Any]]:
    live = "-"
    if info.live_commit:
        live = f"release {info.live_release_id}, {info.live_commit[:12]} {info.live_message or ''}".rstrip()
    return [
        ("status", status_text(info)),
        ("live", live),
        ("committed", f"{_when(info.live_committed_at)} by {info.live_author}" if info.live_author else "-"),
        ("pinned", f"release {info.pinned_release_id}" if info.pinned_release_id else "no"),
        ("DAG files", f"{info.dag_files} ({plural(info.dag_count, 'DAG')})"),
        ("last sync", _last_sync(info)),
        ("last error", info.last_sync_error),
    ]


def _print_sync_runs(runs: list[dict]) -> None:
    say("\nRecent syncs", "bold")
    if not runs:
        say("  none yet")
    for run in runs:
        commit = (run["commit"] or "")[:12]
        line = f"  #{run['id']} {_when(run['started_at'])} {run['trigger']:<8} {run['status']:<9} {commit}".rstrip()
        say(line + (f"  {run['error']}" if run["error"] else ""), "red" if run["status"] == "failed" else None)


def _print_releases(releases: list[dict]) -> None:
    say("\nReleases", "bold")
    if not releases:
        say("  none yet")
    for rel in releases:
        summary = rel["validation"] or {}
        counts = f"{plural(summary.get('errors', 0), 'error')}, {plural(summary.get('warnings', 0), 'warning')}"
        say(f"  #{rel['id']} {rel['commit'][:12]} {rel['status']:<9} {counts}  {rel['message']}".rstrip())
        for finding in rel["findings"][:20]:
            where = f"{finding['file']}:{finding['line']}" if finding["line"] else (finding["file"] or "")
            say(f"      {finding['severity']:<7} {finding['rule']:<22} {where}  {finding['message']}")
        if len(rel["findings"]) > 20:
            say(f"      and {plural(len(rel['findings']) - 20, 'more finding')} (see --json)")


@command(repos_app, "remove")
def repos_remove(
    name: str,
    keep_dags: Annotated[
        bool, typer.Option("--keep-dags", help="Leave the live DAGs in place as a plain folder.")
    ] = False,
    as_json: JsonOption = False,
):
    """Unregister a repository and remove its DAGs from Airflow (unless --keep-dags)."""
    from airflow_dagops.repositories.registry import remove_repository  # lazy: CLI start-up (deploy)

    message = remove_repository(name, keep_dags=keep_dags)
    if as_json:
        print_json({"repository": name, "removed": True, "dags_kept": keep_dags, "message": message})
        return
    say(message)


cli_declarative.register(repos_app)
