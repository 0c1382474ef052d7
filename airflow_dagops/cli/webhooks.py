"""`dagops webhooks`: how to point a Git host's webhook at dagops. Thin: one service call, rendered."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from airflow_dagops.errors import DagOpsError
from airflow_dagops.safety import redact
from airflow_dagops.webhooks import service as webhook_service

app = typer.Typer(help="Webhooks from GitHub, GitLab, Gitea and Bitbucket (docs/webhooks.md).", no_args_is_help=True)

_CREATE_CONNECTION = (  # noqa: S105 - a command line to run, holding no secret
    'airflow connections add {conn_id} --conn-type generic --conn-password "$(python -c '
    "'import secrets; print(secrets.token_hex(32))')\""
)


@app.callback()
def _group() -> None:
    """Webhooks from GitHub, GitLab, Gitea and Bitbucket (docs/webhooks.md)."""
    # A callback keeps `show` a subcommand even while it is the only one.


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Repository name.")],
    provider: Annotated[
        str | None, typer.Option(help="github, gitlab, gitea or bitbucket (default: guessed from the URL's host).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Print the webhook URL, content type, events to select and the secret's connection id (never the secret)."""

    try:
        info = webhook_service.setup(name, provider=provider)
    except DagOpsError as error:
        typer.echo(f"Error: {redact(str(error))}", err=True)
        raise typer.Exit(error.exit_code) from None
    if as_json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return
    for line in render(info):
        typer.echo(line)


def render(info: dict) -> list[str]:
    own = info["secret_scope"] == "repository"  # noqa: S105 - the word "repository", not a password
    scope = "this repository's own" if own else "the global"
    lines = [
        f"Webhook for repository {info['repository']!r} ({info['provider']})",
        f"  Payload URL    {info['url']}",
        f"  Content type   {info['content_type']}",
        f"  Secret         the password of Airflow connection {info['secret_conn_id']!r} ({scope} webhook secret)",
        f"  Events         {', '.join(info['events'])}",
    ]
    if info["status_conn_id"]:
        lines.append(f"  Check token    the password of connection {info['status_conn_id']!r} sets commit statuses")
    if not info["base_url_configured"]:
        lines.append("Note: [api] base_url is not set; use the address your Git host can reach instead of localhost.")
    if not info["secret_exists"]:
        lines.append(f"Note: connection {info['secret_conn_id']!r} has no password yet; create it with:")
        lines.append("  " + _CREATE_CONNECTION.format(conn_id=info["secret_conn_id"]))
    if info["provider"] == "bitbucket":
        lines.append("Note: Bitbucket pushes sync; pull requests are not checked (GitHub, GitLab and Gitea are).")
    elif not info["status_conn_id"]:
        lines.append("Note: the repository has no connection, so pull-request checks cannot report a commit status.")
    return lines
