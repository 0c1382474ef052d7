"""Run one git command against a remote, with the credentials of an Airflow connection.

Every command that talks to a remote (mirror fetches and ls-remote, catalog clones, proposal and package
pushes, access tests) goes through `run_remote`, so each gets the same four things: credentials only for
the host they are attached for (git/credentials.py), no prompt and allowed transports only (git/runner.py),
a timeout, and a classified, redacted error that says what to do (git/errors.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from airflow_dagops.errors import GitTimeout
from airflow_dagops.git.credentials import git_credentials_env
from airflow_dagops.git.errors import classify, reworded
from airflow_dagops.git.runner import git_env, run_git
from airflow_dagops.safety import display_url

# git options that take a value as the next argument, before the subcommand.
_OPTIONS_WITH_VALUE = ("-c", "-C")


def run_remote(
    args: Sequence[str],
    *,
    url: str,
    conn_id: str | None = None,
    cwd: Path | str | None = None,
    timeout: float | None = None,
    local: str = "the local repository",
    doing: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `git <args>` (which name `url` themselves) with `conn_id`'s credentials; raise the classified
    DagOpsError on failure. `doing` ("pushing branch x") starts the message of a failure; `local` names the
    repository git writes to, for errors about its lock files or disk. One attempt: callers that may retry
    (Mirror) decide that with `git.errors.is_transient`."""
    with git_credentials_env(conn_id, url) as credentials:
        try:
            result = run_git(args, cwd=cwd, env=git_env(credentials), timeout=timeout, check=False)
        except GitTimeout as err:
            raise GitTimeout(f"{display_url(url)}: {err}", details={"transient": True}) from err
    if result.returncode != 0:
        error = classify(subcommand(args), result.stderr, url=url, conn_id=conn_id, local=local)
        raise reworded(error, f"{doing}: {error}") if doing else error
    return result


def subcommand(args: Sequence[str]) -> str:
    """The git subcommand of `args` ("fetch" of `-c x=y -C dir fetch ...`), for messages and classification."""
    rest = list(args)
    while rest and rest[0] in _OPTIONS_WITH_VALUE:
        rest = rest[2:]
    return rest[0] if rest else "git"
