"""`dagops bundle`: the dagops-releases DAG bundle (docs/deployment.md#choosing-a-publish-mode). Thin: one service
call, rendered."""

from __future__ import annotations

from typing import Annotated

import typer

from airflow_dagops.cli.common import JsonOption, command, print_json, say

app = typer.Typer(help="The dagops-releases DAG bundle: every DAG run pinned to its release.", no_args_is_help=True)


def register(parent: typer.Typer) -> None:
    """Add the `bundle` group to the top-level app."""
    parent.add_typer(app, name="bundle")


@app.callback()
def _group() -> None:
    """The dagops-releases DAG bundle: every DAG run pinned to its release."""


@command(app, "migrate")
def migrate(
    to: Annotated[str, typer.Option("--to", help="bundle (the versioned DAG bundle) or symlinks (the dags folder).")],
    as_json: JsonOption = False,
):
    """Move the live namespaces to the dagops-releases bundle, or back to the dags folder."""
    from airflow_dagops.bundle import migrate as migrate_service  # lazy: CLI start-up (Airflow's config)

    mode = to.strip().lower()
    done = migrate_service.migrate(mode)
    if as_json:
        print_json({"to": mode, "done": done})
        return
    for line in done:
        say(line)
