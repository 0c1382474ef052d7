"""`dagops versions / rollback / pin / unpin / deploy`: every release of a repository, and moving between them.

Top-level commands (registered on the main app by `register`), thin over releases/. `versions` reads the store
without the ORM (store/reads.py), `diff` through releases/diff.py; the commands that move releases import what
moves them.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from airflow_dagops.cli.common import JsonOption, command, err, print_json, say
from airflow_dagops.errors import InvalidInput, NotFound
from airflow_dagops.statuses import ReleaseStatus
from airflow_dagops.store import reads
from airflow_dagops.store.views import RepositoryInfo
from airflow_dagops.wording import plural

RepoArgument = Annotated[str, typer.Argument(help="The repository's name (see `dagops repos list`).")]


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-"


def _where(info: RepositoryInfo) -> str:
    pinned = (
        f"; pinned to release {info.pinned_release_id}: new commits are not followed until `dagops unpin {info.name}`"
        if info.pinned_release_id
        else ""
    )
    return f"{info.name}: release {info.live_release_id} ({_short(info.live_commit)}) is live{pinned}"


DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Only show the structural diff from the live release; change nothing.")
]


def _print_diff(result: dict, as_json: bool = False) -> None:
    if as_json:
        print_json(result)
        return
    from airflow_dagops.releases import diff as diff_module  # lazy: CLI start-up (the ORM)

    for line in diff_module.describe_release_diff(result):
        say(line)


def register(app: typer.Typer) -> None:
    """Add the version commands to the top-level `dagops` app."""

    @command(app)
    def versions(
        repository: RepoArgument,
        as_json: JsonOption = False,
        limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many releases and events.")] = 20,
    ):
        """Every release of a repository, newest first, and its deploy log."""
        releases, total = reads.list_releases(repository, limit=limit)
        log = reads.deploy_log(repository, limit)
        info = reads.get_repository(repository)  # live and pinned as every face shows them (store/views.py)
        if as_json:
            where = {"live_release_id": info.live_release_id, "pinned_release_id": info.pinned_release_id}
            print_json({"releases": releases, "total": total, "deploy_log": log, **where})
            return
        # Plain lines, not a table: a table folds commits and names at 80 columns.
        say(_where(info) if info.live_release_id else f"{repository}: nothing is live yet")
        say(f"{repository}: {len(releases)} of {plural(total, 'release')}, newest first")
        say(f"  {'id':>5}  {'commit':<8} {'status':<9} {'pin':<3} {'e/w':<6} {'date':<16}  {'author':<20} message")
        for r in releases:
            validation = r["validation"] or {}
            counts = f"{validation.get('errors', '-')}/{validation.get('warnings', '-')}"
            say(
                f"  {r['id']:>5}  {r['short_commit']:<8} {r['status']:<9} {'*' if r['pinned'] else '':<3} {counts:<6} "
                f"{(r['committed_at'] or '')[:16].replace('T', ' '):<16}  "
                f"{(r['author'] or '').split(' <')[0][:20]:<20} {r['message']}"  # the address is in --json
            )
        say("deploy log:" if log else "deploy log: nothing deployed yet")
        for e in log:
            moved = (
                f"{_short(e['from_commit'])} → {_short(e['to_commit'])}"
                if e["from_release_id"] != e["to_release_id"]
                else f"at {_short(e['to_commit'])}"
            )
            say(f"  {(e['at'] or '')[:19].replace('T', ' ')}  {e['reason']:<12} {moved:<29} by {e['actor']}")

    @command(app)
    def rollback(
        repository: RepoArgument,
        to: Annotated[
            str | None, typer.Option("--to", help="A release id or commit sha (default: the previous good release).")
        ] = None,
        pin: Annotated[
            bool,
            typer.Option("--pin", help="Stay on it: do not follow new commits (a pinned repository always stays)."),
        ] = False,
        dry_run: DryRunOption = False,
        as_json: JsonOption = False,
    ):
        """Put an earlier release that passed validation back live (re-exported if it was pruned)."""
        from airflow_dagops.releases import diff as diff_module  # lazy: CLI start-up (the ORM)
        from airflow_dagops.releases import rollback as rollbacks  # lazy: CLI start-up (git, the gate)

        if dry_run:
            result = diff_module.live_diff(repository, to, rollback=True)
            if as_json:
                print_json(result)
                return
            say(f"dry run: rollback of {repository} would change (nothing was changed):")
            _print_diff(result)
            if result["to"]["status"] == ReleaseStatus.FAILED:
                say(f"note: release {result['to']['id']} did not pass validation; rollback would refuse it")
            return
        info = rollbacks.rollback(repository, to, actor=_actor(), pin=pin)
        if as_json:
            print_json(info.to_dict())
            return
        say(f"rolled back: {_where(info)}", "green")
        if not info.pinned_release_id:  # a pinned repository stays pinned, to this release (releases/pins.py)
            say(f"not pinned: the next new commit on {info.ref} goes live again (use --pin to stay)")

    @command(app)
    def pin(
        repository: RepoArgument,
        version: Annotated[
            str | None, typer.Option("--version", help="A release id or commit sha (default: the live release).")
        ] = None,
        as_json: JsonOption = False,
    ):
        """Keep a release live (the live one, or roll back to --version): new commits are not followed."""
        from airflow_dagops.releases import rollback as rollbacks  # lazy: CLI start-up (git, the gate)

        info = rollbacks.pin(repository, version, actor=_actor())
        if as_json:
            print_json(info.to_dict())
            return
        say(f"pinned: {_where(info)}", "green")

    @command(app)
    def unpin(repository: RepoArgument, as_json: JsonOption = False):
        """Follow the tracked branch again from the next check."""
        from airflow_dagops.releases import rollback as rollbacks  # lazy: CLI start-up (git, the gate)

        info = rollbacks.unpin(repository, actor=_actor())
        if as_json:
            print_json(info.to_dict())
            return
        say(f"unpinned: {info.name} follows {info.ref} again from the next sync", "green")

    @command(app)
    def deploy(
        repository: RepoArgument,
        version: Annotated[str, typer.Option("--version", help="A commit sha (7+ hex digits) or a tag.")],
        dry_run: DryRunOption = False,
        as_json: JsonOption = False,
    ):
        """Validate one commit or tag and, if it passes, publish it and pin the repository to it."""
        from airflow_dagops.releases import diff as diff_module  # lazy: CLI start-up (the ORM)
        from airflow_dagops.releases import versions as versions_service  # lazy: CLI start-up (git, the gate)

        if dry_run:
            try:
                result = diff_module.live_diff(repository, version, rollback=False)
            except (InvalidInput, NotFound) as exc:
                raise InvalidInput(
                    f"{repository}: {version!r} has no release yet, so there is nothing to diff ({exc}); "
                    "run deploy to validate it first"
                ) from exc
            if as_json:
                print_json(result)
                return
            say(f"dry run: deploy of {repository} would change (nothing was changed):")
            _print_diff(result)
            if result["to"]["status"] == ReleaseStatus.FAILED:
                say(f"note: release {result['to']['id']} did not pass validation; deploy would refuse it")
            return
        with err.status(f"{repository}: deploying {version}") as spinner:
            info = versions_service.deploy_version(
                repository, version, actor=_actor(), progress=lambda step: spinner.update(f"{repository}: {step}…")
            )
        if as_json:
            print_json(info.to_dict())
            return
        say(f"deployed: {_where(info)}", "green")

    @command(app)
    def diff(
        repository: RepoArgument,
        from_release: Annotated[str, typer.Argument(metavar="FROM", help="A release id or commit sha.")],
        to_release: Annotated[str, typer.Argument(metavar="TO", help="A release id or commit sha.")],
        as_json: JsonOption = False,
    ):
        """What changed between two releases: DAGs and tasks added/removed, schedule, owners, retries, tags."""
        from airflow_dagops.releases import diff as diff_module  # lazy: CLI start-up (the ORM)

        _print_diff(diff_module.release_diff(repository, from_release, to_release), as_json)
