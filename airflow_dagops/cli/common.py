"""What every `dagops` command group shares: output consoles, the error-to-exit-code wrapper, JSON output.

Kept apart from cli.py so command groups in their own modules (cli_credentials, cli_webhooks) can use it
without importing cli.py, which registers them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated

import typer
from rich.console import Console

from airflow_dagops.errors import DagOpsError
from airflow_dagops.redaction import redact_text

# Messages carry user text ("[dag_processor] ...", file names): no rich markup is read from them.
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def say(text: str, style: str | None = None, console: Console = out) -> None:
    console.print(text, style=style, markup=False, soft_wrap=True)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def command(group: typer.Typer, name: str | None = None):
    """Register a command whose DagOpsErrors end the process with a one-line reason and a non-zero code."""

    def decorate(func: Callable) -> Callable:
        @wraps(func)
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except DagOpsError as error:
                say(f"Error: {redact_text(str(error))}", "red", err)
                raise typer.Exit(error.exit_code) from None

        return group.command(name)(wrapper)

    return decorate


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
