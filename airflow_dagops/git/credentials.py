"""Credentials come only from an Airflow Connection of type `git`, through the git provider's GitHook.

Because only Airflow's connection lookup is used, env-var connections and secrets backends (Vault, ...)
work unchanged. Nothing here logs or stores what the connection holds.

A connection's credentials go only to the host they were attached for. When a connection is attached to a
repository (added with a `conn_id`, or its `conn_id` set again, by someone allowed to choose connections)
the origin of the repository's URL at that moment (scheme, host and port: `url_origin`) is recorded with it
(`conn_origin` of the repository or marketplace catalog). Every git command that would carry credentials
asks `check_credential_host` first: the URL's origin must be one the connection is attached for, or the
connection's own `host` (set by whoever may edit the connection), or the attach step itself (`attaching`).
Otherwise nothing is sent and CredentialHostRefused says how to re-attach. So changing only where a
repository points never moves its credentials, whoever changed it and through whichever face (REST, page,
CLI, dagops.yaml, the DB itself).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import sys
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

from sqlalchemy import select

from airflow_dagops.airflow.connections import get_connection
from airflow_dagops.errors import CredentialHostRefused, DagOpsError
from airflow_dagops.safety import redact
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import MarketplaceCatalog, Repository

# GitHook publishes token helpers through os.environ, which threads share: two credentialed git calls
# at once would see each other's token. Credentialed calls therefore take turns within a process.
_hook_env_lock = threading.Lock()
# (conn_id, origin) pairs being attached right now, in this thread/context: see `attaching`.
_attaching: contextvars.ContextVar[frozenset[tuple[str, str]]] = contextvars.ContextVar(
    "dagops_attaching", default=frozenset()
)
_DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>\[[^\]/]+\]|[^@/:]+):")


__all__ = [  # CredentialHostRefused lives in errors.py; callers of check_credential_host catch it from here too
    "CredentialHostRefused",
    "attached_origin",
    "attached_origins",
    "attaching",
    "check_credential_host",
    "credential_host_allowed",
    "git_credentials_env",
    "url_origin",
]


def attached_origin(conn_id: str | None, url: str) -> str | None:
    """What a repository or catalog records when it is registered with a connection: the origin its credentials
    may go to (None without a connection)."""
    return url_origin(url) if conn_id else None


def url_origin(url: str) -> str:
    """`scheme://host:port` of a git URL, the unit credentials are attached to: lower-case host, the scheme's
    default port spelled out, no user, no path. `git@host:path` is `ssh://host:22`; local paths are `file://`."""
    url = (url or "").strip()
    if "://" not in url:
        if url.startswith("/"):
            return "file://"
        match = _SCP_LIKE.match(url)
        return f"ssh://{match.group('host').lower()}:22" if match else url.lower()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    scheme = "ssh" if scheme in ("git+ssh", "ssh+git") else scheme
    if scheme == "file":
        return "file://"
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is no number: git cannot use it either; keep it apart from every other
        return f"{scheme}://{parts.netloc.rpartition('@')[2].lower()}"
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


@contextlib.contextmanager
def attaching(conn_id: str | None, url: str) -> Iterator[None]:
    """Inside this block, git calls may use `conn_id` for `url`'s host: the caller is attaching the connection
    to that URL right now (adding a repository with it, setting its `conn_id` again, testing or rotating a
    connection it was allowed to choose) and records the origin when the check succeeds."""
    if not conn_id:
        yield
        return
    token = _attaching.set(_attaching.get() | {(conn_id, url_origin(url))})
    try:
        yield
    finally:
        _attaching.reset(token)


def attached_origins(conn_id: str) -> set[str]:
    """The origins `conn_id` is attached for: those recorded on the repositories and catalogs that use it."""
    with session_scope() as session:
        origins = set(session.scalars(select(Repository.conn_origin).where(Repository.conn_id == conn_id)))
        origins |= set(
            session.scalars(select(MarketplaceCatalog.conn_origin).where(MarketplaceCatalog.conn_id == conn_id))
        )
    return {origin for origin in origins if origin}


def credential_host_allowed(conn_id: str, url: str) -> bool:
    """True when `url`'s origin is being attached now, is attached, or is the connection's own host."""
    origin = url_origin(url)
    if (conn_id, origin) in _attaching.get() or origin in attached_origins(conn_id):
        return True
    return _connection_origin(conn_id) == origin


def check_credential_host(conn_id: str | None, url: str) -> None:
    """Raise CredentialHostRefused unless `conn_id`'s credentials may go to `url`'s host (module docstring)."""
    if not conn_id or credential_host_allowed(conn_id, url):
        return
    attached = sorted(attached_origins(conn_id))
    raise CredentialHostRefused(
        f"dagops did not send the credentials of Airflow connection {conn_id!r} to {url_origin(url)}: the "
        f"connection is attached for {', '.join(attached) or 'no host'}, and changing a repository's URL does not "
        "move its credentials. An admin allowed to choose connections re-attaches it to the new URL: "
        'PATCH /repositories/<name> with both "url" and "conn_id" (or dagops.yaml with both), or sets the '
        "connection's host to the new URL."
    )


def _connection_origin(conn_id: str) -> str | None:
    """The origin of the connection's own `host` (GitHook's "Repository URL"), when it holds a URL."""
    try:
        host = get_connection(conn_id).host
    except Exception:  # missing or unreadable: GitHook will say so; it allows no host here
        return None
    return url_origin(host) if host and ("://" in host or _SCP_LIKE.match(host)) else None


@contextlib.contextmanager
def git_credentials_env(conn_id: str | None, url: str) -> Iterator[dict[str, str]]:
    """Yield extra environment variables that let git authenticate to `url` with `conn_id`, once
    `check_credential_host` allowed `url`'s host for it.

    GitHook writes SSH keys to 0600 temp files and token helpers into temp dirs that it removes when
    the context ends, so the environment is only valid inside the `with` block.
    """
    if not conn_id:
        yield {}
        return
    check_credential_host(conn_id, url)  # before the connection is even read: nothing leaves for another host
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
    """The first line of an exception from GitHook or Airflow, redacted: later lines may quote extras."""
    return redact(str(err).splitlines()[0] if str(err) else "")
