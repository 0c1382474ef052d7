"""What every `dagops` command group shares: output streams, the error-to-exit-code wrapper, JSON output,
tables that stay readable at 80 columns, and the reconciliation of sync runs before a status is shown.

Kept apart from main.py so command groups in their own modules (credentials, webhooks, ...) can use it
without importing main.py, which registers them. Imports only what every command needs: a command's services
are imported inside it, so a read such as `dagops repos list` loads no more than it uses (README.md, "Command
line"; tests/cli/test_fast_reads.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from functools import wraps
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO

import typer

from airflow_dagops.errors import DagOpsError
from airflow_dagops.redaction import redact_text

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status
    from rich.table import Table

# What rich leaves out of printed text (bell, backspace, vertical tab, form feed, carriage return): plain output
# drops the same.
_CONTROL_CODES = dict.fromkeys((7, 8, 11, 12, 13))
# Environment variables that make rich colour a stream that is not a terminal.
_FORCED_TERMINAL = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


class Output:
    """stdout or stderr, for results and messages. A terminal gets rich's colours and spinners; a pipe, a file or a
    test gets the same text written plainly, which is what rich writes there (no colour shows), without importing
    rich: a read such as `dagops repos list | grep` starts faster (BENCHMARKS.md (j))."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def stream(self) -> TextIO:
        return sys.stderr if self._stderr else sys.stdout  # looked up each time: tests swap them

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            # Messages carry user text ("[dag_processor] ...", file names): no rich markup is read from them.
            self._console = Console(stderr=self._stderr, highlight=False)
        return self._console

    @property
    def plain(self) -> bool:
        """Whether no terminal reads this stream (and no setting asks rich to colour it anyway)."""
        if any(os.environ.get(name) for name in _FORCED_TERMINAL):
            return False
        isatty = getattr(self.stream, "isatty", None)
        return not (isatty and isatty())

    @property
    def width(self) -> int:
        """The columns rich lays out for: COLUMNS, else the terminal's width, else 80 (rich's own rule)."""
        if not self.plain:
            return self.console.width
        columns = os.environ.get("COLUMNS", "")
        return int(columns) if columns.isdigit() and int(columns) else _terminal_width()

    def line(self, text: str, style: str | None = None) -> None:
        if self.plain:
            self.stream.write(text.translate(_CONTROL_CODES).expandtabs(8) + "\n")
        else:
            self.console.print(text, style=style, markup=False, soft_wrap=True)

    def print(self, renderable: Any) -> None:
        """Something rich lays out (a table), at `width`."""
        self.console.print(renderable, width=self.width)

    def status(self, message: str) -> Status:
        """A spinner with a message (on a terminal; elsewhere rich shows nothing), `update`d as work goes on."""
        return self.console.status(message)


def _terminal_width() -> int:
    for descriptor in (0, 1, 2):  # as rich asks: the first standard stream that is a terminal
        try:
            return os.get_terminal_size(descriptor).columns or 80
        except (AttributeError, ValueError, OSError):
            continue
    return 80


out = Output(stderr=False)
err = Output(stderr=True)


def say(text: str, style: str | None = None, console: Output = out) -> None:
    console.line(text, style)


_MARKUP_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def escape_markup(text: str) -> str:
    """Text that typer shows through rich (help) with its '[...]' kept as written: rich.markup.escape's rule,
    without importing rich for a command that shows no help (tests/cli/test_readable_output.py compares them)."""
    text = _MARKUP_TAG.sub(lambda match: f"{match[1]}{match[1]}\\{match[2]}", text)
    return text + "\\" if text.endswith("\\") and not text.endswith("\\\\") else text


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


def table(headers: list[str], rows: list[list[Any]]) -> Table:
    """A table whose long cells fold onto more lines rather than being cut to '…' (see `print_rows` for when a
    table is too wide for the terminal, or for 80 columns without one). Cells are user text (a summary may hold
    '[...]'): printed as plain Text, never read as markup."""
    from rich import box
    from rich.table import Column, Table
    from rich.text import Text

    columns = [Column(header, overflow="fold") for header in headers]
    shown = Table(*columns, box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True, header_style="bold")
    for row in rows:
        shown.add_row(*(Text(_cell(cell)) for cell in row))
    return shown


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def table_width(headers: list[str], rows: list[list[Any]]) -> int:
    """The columns `table(headers, rows)` needs to show every cell whole: each column's widest cell, and one space
    of padding on either side of it (rich's layout, held to it by tests/cli/test_readable_output.py)."""
    widths = _plain_widths(headers, rows)
    if widths is None:  # wide, combining or control characters: rich measures them
        from rich.measure import Measurement

        console = out.console
        return Measurement.get(console, console.options.update_width(1_000_000), table(headers, rows)).maximum
    return sum(widths) + 2 * len(widths)


def _plain_widths(headers: list[str], rows: list[list[Any]]) -> list[int] | None:
    """Each column's width where every cell is one line of printable ASCII (a character is a column); else None."""
    cells = [headers, *([_cell(cell) for cell in row] for row in rows)]
    text = "".join("".join(row) for row in cells)
    if not text.isascii() or not text.isprintable():
        return None
    return [max(len(row[i]) for row in cells) for i in range(len(headers))]


def _plain_table(headers: list[str], rows: list[list[Any]], widths: list[int]) -> list[str]:
    """The lines rich prints for `table(headers, rows)` without a terminal, when every cell fits whole."""

    def line(cells: list[str]) -> str:
        return "".join(f" {cell:<{width}} " for cell, width in zip(cells, widths, strict=True))

    return [line(headers), "─" * (sum(widths) + 2 * len(widths)), *(line([_cell(c) for c in row]) for row in rows)]


def print_rows(headers: list[str], rows: list[list[Any]], narrow: Callable[[list], list[str]] | None = None) -> None:
    """Rows as a table where it fits the console's width whole; else, so no cell (a URL, a branch) is folded or
    cut, each row as lines: `narrow(row)`, or by default its first cell as a title and `header: value` lines.
    Rich assumes 80 columns without a terminal; COLUMNS overrides."""
    if table_width(headers, rows) <= out.width:
        widths = _plain_widths(headers, rows)
        if widths is not None and out.plain:  # what rich would print, without loading it
            for text in _plain_table(headers, rows, widths):
                out.line(text)
        else:
            out.print(table(headers, rows))
        return
    for row in rows:
        if narrow is not None:
            for text in narrow(row):
                say(text)
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
    `repos list/show`, `status` and the API say the same. Asks Airflow only when a run is still open, and loads
    the ORM only then: a plain query answers whether one is (store/reads.py)."""
    from airflow_dagops.store import reads  # lazy: CLI start-up (state DB)

    if not reads.has_open_sync_runs(name):
        return
    from airflow_dagops.sync.runs import reconcile_sync_runs as reconcile  # lazy: CLI start-up (the ORM)

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
