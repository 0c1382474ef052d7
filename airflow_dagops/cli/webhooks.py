"""`dagops webhooks`: how to point a Git host's webhook at dagops. Thin: one service call, rendered.

Where the Git host cannot be told from the repository's URL (a file:// repository, a host of unknown kind), it
still prints what does not depend on the host (the payload URL of each provider, the content type, the secret's
connection) and how to name the host (`--provider`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from airflow_dagops.cli import webhook_registration
from airflow_dagops.cli.common import JsonOption, command, print_json, say
from airflow_dagops.webhooks import PROVIDERS
from airflow_dagops.webhooks import setup as webhook_setup

app = typer.Typer(help="Webhooks from GitHub, GitLab, Gitea and Bitbucket (docs/webhooks.md).", no_args_is_help=True)

_CREATE_CONNECTION = (  # noqa: S105 - a command line to run, holding no secret
    'airflow connections add {conn_id} --conn-type generic --conn-password "$(python -c '
    "'import secrets; print(secrets.token_hex(32))')\""
)


def register(parent: typer.Typer) -> None:
    """Add the `webhooks` group to the top-level app."""
    parent.add_typer(app, name="webhooks")


@app.callback()
def _group() -> None:
    """Webhooks from GitHub, GitLab, Gitea and Bitbucket (docs/webhooks.md)."""
    # A callback keeps `show` a subcommand even while it is the only one.


webhook_registration.add_commands(app)  # register, unregister, check: through the Git host's API


@command(app, "show")
def show(
    name: Annotated[str, typer.Argument(help="Repository name.")],
    provider: Annotated[
        str | None, typer.Option(help="github, gitlab, gitea or bitbucket (default: guessed from the URL's host).")
    ] = None,
    as_json: JsonOption = False,
):
    """Print the webhook URL, content type, events to select and the secret's connection id (never the secret)."""
    info = webhook_setup.setup(name, provider=provider)
    if as_json:
        print_json(info)
        return
    for line in render(info):
        say(line)


def render(info: dict) -> list[str]:
    own = info["secret_scope"] == "repository"  # noqa: S105 - the word "repository", not a password
    scope = "this repository's own" if own else "the global"
    known = info["provider"] is not None
    lines = [f"Webhook for repository {info['repository']!r} ({info['provider'] or 'Git host unknown'})"]
    if known:
        lines.append(f"  Payload URL    {info['url']}")
    else:
        lines.append("  Payload URL    the one of the Git host that will send the webhooks:")
        lines += [f"                   {provider:<10} {url}" for provider, url in info["urls"].items()]
    lines += [
        f"  Content type   {info['content_type']}",
        f"  Secret         the password of Airflow connection {info['secret_conn_id']!r} ({scope} webhook secret)",
        f"  Events         {', '.join(info['events']) if known else 'pushes and pull (merge) requests'}",
    ]
    if info["status_conn_id"]:
        lines.append(f"  Check token    the password of connection {info['status_conn_id']!r} sets commit statuses")
    if not known:
        lines.append(f"Note: the Git host cannot be guessed: {info['unknown_host']}.")
        lines.append(
            f"  Name it to see its events and form: dagops webhooks show {info['repository']} "
            f"--provider {'|'.join(PROVIDERS)}"
        )
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
