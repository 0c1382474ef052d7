"""`dagops events`: the event feed in a shell, as JSON lines (one object per event, README.md and
docs/automation.md) or readable lines with `--text`; `--follow` keeps polling with the cursor.

Thin over store/reads.py's `list_events` (events/feed.py re-exports it for `GET .../api/v1/events` and MCP):
without the ORM, so on a SQLite state DB the command and every `--follow` poll load no SQLAlchemy.
Registered on the main app.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from airflow_dagops.cli.common import command, say
from airflow_dagops.errors import InvalidInput
from airflow_dagops.store import reads

PAGE = 500


def register(app: typer.Typer) -> None:
    """Add `dagops events` to the top-level app."""

    @command(app, "events")
    def show_events(
        repository: Annotated[str | None, typer.Option("--repository", "-r", help="Only this repository.")] = None,
        kind: Annotated[
            list[str] | None,
            typer.Option(
                "--kind", "-k", help=f"Only these kinds (repeat or comma-separate): {', '.join(reads.EVENT_KINDS)}."
            ),
        ] = None,
        since: Annotated[str | None, typer.Option(help="Only events at or after this ISO 8601 time.")] = None,
        cursor: Annotated[int | None, typer.Option(help="Only events after this event id.")] = None,
        follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep polling for new events.")] = False,
        interval: Annotated[float, typer.Option(help="Seconds between polls with --follow.")] = 5.0,
        max_polls: Annotated[int | None, typer.Option(hidden=True, help="Stop --follow after this many polls.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line (the default).")] = False,
        as_text: Annotated[bool, typer.Option("--text", help="Readable lines instead of JSON.")] = False,
        runs: Annotated[
            bool,
            typer.Option(
                "--runs", help="DAG run results instead: one JSON document per finished run (docs/assistants.md)."
            ),
        ] = False,
    ):
        """Print what dagops did (syncs, validations, publishes, rollbacks, promotions, proposals, DAG runs) as
        JSON lines, or --text."""
        if as_json and as_text:
            raise InvalidInput("give --json or --text, not both")
        as_json = not as_text
        kinds = [k for value in kind or [] for k in value.split(",")]
        reads.parse_time(since, "since")  # a bad time fails before anything is printed
        polls = 0
        while True:
            cursor = _print_runs(repository, cursor) if runs else _print_new(repository, kinds, since, cursor, as_json)
            polls += 1
            if not follow or (max_polls is not None and polls >= max_polls):
                return
            time.sleep(max(0.1, interval))


def _print_new(repository, kinds, since, cursor, as_json) -> int | None:
    """Print every event after `cursor`, page by page; returns the new cursor (the last id printed)."""
    while True:
        page = reads.list_events(repository=repository, kinds=kinds, since=since, after=cursor, limit=PAGE)
        for event in page["events"]:
            _print(event, as_json)
            cursor = event["id"]
        sys.stdout.flush()
        if page["next_cursor"] is None:
            return cursor


def _print_runs(repository, cursor) -> int | None:
    """Print the run document of every `dag_run` event after `cursor` as JSON lines; returns the new cursor. A
    failed run's task and log tail are read from Airflow with the `[dagops] airflow_api_conn_id` login."""
    from airflow_dagops.airflow.dag_runs_api import DagRunsApi  # lazy: CLI start-up (requests, connections)
    from airflow_dagops.assist import run_results  # lazy: CLI start-up

    def outcome_of(dag_id: str, run_id: str) -> dict:
        return DagRunsApi.for_caller(None).outcome(dag_id, run_id)

    while True:
        page = run_results.run_documents(repository=repository, after=cursor, limit=PAGE, outcome_of=outcome_of)
        for document in page["runs"]:
            sys.stdout.write(json.dumps(document, default=str) + "\n")
            cursor = document["event_id"]
        sys.stdout.flush()
        if page["next_cursor"] is None:
            return cursor


def _print(event: dict, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(event, default=str) + "\n")
        return
    when = event["created_at"][:19].replace("T", " ")
    say(f"#{event['id']} {when} {event['kind']} {event['outcome']}: {event['summary']}")
