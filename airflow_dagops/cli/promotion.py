"""`dagops promote / promotion`: move a release through its repository's promotion stages, and see where it is.

Top-level commands (registered on the main app by `register`), thin over releases/promotion.py (moving releases)
and releases/promotion_status.py (where they stand, read without the ORM).
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from airflow_dagops.cli.common import JsonOption, command, print_json, say
from airflow_dagops.releases import promotion_status as standing
from airflow_dagops.statuses import PromotionStatus

RepoArgument = Annotated[str, typer.Argument(help="The repository's name (see `dagops repos list`).")]


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-"


def register(app: typer.Typer) -> None:
    """Add the promotion commands to the top-level `dagops` app."""

    @command(app)
    def promote(
        repository: RepoArgument,
        force: Annotated[
            bool, typer.Option("--force", help="Promote even though a DAG run failed in the current stage.")
        ] = False,
        as_json: JsonOption = False,
    ):
        """Move the release waiting in a promotion stage one stage on now (to prod from the last one)."""
        from airflow_dagops.releases import promotion  # lazy: CLI start-up (publishing, the ORM)

        result = promotion.promote(repository, actor=f"cli:{getpass.getuser()}", force=force)
        if as_json:
            print_json(result)
            return
        say(f"{repository}: {result['message']}", "green")

    @command(app, "promotion")
    def promotion_status(
        repository: RepoArgument,
        check: Annotated[
            bool,
            typer.Option("--check", help="Read the stage's DAG runs from Airflow's REST API now, then show."),
        ] = False,
        as_json: JsonOption = False,
    ):
        """Where a repository's releases stand in its promotion stages: live in each, soaking, blocked."""
        if check:
            from airflow_dagops.airflow.rest_client import AirflowApiRunSource  # lazy: CLI start-up (HTTP client)
            from airflow_dagops.releases import promotion  # lazy: CLI start-up (publishing, the ORM)

            promotion.check(AirflowApiRunSource.from_connection, [repository], actor=f"cli:{getpass.getuser()}")
        data = standing.status(repository)
        if as_json:
            print_json(data)
            return
        if not data["stages"]:
            say(f"{repository} has no promotion stages: new releases go live in prod directly")
            return
        say(f"{repository}: stages {' → '.join(s['stage'] for s in data['stages'])}, soak_runs {data['soak_runs']}")
        for stage in data["stages"]:
            suffix = f" (dag_ids end in {stage['dag_id_suffix']})" if stage["dag_id_suffix"] else ""
            live = f"release {stage['release_id']} ({_short(stage['commit'])})" if stage["release_id"] else "nothing"
            say(f"  {stage['stage']:<12} {stage['namespace']:<30} {live}{suffix}")
        current = data["current"]
        say(current["message"] if current else "nothing is waiting for promotion", "red" if _blocked(current) else None)
        for item in data["history"]:
            say(
                f"  #{item['id']:<4} release {item['release_id']} ({_short(item['commit'])}) {item['status']:<10} "
                f"{item['stage']:<12} {(item['updated_at'] or '')[:19].replace('T', ' ')}"
            )


def _blocked(current: dict | None) -> bool:
    return current is not None and current.get("status") == PromotionStatus.BLOCKED
