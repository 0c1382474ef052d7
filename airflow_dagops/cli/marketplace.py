"""`dagops marketplace ...`: find, install, rate and review shared DAG packages; manage the catalogs.

Thin over the use cases of airflow_dagops/marketplace/ (catalogs, listing, installs, updates, ratings,
publishing, checks): parse arguments, call one, render the result.
Review text and package fields are printed without rich markup, so a review cannot style the terminal.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from airflow_dagops.cli.common import JsonOption, command, err, out, print_json, print_rows, say
from airflow_dagops.marketplace.users import REVIEW_MAX

# Each command imports the use case it calls: the reads (search, list, info, catalogs list) need the state DB
# only, while installing, publishing and refreshing load git, YAML and the package schema.

app = typer.Typer(
    help="The DAG marketplace: search, install, rate and review shared DAG packages.", no_args_is_help=True
)
catalogs_app = typer.Typer(
    help="The catalogs (git repositories of packages) the marketplace reads.", no_args_is_help=True
)
app.add_typer(catalogs_app, name="catalogs")

PackageArgument = Annotated[str, typer.Argument(help="The package's name (see `dagops marketplace search`).")]
VersionOption = Annotated[str | None, typer.Option("--version", help="A released version (default: the newest).")]


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="marketplace")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a container: still say where it came from
        return "cli"


def _actor() -> str:
    return f"cli:{_user()}"


def _stars(rating: float | None, count: int) -> str:
    return f"{rating:.1f}★ ({count})" if rating is not None else "-"


def _badge(badge: dict) -> str:
    failed = [step for step, state in badge.get("checks", {}).items() if state == "failed"]
    return f"{badge['status']} ({', '.join(failed)})" if failed else badge["status"]


def _print_packages(results: list[dict], *, downloads: bool = False) -> None:
    # Every cell whole (never cut to '…'); the summary, and the downloads unless sorted by them, only where the
    # terminal has room.
    wide = out.width >= 120
    downloads = downloads or wide
    rows = []
    for r in results:
        name = f"{r['name']} [installed: {r['installed_namespace']}]" if r["installed_namespace"] else r["name"]
        cells = [name, r["version"], _stars(r["rating"], r["ratings_count"]), r["installs"]]
        cells += [r["downloads"]["downloads"]] if downloads else []
        rows.append([*cells, _badge(r["badge"]), r["catalog"], *([r["summary"]] if wide else [])])
    headers = ["package", "version", "rating", "installs", *(["downloads"] if downloads else []), "badge", "catalog"]
    print_rows([*headers, *(["summary"] if wide else [])], rows)


def _refreshed(catalog: dict) -> str:
    return (catalog["last_refreshed_at"] or "never")[:19].replace("T", " ")


def _update(installed: dict) -> str:
    return f"→ {installed['latest_version']}" if installed["update_available"] else "-"


# -- discover ------------------------------------------------------------------------------------------------
@command(app)
def search(
    query: Annotated[str, typer.Argument(help="Words to look for in names, tags, summaries, descriptions.")] = "",
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500, help="At most this many results.")] = 20,
    sort: Annotated[
        str, typer.Option(help="relevance, downloads (installs + updates), installs, rating or name.")
    ] = "relevance",
    as_json: JsonOption = False,
):
    """Ranked search (exact name first, then name prefix, tags, text; small typos are forgiven)."""
    from airflow_dagops.marketplace import listing  # lazy: CLI start-up (state DB only)

    results = listing.search(query, limit=limit, sort=sort)
    if as_json:
        print_json(results)
    elif not results:
        say(f"No package matches {query!r}. Refresh the catalogs with `dagops marketplace catalogs refresh`.")
    else:
        _print_packages(results, downloads=sort == "downloads")


@command(app, "list")
def list_packages(
    installed: Annotated[bool, typer.Option("--installed", help="Only the installed packages.")] = False,
    as_json: JsonOption = False,
):
    """Every package of the catalogs, or with --installed what is installed (and whether an update exists)."""
    from airflow_dagops.marketplace import listing  # lazy: CLI start-up (state DB only)

    if not installed:
        results = listing.search("", limit=500)
        if as_json:
            print_json(results)
        elif not results:
            say("No package in the catalogs. Add one with `dagops marketplace catalogs add NAME URL`, or refresh them.")
        else:
            _print_packages(results)
        return
    rows = listing.list_installed()  # None when an install lost its repository: installs.py records that
    if rows is None:
        from airflow_dagops.marketplace import installs  # lazy: CLI start-up (the registry, git)

        rows = installs.list_installed()
    if as_json:
        print_json(rows)
        return
    if not rows:
        say("No package is installed. Install one with `dagops marketplace install NAME`.")
        return
    print_rows(
        ["package", "version", "namespace", "repository", "status", "update"],
        [
            [r["package"], r["version"], r["namespace"], r["repository"], r["repository_status"], _update(r)]
            for r in rows
        ],
    )


@command(app)
def info(package: PackageArgument, as_json: JsonOption = False):
    """A package's details: versions, badge, providers, DAG files, README and reviews."""
    from airflow_dagops.marketplace import listing  # lazy: CLI start-up (state DB only)

    data = listing.package_info(package)
    if as_json:
        print_json(data)
        return
    say(f"{data['name']} {data['version']} ({data['catalog']}): {data['summary']}", "bold")
    say(f"author: {data['author'] or '-'}   license: {data['license'] or '-'}   tags: {', '.join(data['tags']) or '-'}")
    counts = data["downloads"]
    say(
        f"rating: {_stars(data['rating'], data['ratings_count'])}   installs: {data['installs']}   downloads: "
        f"{counts['downloads']} ({counts['installs']} installs, {counts['updates']} updates, "
        f"{counts['uninstalls']} uninstalls)"
    )
    say(f"badge: {_badge(data['badge'])} (checked {data['badge']['checked_at'] or 'never'})")
    say("versions: " + ", ".join(v["version"] + ("" if v["released"] else " (unreleased)") for v in data["versions"]))
    by_version = {v["version"]: v["downloads"] for v in data["downloads_by_version"]}
    say("downloads by version: " + ", ".join(f"{version} {count}" for version, count in by_version.items()))
    say(f"DAG files: {', '.join(data['dag_files'])}")
    say(f"providers: {', '.join(data['providers']) or '-'}")
    if data["missing_providers"] or data["missing_packages"]:
        say(f"missing here: {', '.join(data['missing_providers'] + data['missing_packages'])}", "yellow")
    for other in data["other_catalogs"]:
        say(f"also in catalog {other['catalog']} ({other['version']}), which has a lower priority")
    if data["installed_namespace"]:
        say(f"installed in namespace {data['installed_namespace']}", "green")
    if data["description"]:
        say("")
        say(data["description"].rstrip())
    say("")
    say(f"reviews ({len(data['reviews'])}):" if data["reviews"] else "no reviews yet")
    for r in data["reviews"]:
        say(f"  {r['author']} ({r['created_at'][:10]}): {r['text']}")


