"""`dagops mcp`: the MCP server over stdio, for an assistant on this machine (Claude Desktop, an IDE agent).

The assistant starts this command and speaks MCP on its stdin/stdout. It acts as the local user, with the rights
the `dagops` CLI has here (whoever can run `dagops` can run `dagops sync` or `dagops rollback` already): every
tool is allowed, and what it does is recorded as `mcp:<user>`. Airflow's REST API (trigger_dag, dag_run_status,
run logs) is reached with the `[dagops] airflow_api_conn_id` connection's login. To give an assistant a viewer's
rights instead, point it at the api-server's /dagops/mcp with that user's token (docs/assistants.md).
"""

from __future__ import annotations

import getpass
import logging
import os
import sys
from typing import Annotated, TextIO

import anyio
import typer
from mcp.server.stdio import stdio_server

from airflow_dagops.cli.common import command


def register(app: typer.Typer) -> None:
    """Add `dagops mcp` to the top-level app."""

    @command(app, "mcp")
    def serve_mcp(
        as_json: Annotated[
            bool,
            typer.Option(
                "--json", help="An error before the server starts as a JSON object on stderr (the protocol is JSON)."
            ),
        ] = False,
    ):
        """Serve the dagops MCP tools and resources over stdio, as the local user (docs/assistants.md)."""
        from airflow_dagops.mcp.server import build_server  # lazy: the MCP SDK and the services load only here
        from airflow_dagops.mcp.tools import Caller  # lazy: as above

        protocol = _protocol_stdout()
        caller = Caller(name=f"mcp:{getpass.getuser()}", airflow_token=None, allowed=lambda action: True)

        async def identify(_ctx) -> Caller:
            return caller

        server = build_server(identify)

        async def serve() -> None:
            async with stdio_server(stdout=anyio.wrap_file(protocol)) as (read, write):
                await server._mcp_server.run(read, write, server._mcp_server.create_initialization_options())

        anyio.run(serve)


def _protocol_stdout() -> TextIO:
    """Stdout carries the protocol alone. Airflow's logging (and any library, or a print) writes to file
    descriptor 1: the protocol keeps a duplicate of it, and descriptor 1 then goes to stderr."""
    sys.stdout.flush()
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", newline="\n", buffering=1)
    os.dup2(2, 1)
    for name in ("mcp", "httpx", "airflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return protocol
