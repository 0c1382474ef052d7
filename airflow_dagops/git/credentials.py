"""Credentials come only from an Airflow Connection of type `git`, through the git provider's GitHook.

Because only Airflow's connection lookup is used, env-var connections and secrets backends (Vault, ...)
work unchanged. Nothing here logs or stores what the connection holds.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

from airflow_dagops.errors import DagOpsError

# GitHook publishes token helpers through os.environ, which threads share: two credentialed git calls
# at once would see each other's token. Credentialed calls therefore take turns within a process.
_hook_env_lock = threading.Lock()


@contextlib.contextmanager
def git_credentials_env(conn_id: str | None, url: str) -> Iterator[dict[str, str]]:
    """Yield extra environment variables that let git authenticate to `url` with `conn_id`.

    GitHook writes SSH keys to 0600 temp files and token helpers into temp dirs that it removes when
    the context ends, so the environment is only valid inside the `with` block.
    """
    if not conn_id:
        yield {}
        return
    try:
        from airflow.providers.git.hooks.git import GitHook

        hook = GitHook(git_conn_id=conn_id, repo_url=url)
    except Exception as err:  # connection missing or malformed: say which and how to fix
        raise DagOpsError(
            f"cannot use Airflow connection {conn_id!r}: {type(err).__name__}: {_first_line(err)}. "
            "Create it with `airflow connections add` (type 'git') or fix its extras."
        ) from err
    with _hook_env_lock:
        before = dict(os.environ)
        with _hook_env(hook, conn_id):
            # GitHook puts token helpers into os.environ and SSH settings into hook.env; hand both to
            # the git subprocess explicitly instead of relying on the process environment.
            added = {k: v for k, v in os.environ.items() if before.get(k) != v}
            yield {**added, **hook.env}


@contextlib.contextmanager
def _hook_env(hook, conn_id: str) -> Iterator[None]:
    """GitHook's environment; its own failures (a bad `strict_host_key_checking` value, a GitHub App
    connection without PyGithub, ...) become one DagOpsError naming the connection, not a crash."""
    try:
        context = hook.configure_hook_env()
        context.__enter__()
    except Exception as err:
        raise DagOpsError(
            f"cannot use Airflow connection {conn_id!r}: {type(err).__name__}: {_first_line(err)}. "
            "Fix its extras (see docs/credentials.md)."
        ) from err
    try:
        yield
    except BaseException:
        if not context.__exit__(*sys.exc_info()):
            raise
    else:
        context.__exit__(None, None, None)


def _first_line(err: Exception) -> str:
    from airflow_dagops.safety import redact

    return redact(str(err).splitlines()[0] if str(err) else "")
