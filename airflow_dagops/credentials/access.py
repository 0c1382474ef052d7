"""Test a repository's access with its connection, and say in words what is wrong and what to do.

One `git ls-remote` of the repository's ref, through the same Mirror (and so the same credentials, timeouts
and classification in git/errors.py) a sync uses. Never raises for what the remote answers: a failed check
is an AccessResult whose `kind` (git.errors.KINDS) and `hint` say what to do. Results hold connection ids,
URLs without userinfo, public keys and git's redacted messages: never a private key, token or passphrase.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from airflow_dagops import paths, settings
from airflow_dagops.airflow.connections import find_connection, use_server_secrets_chain
from airflow_dagops.credentials.common import SSH_TRANSPORTS, RepoTarget, host_of, load_target
from airflow_dagops.credentials.deploy_keys import public_key_or_none
from airflow_dagops.errors import DagOpsError
from airflow_dagops.git.credentials import attaching
from airflow_dagops.git.errors import KINDS, kind_of, stderr_of, tail_of
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.repositories.registry import validate_conn_id
from airflow_dagops.safety import display_url, redact, url_scheme

log = logging.getLogger(__name__)

__all__ = ["KINDS", "AccessResult", "probe", "test_access"]

_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/=]{20,}")


@dataclass
class AccessResult:
    """The verdict of one `ls-remote` with a repository's connection. Holds no secret."""

    repository: str
    ok: bool
    kind: str  # one of KINDS
    message: str
    hint: str | None
    latency: float  # seconds the check took
    conn_id: str | None
    url: str  # without userinfo
    ref: str
    transport: str
    commit: str | None = None  # what the ref points at, when ok
    public_key: str | None = None  # the connection's public SSH key, if it has one

    def to_dict(self) -> dict:
        return asdict(self)


def test_access(name: str, *, conn_id: str | None = None, timeout: float | None = None) -> AccessResult:
    """`git ls-remote` of the repository's ref with its connection (or `conn_id`), told apart into KINDS.

    Never raises for what the remote answers: a failed check is a result with a hint on what to do.
    """
    repo = load_target(name)
    if conn_id and conn_id != repo.conn_id:
        # Testing another connection is choosing it for this URL (the REST face asks for the connection right):
        # its credentials may go to this host for the test, which attaches nothing.
        conn_id = validate_conn_id(conn_id)
        with attaching(conn_id, repo.url):
            return probe(repo, conn_id, timeout=timeout)
    return probe(repo, repo.conn_id, timeout=timeout)


test_access.__test__ = False  # type: ignore[attr-defined]  # pytest reads it: not a test, despite its name


def probe(repo: RepoTarget, conn_id: str | None, *, timeout: float | None = None) -> AccessResult:
    """One access test of `repo` with `conn_id` (which the caller may use for its URL): the verdict, in
    words, with every secret of the connection scrubbed from them."""
    use_server_secrets_chain()
    transport = url_scheme(repo.url)
    started = time.monotonic()
    commit, error = _ls_remote(repo, conn_id, timeout)
    latency = round(time.monotonic() - started, 3)
    connection = find_connection(conn_id) if conn_id else None
    public_key = public_key_or_none(connection) if transport in SSH_TRANSPORTS else None
    kind = "ok" if error is None else kind_of(error)
    if error is None:
        message = f"{display_url(repo.url)} answers; {repo.ref} is at {(commit or '')[:12]}"
    else:
        message = _message(kind, error, display_url(repo.url))
    hint = None if kind == "ok" else _hint(kind, _hint_context(repo, conn_id, transport, public_key))
    secrets = _secrets_of(connection)
    log.info("credentials test of %s with %s: %s (%.2f s)", repo.name, conn_id or "no connection", kind, latency)
    return AccessResult(
        repository=repo.name,
        ok=kind == "ok",
        kind=kind,
        message=_scrub(message, secrets),
        hint=_scrub(hint, secrets) if hint else None,
        latency=latency,
        conn_id=conn_id,
        url=display_url(repo.url),
        ref=repo.ref,
        transport=transport,
        commit=commit,
        public_key=public_key,
    )


def _ls_remote(repo: RepoTarget, conn_id: str | None, timeout: float | None) -> tuple[str | None, Exception | None]:
    """(commit, None) or (None, the error): the same ls-remote, credentials and classification a sync uses."""
    mirror = Mirror(path=paths.mirror_dir(repo.name), url=repo.url, conn_id=conn_id, timeout=timeout)
    try:
        return mirror.ls_remote(repo.ref)[1], None
    except DagOpsError as err:
        return None, err
    except Exception as err:  # GitHook failing while it prepares git's environment (a bad extra, a missing extra)
        first_line = (str(err).splitlines() or [""])[0]
        return None, DagOpsError(
            f"cannot use Airflow connection {conn_id!r}: {type(err).__name__}: {redact(first_line)}"
        )


