"""`dagops webhooks register|unregister|check`: dagops' webhook on GitHub, GitLab or Gitea, through the host's API with
the repository's connection token (webhooks/registration.py). Thin: one service call each, rendered. The secret is
never printed: answers say "secret: set".
"""

from __future__ import annotations

from typing import Annotated

import typer

from airflow_dagops.cli.common import JsonOption, command, print_json, say

ProviderOption = Annotated[
    str | None,
    typer.Option(help="github, gitlab or gitea (default: the connection's `provider` extra, else the URL's host)."),
]


def add_commands(group: typer.Typer) -> None:
    """Add `register`, `unregister` and `check` to the `dagops webhooks` group."""

    @command(group, "register")
    def register(
        name: Annotated[str, typer.Argument(help="Repository name.")],
        provider: ProviderOption = None,
        as_json: JsonOption = False,
    ):
        """Create dagops' webhook on the Git host, or update the one there: URL, secret, JSON, pushes, pull requests."""
        from airflow_dagops.webhooks import registration  # lazy: CLI start-up (HTTP client)

        answer = registration.register(name, provider=provider)
        if as_json:
            print_json(answer)
            return
        hook = answer["hook"]
        say(f"Webhook of {name!r} {answer['action']} on {answer['provider']} ({answer['project']}, hook {hook['id']})")
        say(f"  Payload URL    {answer['url']}")
        say(f"  Content type   application/{answer['content_type']}")
        say(f"  Events         {', '.join(answer['events'])}")
        say(f"  Secret         set (the password of Airflow connection {answer['secret_conn_id']!r})")
        for warning in answer["warnings"]:
            say(f"Warning: {warning}", "yellow")

    @command(group, "unregister")
    def unregister(
        name: Annotated[str, typer.Argument(help="Repository name.")],
        provider: ProviderOption = None,
        as_json: JsonOption = False,
    ):
        """Delete dagops' webhook (every hook with dagops' payload URL) from the Git host."""
        from airflow_dagops.webhooks import registration  # lazy: CLI start-up (HTTP client)

        answer = registration.unregister(name, provider=provider)
        if as_json:
            print_json(answer)
            return
        if answer["deleted"]:
            ids = ", ".join(str(each) for each in answer["deleted"])
            say(f"Deleted the webhook of {name!r} on {answer['provider']} ({answer['project']}, hook {ids})")
        else:
            say(f"No webhook of dagops on {answer['provider']} for {name!r} ({answer['url']}): nothing to delete")

    @command(group, "check")
    def check(
        name: Annotated[str, typer.Argument(help="Repository name.")],
        provider: ProviderOption = None,
        limit: Annotated[int, typer.Option(min=1, max=100, help="How many of the last deliveries to show.")] = 10,
        as_json: JsonOption = False,
    ):
        """Is dagops' webhook on the Git host, and what did its last deliveries get back?"""
        from airflow_dagops.webhooks import registration  # lazy: CLI start-up (HTTP client)

        answer = registration.check(name, provider=provider, limit=limit)
        if as_json:
            print_json(answer)
            return
        for line in render_check(answer):
            say(line)
        if not answer["registered"]:
            raise typer.Exit(1)


def render_check(answer: dict) -> list[str]:
    if not answer["registered"]:
        return [f"No webhook of dagops on {answer['provider']} for {answer['repository']!r}: {answer['url']}"]
    hook = answer["hook"]
    state = "active" if hook["active"] else "INACTIVE"
    lines = [
        f"Webhook of {answer['repository']!r} on {answer['provider']} ({answer['project']}): "
        f"hook {hook['id']}, {state}",
        f"  Payload URL    {hook['url']}",
        f"  Events         {', '.join(hook['events']) or '-'}",
    ]
    if not answer["deliveries_available"]:
        lines.append(f"  Deliveries     not available: {answer['unavailable_reason']}")
        return lines
    if not answer["deliveries"]:
        lines.append("  Deliveries     none yet")
        return lines
    lines.append("  Last deliveries (newest first):")
    for each in answer["deliveries"]:
        code = each["status_code"] if each["status_code"] is not None else "no answer"
        mark = "ok" if each["ok"] else "FAILED"
        again = " (redelivery)" if each["redelivery"] else ""
        lines.append(f"    {each['delivered_at'] or '-'}  {each['event'] or '-'}  {code} {mark}{again}")
    return lines