# -- install -------------------------------------------------------------------------------------------------
@command(app)
def install(
    package: PackageArgument,
    version: VersionOption = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Namespace (dags folder subfolder); default: the package name.")
    ] = None,
    sync: Annotated[bool, typer.Option(help="Validate and publish now (--no-sync: only register it).")] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Install even though providers or packages it needs are missing here.")
    ] = False,
    as_json: JsonOption = False,
):
    """Install a package as a pinned repository; the validation pipeline decides whether it goes live. A package
    whose providers or packages are missing here is refused (exit code 3) unless --force."""
    from airflow_dagops.marketplace import installs  # lazy: CLI start-up (git, validation)

    with err.status(f"installing {package}"):
        result = installs.install(package, version=version, namespace=namespace, actor=_actor(), sync=sync, force=force)
    if as_json:
        print_json(result)
    else:
        _print_outcome(result)
    if result["status"] == "blocked":
        raise typer.Exit(1)


def _print_outcome(result: dict) -> None:
    style = {"published": "green", "blocked": "red"}.get(result["status"])
    say(f"{result['package']} {result.get('version') or result.get('to_version')}: {result['status']}", style)
    say(result["message"])
    for finding in result.get("findings") or []:
        if finding["severity"] == "error":
            where = f"{finding['file']}:{finding['line']}" if finding.get("line") else finding.get("file") or ""
            say(f"  ✗ {where} {finding['rule']}: {finding['message']}")
    missing = (result.get("missing_providers") or []) + (result.get("missing_packages") or [])
    if missing:
        say(f"missing providers/packages: {', '.join(missing)}", "yellow")