def _message(kind: str, error: Exception, url: str) -> str:
    """What went wrong, from git's own words: ssh's reason, not git's generic trailer after it."""
    stderr = stderr_of(error)
    if not stderr or kind in ("ref_not_found", "timeout", "error"):
        return str(error)
    detail = tail_of(stderr, 2) if tail_of(stderr, 2) != "no error output" else str(error)
    fingerprint = _FINGERPRINT.search(stderr) if kind == "host_key_mismatch" else None
    if fingerprint:
        detail += f" (the server presents {fingerprint.group(0)})"
    return f"{kind.replace('_', ' ')} for {url}: {detail}"


def _hint_context(repo: RepoTarget, conn_id: str | None, transport: str, public_key: str | None) -> dict:
    """What the hints quote: where, with which connection, and the key to add."""
    return {
        "repository": repo.name,
        "conn_id": conn_id,
        "transport": transport,
        "host": host_of(repo.url),
        "url": display_url(repo.url),
        "ref": repo.ref,
        "public_key": public_key,
        "keyscan": _keyscan_command(repo.url),
    }


def _hint(kind: str, c: dict) -> str:
    """What to do, in one or two sentences, for each kind of failure."""
    ssh = c["transport"] in SSH_TRANSPORTS
    conn = f"connection {c['conn_id']!r}" if c["conn_id"] else "no connection"
    if kind == "authentication_failed":
        if not c["conn_id"]:
            return (
                "The repository is private: create an Airflow connection of type 'git' (an SSH key or a token) "
                f"and set it as the repository's conn_id, then run `dagops credentials test {c['repository']}`."
            )
        if ssh and c["public_key"]:
            return (
                f"Add this public key as a deploy key with read access at {c['host']} (repository settings → "
                f"Deploy keys): {c['public_key']} — or make a new pair with "
                f"`dagops credentials rotate {c['repository']}`."
            )
        if ssh:
            return (
                f"The {conn} has no usable SSH key: set `private_key` (inline) or `key_file` in its extra, "
                f"and add its public key as a deploy key with read access at {c['host']}."
            )
        return (
            f"The token in {conn} was refused by {c['host']}: it may be expired or revoked, or lack read access "
            "to this repository. Check the token's scopes (GitHub: Contents read, or 'repo' for a classic token; "
            "GitLab: read_repository) and its login, or rotate it with "
            f"`dagops credentials rotate {c['repository']} --token-file FILE`."
        )
    if kind == "repository_not_found":
        return (
            f"Check the path in {c['url']}. GitHub, GitLab and Gitea also answer 'not found' when the credentials "
            f"({conn}) cannot see a private repository: check that the key or token has access to it."
        )
    if kind == "host_unreachable":
        return (
            f"Check the host name and port in {c['url']}, DNS, and that a firewall or proxy lets the Airflow "
            "machines reach it (try `git ls-remote` from the api-server and a worker)."
        )
    if kind == "host_key_mismatch":
        return (
            f"The server's SSH host key is not the one the {conn} trusts. Verify the key's fingerprint with "
            f"{c['host']} (a changed key can mean an attack), then add it to the file named by the connection's "
            f"`known_hosts_file` extra (`{c['keyscan']} >> FILE`), or set `strict_host_key_checking` "
            "to 'accept-new' to trust a host on first use."
        )
    if kind == "ref_not_found":
        return f"{c['ref']!r} is not a branch or tag of {c['url']}: push it, or change the repository's ref."
    if kind == "timeout":
        return (
            f"{c['host']} did not answer within {settings.get_int('git_timeout')} s: check the network and proxy, "
            "or raise [dagops] git_timeout."
        )
    if kind == "key_unusable":
        return (
            f"ssh could not load the private key of {conn}: check that `private_key` (or the file in `key_file`) "
            "holds a whole OpenSSH or PEM private key, and `private_key_passphrase` if it is encrypted."
        )
    if kind == "connection_error":
        return (
            f"Create the {conn} (type 'git') with `airflow connections add`, an AIRFLOW_CONN_* variable or your "
            "secrets backend, or fix its extras (see docs/credentials.md)."
        )
    if kind == "host_not_attached":
        return (
            f"The URL {c['url']} is not on the host the {conn} was attached for, so its credentials were not sent. "
            "If the repository really moved there, an admin (Airflow's connection permission) sets its conn_id "
            "again together with the URL (PATCH with both, or dagops.yaml)."
        )
    if kind == "transport_not_allowed":
        return f"The {c['transport']!r} transport is not in [dagops] allowed_protocols; use https or ssh."
    return "Run the same `git ls-remote` by hand from an Airflow machine to see the whole error."


def _keyscan_command(url: str) -> str:
    try:
        port = urlsplit(url).port if "://" in url else None
    except ValueError:
        port = None
    return f"ssh-keyscan {f'-p {port} ' if port else ''}{host_of(url)}"


def _secrets_of(connection) -> list[str]:
    """Every piece of secret text the connection holds, to scrub from messages (defence in depth)."""
    if connection is None:
        return []
    extra = connection.extra_dejson
    secrets = [connection.password or "", extra.get("private_key_passphrase") or ""]
    key = extra.get("private_key") or ""
    secrets.append(key)
    secrets.extend(line.strip() for line in key.splitlines() if "-----" not in line)
    return sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
