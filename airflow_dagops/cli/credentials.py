"""`dagops credentials ...`: test a repository's access, show its deploy key, rotate its key or token.

Thin: each command calls the credentials package and prints what happened. Secrets are read (a token from
stdin or a file), handed to the service, and never printed.
"""

from __future__ import annotations

import contextlib
import getpass
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from airflow_dagops.cli.common import JsonOption, command, err, fail
from airflow_dagops.cli.common import print_json as _print_json
from airflow_dagops.cli.common import say as _say
from airflow_dagops.credentials import access, common, deploy_keys, rotation
from airflow_dagops.errors import InvalidInput, NotFound, RotationFailed
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.safety import url_scheme

app = typer.Typer(
    help="Test and rotate repositories' credentials (Airflow connections of type git).", no_args_is_help=True
)


def register(parent: typer.Typer) -> None:
    """Add the `credentials` group to the top-level app."""
    parent.add_typer(app, name="credentials")


SSH = common.SSH_TRANSPORTS
ENTER_GRACE = 30.0  # seconds of polling after Enter: some Git hosts take a moment to apply a new deploy key
RETRY_HINT = "Run the rotation again and add the new key it prints; --wait SECONDS gives the Git host more time."


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in a container: still say where it came from
        return "cli"


def _verdict(result: access.AccessResult) -> None:
    where = f"{result.latency:.2f} s, connection {result.conn_id or '-'}"
    if result.ok:
        _say(
            f"✓ {result.repository}: access OK, {result.url} @ {result.ref} is {(result.commit or '')[:12]} ({where})",
            "green",
        )
        return
    _say(f"✗ {result.repository}: {result.kind.replace('_', ' ')} ({where}): {result.message}", "red")
    if result.hint:
        _say(f"  → {result.hint}")


@command(app, "test")
def test(
    name: Annotated[str, typer.Argument(help="Repository to check.")],
    conn_id: Annotated[
        str | None, typer.Option(help="Check this connection instead of the repository's own (before switching).")
    ] = None,
    as_json: JsonOption = False,
):
    """Check that the repository's connection can read its ref (git ls-remote). Exit 1 when it cannot."""
    result = access.test_access(name, conn_id=conn_id)
    if as_json:
        _print_json(result.to_dict())
    else:
        _verdict(result)
    if not result.ok:
        raise typer.Exit(1)


@command(app, "deploy-key")
def deploy_key(
    name: Annotated[str, typer.Argument(help="Repository whose public SSH key to print.")],
    as_json: JsonOption = False,
):
    """Print the public SSH key of the repository's connection (to add as a deploy key). Exit 1 if it has none."""
    conn_id, key = deploy_keys.deploy_key_info(name)
    if key is None:
        raise NotFound(f"{name!r} has no SSH key in its connection ({conn_id or 'none'})")
    if as_json:
        _print_json({"repository": name, "conn_id": conn_id, "public_key": key})
        return
    sys.stdout.write(key + "\n")


@command(app, "rotate")
def rotate(
    name: Annotated[str, typer.Argument(help="Repository whose credentials to rotate.")],
    token_file: Annotated[
        str | None,
        typer.Option(help="HTTPS repositories: a file holding the new token, or '-' to read it from stdin."),
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option(help="Seconds to keep checking access with the new credentials (instead of waiting for Enter)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before starting.")] = False,
    keep_old: Annotated[
        bool, typer.Option("--keep-old", help="Keep the old connection (e.g. when DAGs use it too).")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the outcome as JSON; the key to add, questions and progress go to stderr."),
    ] = False,
):
    """Rotate credentials without downtime (SSH: a new ed25519 deploy key; HTTPS: a new token).

    A new connection is made and verified before the repository switches to it; the old one is then deleted."""
    # With --json stdout holds the outcome alone: what a person reads or answers goes to stderr.
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        outcome = _rotate(name, token_file=token_file, wait=wait, yes=yes, keep_old=keep_old, as_json=as_json)
    if as_json:
        _print_json(outcome.to_dict())
        return
    if outcome.note:
        _say(f"! {outcome.note}", "yellow")
    _say(f"Done: {name} uses {outcome.conn_id}.", "green")


def _rotate(
    name: str, *, token_file: str | None, wait: float | None, yes: bool, keep_old: bool, as_json: bool
) -> rotation.RotationOutcome:
    token = _read_token(token_file) if token_file else None
    if token is None and _is_https(name):
        token = _prompt_token()
    what = "token" if token is not None else "SSH deploy key"
    if not yes and not typer.confirm(f"Rotate the {what} of {name!r}?", default=True):
        raise typer.Exit(1)

    def show_key(pending: rotation.PendingRotation) -> None:
        _say(f"\nAdd this public key as a deploy key with read access at {pending.host}:\n", "bold")
        sys.stdout.write((pending.public_key or "") + "\n\n")
        sys.stdout.flush()
        if wait is None:
            _wait_for_enter()

    try:
        return rotation.rotate(
            name,
            actor=_actor(),
            new_token=token,
            wait=wait if wait is not None else (ENTER_GRACE if token is None else 0.0),
            keep_old=keep_old,
            on_public_key=show_key,
            progress=lambda line: _say(f"✓ {line}" if not line.startswith("checking") else f"… {line}"),
        )
    except RotationFailed as failure:
        _rotation_failed(failure, as_json=as_json)
    except KeyboardInterrupt:
        cancelled = f"cancelled: {name!r} keeps its connection; the new one was deleted"
        if as_json:
            _print_json({"error": {"code": "cancelled", "message": cancelled, "details": {}}}, sys.stderr)
        else:
            _say(cancelled, "red", err)
        raise typer.Exit(130) from None


def _rotation_failed(failure: RotationFailed, *, as_json: bool) -> NoReturn:
    """Say why access failed with the new credentials and what to do, then exit 1."""
    if failure.access.kind == "authentication_failed" and failure.access.transport in SSH:
        hint: str | None = RETRY_HINT  # the printed key went with the deleted connection: adding it now won't help
    else:
        hint = failure.access.hint
    if as_json:
        failure.details = {**failure.details, "hint": hint}
        fail(failure, as_json=True)
    _say(f"✗ {failure}", "red", err)
    if hint:
        _say(f"  → {hint}", None, err)
    raise typer.Exit(1)


def _wait_for_enter() -> None:
    """Block until the person says the key is added. No terminal (EOF): go on and poll."""
    _say("Press Enter once the key is added (Ctrl-C cancels: the repository keeps its current key).")
    try:
        sys.stdin.readline()
    except (OSError, ValueError):
        pass


def _is_https(name: str) -> bool:

    return url_scheme(get_repository(name).url) in common.HTTP_TRANSPORTS


def _read_token(source: str) -> str:
    if source == "-":
        text = sys.stdin.readline()
    else:
        try:
            text = Path(source).read_text()
        except OSError as error:
            raise InvalidInput(f"cannot read the token file {source}: {error.strerror}") from error
    token = text.strip()
    if not token:
        raise InvalidInput("the new token is empty: give it on stdin (--token-file -) or in a file")
    return token


def _prompt_token() -> str:
    if not sys.stdin.isatty():
        raise InvalidInput(
            "an HTTPS repository's new token is read from --token-file FILE, or stdin with --token-file -"
        )
    return _read_token_text(typer.prompt("New token", hide_input=True))


def _read_token_text(text: str) -> str:
    token = text.strip()
    if not token:
        raise InvalidInput("the new token is empty")
    return token