@command(app)
def uninstall(package: PackageArgument, as_json: JsonOption = False):
    """Remove an installed package: its repository and its DAGs."""
    from airflow_dagops.marketplace import installs  # lazy: CLI start-up (git, deploy)

    message = installs.uninstall(package, actor=_actor())
    if as_json:
        print_json({"package": package, "uninstalled": True, "message": message})
        return
    say(message, "green")


@command(app)
def update(
    package: PackageArgument,
    version: VersionOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the structural diff; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before updating.")] = False,
    as_json: JsonOption = False,
):
    """Move an installed package to another released version (default: the newest), after showing the diff."""
    from airflow_dagops.marketplace import updates  # lazy: CLI start-up (git, validation)

    plan = updates.update(package, version=version, dry_run=True, actor=_actor())
    if dry_run or plan["status"] == "unchanged":
        print_json(plan) if as_json else _print_plan(plan)
        return
    if not as_json:
        _print_plan(plan)
        if not plan["passed"]:
            raise typer.Exit(1)
        if not yes and not typer.confirm(f"update {package} to {plan['to_version']}?"):
            raise typer.Exit(1)
    result = updates.update(package, version=plan["to_version"], actor=_actor())
    print_json(result) if as_json else _print_outcome(result)
    if result["status"] == "blocked":
        raise typer.Exit(1)


def _print_plan(plan: dict) -> None:
    say(plan["message"])
    for line in plan.get("diff_lines", []):
        say(f"  {line}")


# -- ratings, reviews, publish ---------------------------------------------------------------------------------
@command(app)
def rate(
    package: PackageArgument,
    stars: Annotated[str, typer.Argument(help="1 to 5.")],
    as_json: JsonOption = False,
):
    """Rate a package from 1 to 5 stars (rating again replaces your rating)."""
    from airflow_dagops.marketplace import ratings  # lazy: CLI start-up

    result = ratings.rate(package, stars, author=_user())
    if as_json:
        print_json(result)
        return
    say(f"rated {result['package']} {result['stars']}★; now {_stars(result['rating'], result['ratings_count'])}")


@command(app)
def review(
    package: PackageArgument,
    text: Annotated[str, typer.Argument(help=f"Plain text, at most {REVIEW_MAX} characters.")],
    as_json: JsonOption = False,
):
    """Review a package (plain text)."""
    from airflow_dagops.marketplace import ratings  # lazy: CLI start-up

    result = ratings.review(package, text, author=_user())
    if as_json:
        print_json(result)
        return
    say(f"review {result['id']} of {result['package']} saved")


@command(app)
def publish(
    path: Annotated[Path, typer.Argument(help="The package folder (with its dagops-package.yaml).")],
    catalog: Annotated[str, typer.Option("--catalog", help="The catalog to publish to.")],
    as_json: JsonOption = False,
):
    """Validate a package folder and push it to a new branch of the catalog repository (then open a PR)."""
    from airflow_dagops.marketplace import publishing  # lazy: CLI start-up (git, validation)

    with err.status(f"validating {path}"):
        result = publishing.publish(path, catalog=catalog, actor=_user())
    if as_json:
        print_json(result)
        return
    say(f"pushed branch {result['branch']} ({result['commit'][:12]})", "green")
    say(result["message"])


