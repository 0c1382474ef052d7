"""What every `dagops` command group shares: output consoles, the error-to-exit-code wrapper, JSON output,
tables that stay readable at 80 columns, and the reconciliation of sync runs before a status is shown.

Kept apart from main.py so command groups in their own modules (credentials, webhooks, ...) can use it
without importing main.py, which registers them. Imports only what every command needs: a command's services
are imported inside it, so a read such as `dagops repos list` loads no more than it uses (README.md, "Command
line"; tests/cli/test_fast_reads.py).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Annotated, Any, NoReturn, TextIO

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

from airflow_dagops.errors import DagOpsError
from airflow_dagops.redaction import redact_text

# Messages carry user text ("[dag_processor] ...", file names): no rich markup is read from them.
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def say(text: str, style: str | None = None, console: Console = out) -> None:
    console.print(text, style=style, markup=False, soft_wrap=True)


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON; an error as a JSON object on stderr.")
]


def command(group: typer.Typer, name: str | None = None):
    """Register a command whose DagOpsErrors end the process with a one-line reason and the error's exit code;
    with `--json` (a parameter named `as_json`) the reason is the REST API's error envelope on stderr, so a
    script reads JSON from both streams."""

    def decorate(func: Callable) -> Callable:
        @wraps(func)
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except DagOpsError as error:
                fail(error, as_json=bool(kwargs.get("as_json")))

        return group.command(name)(wrapper)

    return decorate


def fail(error: DagOpsError, *, as_json: bool) -> NoReturn:
    """End the command: the error's message (redacted) on stderr, as text or as `{"error": {"code", "message",
    "details"}}` (api/errors.py's envelope), and its exit code (errors.py)."""
    message = redact_text(str(error))
    if as_json:
        print_json({"error": {"code": error.code, "message": message, "details": _redacted(error.details)}}, sys.stderr)
    else:
        say(f"Error: {message}", "red", err)
    raise typer.Exit(error.exit_code)


def _redacted(value: Any) -> Any:
    """Details hold no secret by contract (errors.py); what they quote of git or a URL is redacted all the same."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(item) for item in value]
    return value


def print_json(data, stream: TextIO | None = None) -> None:
    (stream or sys.stdout).write(json.dumps(data, indent=2, default=str) + "\n")


def table(*headers: str) -> Table:
    """A table whose long cells fold onto more lines rather than being cut to '…' (see `print_rows` for when a
    table is too wide for the terminal, or for 80 columns without one)."""
    columns = [Column(header, overflow="fold") for header in headers]
    return Table(*columns, box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True, header_style="bold")


def add_row(rows: Table, *cells: Any) -> None:
    """Cells are user text (a summary may hold '[...]'): printed as plain Text, never read as markup."""
    rows.add_row(*(Text("-" if cell is None else str(cell)) for cell in cells))


def print_rows(headers: list[str], rows: list[list[Any]], narrow: Callable[[list], list[str]] | None = None) -> None:
    """Rows as a table where it fits the console's width whole; else, so no cell (a URL, a branch) is folded or
    cut, each row as lines: `narrow(row)`, or by default its first cell as a title and `header: value` lines.
    Rich assumes 80 columns without a terminal; COLUMNS overrides."""
    shown = table(*headers)
    for row in rows:
        add_row(shown, *row)
    if Measurement.get(out, out.options.update_width(1_000_000), shown).maximum <= out.width:
        out.print(shown)
        return
    for row in rows:
        if narrow is not None:
            for line in narrow(row):
                say(line)
            continue
        say(str(row[0]), "bold")
        key_values(list(zip(headers[1:], row[1:], strict=True)), indent=2)


def key_values(pairs: Iterable[tuple[str, Any]], indent: int = 0) -> None:
    """`key: value` lines, the values aligned; a value that is a dict or list is laid out below its key."""
    pairs = list(pairs)
    width = max((len(key) for key, _ in pairs), default=0) + 1
    for key, value in pairs:
        if isinstance(value, dict) and value:
            say(f"{' ' * indent}{key}:")
            key_values(value.items(), indent + 2)
        elif isinstance(value, list) and value and any(isinstance(item, dict) for item in value):
            say(f"{' ' * indent}{key}:")
            for item in value:
                say(f"{' ' * (indent + 2)}- {_inline(item)}")
        else:
            say(f"{' ' * indent}{key + ':':<{width}} {_inline(value)}")


def _inline(value: Any) -> str:
    if value is None or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_inline(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key} {_inline(item)}" for key, item in value.items())
    return str(value)


def reconcile_sync_runs(name: str | None = None) -> None:
    """Close sync runs whose Airflow run already ended, as the REST API does before it shows a status, so
    `repos list/show`, `status` and the API say the same. Asks Airflow only when a run is still open."""
    from airflow_dagops.sync.runs import reconcile_sync_runs as reconcile  # lazy: CLI start-up (state DB)

    reconcile(name, _airflow_run_states)


def _airflow_run_states(run_ids: list[str]) -> dict[str, str]:
    """Airflow's states of these dagops_sync runs; none, with a warning, where Airflow's metadata DB does not
    answer (the CLI on a machine without Airflow): then the stored status is shown."""
    from sqlalchemy.exc import SQLAlchemyError

    from airflow_dagops.airflow import bridge as airflow_bridge  # lazy: CLI start-up; only with open runs

    try:
        with contextlib.redirect_stdout(sys.stderr):  # Airflow logs to stdout; stdout is for results (--json)
            return airflow_bridge.sync_run_states(run_ids)
    except (ImportError, SQLAlchemyError) as error:
        reason = redact_text(str(error).splitlines()[0] if str(error) else type(error).__name__)
        say(f"Warning: could not ask Airflow about running syncs ({reason}); statuses may be out of date", None, err)
        return {}
