"""`dagops events`: the event feed in a shell, as lines or JSON lines; `--follow` keeps polling with the cursor.

Thin over airflow_dagops/events.py (the service `GET .../api/v1/events` calls too). Registered on the main app.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from airflow_dagops.cli.common import command, say
from airflow_dagops.events import feed as events

PAGE = 500


def register(app: typer.Typer) -> None:
    """Add `dagops events` to the top-level app."""

    @command(app, "events")
    def show_events(
        repository: Annotated[str | None, typer.Option("--repository", "-r", help="Only this repository.")] = None,
        kind: Annotated[
            list[str] | None,
            typer.Option(
                "--kind", "-k", help=f"Only these kinds (repeat or comma-separate): {', '.join(events.KINDS)}."
            ),
        ] = None,
        since: Annotated[str | None, typer.Option(help="Only events at or after this ISO 8601 time.")] = None,
        cursor: Annotated[int | None, typer.Option(help="Only events after this event id.")] = None,
        follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep polling for new events.")] = False,
        interval: Annotated[float, typer.Option(help="Seconds between polls with --follow.")] = 5.0,
        max_polls: Annotated[int | None, typer.Option(hidden=True, help="Stop --follow after this many polls.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    ):
        """Print what dagops did (syncs, validations, publishes, rollbacks, promotions, proposals, DAG runs)."""
        kinds = [k for value in kind or [] for k in value.split(",")]
        events.parse_time(since, "since")  # a bad time fails before anything is printed
        polls = 0
        while True:
            cursor = _print_new(repository, kinds, since, cursor, as_json)
            polls += 1
            if not follow or (max_polls is not None and polls >= max_polls):
                return
            time.sleep(max(0.1, interval))


def _print_new(repository, kinds, since, cursor, as_json) -> int | None:
    """Print every event after `cursor`, page by page; returns the new cursor (the last id printed)."""
    while True:
        page = events.list_events(repository=repository, kinds=kinds, since=since, after=cursor, limit=PAGE)
        for event in page["events"]:
            _print(event, as_json)
            cursor = event["id"]
        sys.stdout.flush()
        if page["next_cursor"] is None:
            return cursor


def _print(event: dict, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(event, default=str) + "\n")
        return
    when = event["created_at"][:19].replace("T", " ")
    say(f"#{event['id']:<6} {when} {event['kind']:<10} {event['outcome']:<10} {event['summary']}")