@command(app)
def check(
    packages: Annotated[list[str] | None, typer.Argument(help="Only these packages.")] = None,
    as_json: JsonOption = False,
):
    """Validate the catalogs' packages now and record their badges (what dagops_marketplace_check does)."""
    from airflow_dagops.marketplace import checks  # lazy: CLI start-up (git, validation)

    with err.status("validating packages"):
        results = checks.check_packages(packages or None)
    if as_json:
        print_json(results)
        return
    for r in results:
        say(
            f"{r['catalog']}/{r['package']} {r['version']}: {_badge(r)}", "green" if r["status"] == "passing" else "red"
        )


# -- catalogs --------------------------------------------------------------------------------------------------
@command(catalogs_app, "add")
def catalogs_add(
    name: Annotated[str, typer.Argument(help="A name for the catalog, e.g. community.")],
    url: Annotated[str, typer.Argument(help="The catalog's git URL.")],
    priority: Annotated[int, typer.Option(help="Lower wins when two catalogs have a package of one name.")] = 100,
    ref: Annotated[str, typer.Option("--ref", help="Branch of the catalog to read.")] = "main",
    conn_id: Annotated[str | None, typer.Option("--conn-id", help="Airflow connection (type git) for it.")] = None,
    verify: Annotated[bool, typer.Option(help="Reach the remote before registering.")] = True,
    refresh: Annotated[bool, typer.Option(help="Read its packages right away.")] = True,
    as_json: JsonOption = False,
):
    """Register a catalog (and read its packages)."""
    from airflow_dagops.marketplace import catalogs  # lazy: CLI start-up (git)

    added = catalogs.add_catalog(name, url, priority=priority, ref=ref, conn_id=conn_id, verify=verify)
    refreshed = catalogs.refresh_catalogs([name]) if refresh else []
    if as_json:
        print_json({**added, "refresh": refreshed})
        return
    say(f"catalog {added['name']} registered ({added['url']} @ {added['ref']}, priority {added['priority']})", "green")
    _print_refresh(refreshed)


@command(catalogs_app, "list")
def catalogs_list(as_json: JsonOption = False):
    """The catalogs, by priority."""
    from airflow_dagops.marketplace import listing  # lazy: CLI start-up (state DB only)

    rows = listing.list_catalogs()
    if as_json:
        print_json(rows)
        return
    if not rows:
        say("No catalog registered. Add one with `dagops marketplace catalogs add NAME URL`.")
        return
    print_rows(
        ["name", "priority", "url", "ref", "packages", "refreshed", "error"],
        [[r["name"], r["priority"], r["url"], r["ref"], r["packages"], _refreshed(r), r["last_error"]] for r in rows],
    )


@command(catalogs_app, "remove")
def catalogs_remove(name: Annotated[str, typer.Argument(help="The catalog's name.")], as_json: JsonOption = False):
    """Forget a catalog (installed packages stay installed)."""
    from airflow_dagops.marketplace import catalogs  # lazy: CLI start-up

    message = catalogs.remove_catalog(name)
    if as_json:
        print_json({"catalog": name, "removed": True, "message": message})
        return
    say(message, "green")


@command(catalogs_app, "refresh")
def catalogs_refresh(
    names: Annotated[list[str] | None, typer.Argument(help="Only these catalogs.")] = None,
    as_json: JsonOption = False,
):
    """Fetch the catalogs and re-read their packages."""
    from airflow_dagops.marketplace import catalogs  # lazy: CLI start-up (git)

    results = catalogs.refresh_catalogs(names or None)
    if as_json:
        print_json(results)
    else:
        _print_refresh(results)
    if any(r["status"] != "ok" for r in results):
        raise typer.Exit(1)


def _print_refresh(results: list[dict]) -> None:
    for r in results:
        say(r["message"], "green" if r["status"] == "ok" else "red")
        for problem in r.get("problems", []):
            say(f"  skipped: {problem}", "yellow")
