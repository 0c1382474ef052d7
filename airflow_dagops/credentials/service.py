"""Credentials of a repository: test access, show the deploy key, rotate keys and tokens.

Every secret stays in an Airflow Connection (type `git`, read by GitHook), so env-var connections and
secrets backends such as Vault work unchanged. What leaves this module (results, errors, log lines) holds
connection ids, URLs without userinfo, public keys and git's redacted messages: never a private key,
token or passphrase. Keys touch disk only inside GitHook (a 0600 temp file removed after each command).

Rotation never leaves a repository without working credentials: the new secret goes into a NEW
connection, access is verified with it, and only then does the repository switch to it; on any failure
the repository keeps its old connection and the new one is deleted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import or_, select

from airflow_dagops import paths, settings
from airflow_dagops.errors import Conflict, DagOpsError, GitError, GitTimeout, InvalidInput, NotFound, RefNotFound
from airflow_dagops.git.credentials import CredentialHostRefused, attaching, check_credential_host
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.repositories.registry import update_repository, validate_conn_id
from airflow_dagops.safety import display_url, redact, url_scheme
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Repository

log = logging.getLogger(__name__)

KINDS = (
    "ok",
    "authentication_failed",
    "repository_not_found",
    "host_unreachable",
    "host_key_mismatch",
    "ref_not_found",
    "timeout",
    "key_unusable",
    "connection_error",
    "transport_not_allowed",
    "host_not_attached",
    "error",
)
SSH_TRANSPORTS = ("ssh", "git+ssh", "ssh+git")
HTTP_TRANSPORTS = ("https", "http")
# GitHook's extras that describe the SSH key; a rotated connection replaces all of them by `private_key`.
KEY_EXTRAS = ("private_key", "key_file", "private_key_passphrase")
PENDING_MARK = "dagops: pending credential rotation "
ROTATED_SUFFIX = re.compile(r"_rotated_\d{14}(_\d+)?$")
DEFAULT_POLL_INTERVAL = 0.5
_SCP_HOST = re.compile(r"^(?:[^@/:]+@)?(?P<host>[^/:]+):")

# git's generic lines after any transport failure: they hide the reason ssh gave just before them.
_GIT_TRAILER = (
    "could not read from remote repository",
    "please make sure you have the correct access rights",
    "and the repository exists",
)
_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/=]{20,}")
# Words of git, ssh and Git hosts, matched against git's whole stderr (lower-cased), most specific first.
_HOST_KEY_WORDS = (
    "host key verification failed",
    "remote host identification has changed",
    "host key for",
    "no matching host key type",
)
_KEY_WORDS = ('load key "', "invalid format", "error in libcrypto", "incorrect passphrase", "bad passphrase")
_UNREACHABLE_WORDS = (
    "could not resolve host",
    "could not resolve hostname",
    "name or service not known",
    "connection refused",
    "connection timed out",
    "operation timed out",
    "no route to host",
    "network is unreachable",
    "failed to connect",
    "connection closed by remote host",
    "connection reset by peer",
    "kex_exchange_identification",
)
_AUTH_WORDS = (
    "permission denied",
    "authentication failed",
    "could not read username",
    "could not read password",
    "invalid username or password",
    "http basic: access denied",
    "returned error: 401",
    "returned error: 403",
    "terminal prompts disabled",
    "access denied",
)
_NOT_FOUND_WORDS = (
    "does not appear to be a git repository",
    "not a git repository",
    "repository not found",
    "returned error: 404",
    "could not be found",
    "not found",
    "no such file or directory",
)


# -- values handed to faces ------------------------------------------------------------------------------
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


@dataclass
class PendingRotation:
    """A new connection waiting for its key to be authorized; `rotation_id` is its connection id."""

    repository: str
    rotation_id: str
    conn_id: str
    replaces: str
    kind: str  # "ssh_key" or "token"
    public_key: str | None
    host: str
    instructions: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RotationOutcome:
    repository: str
    status: str  # "switched" or "aborted"
    conn_id: str  # the connection the repository uses now
    new_conn_id: str
    old_conn_id: str
    old_conn_removed: bool = False
    note: str | None = None  # what is left for a person to do (an old connection that lives elsewhere)
    access: AccessResult | None = None
    public_key: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["access"] = self.access.to_dict() if self.access else None
        return data


class RotationFailed(GitError):
    """The new credentials never worked; the repository kept its old connection."""

    def __init__(self, message: str, *, access: AccessResult, rotation_id: str, pending_kept: bool):
        super().__init__(message, details={"access": access.to_dict(), "rotation_id": rotation_id})
        self.access, self.rotation_id, self.pending_kept = access, rotation_id, pending_kept


@dataclass(frozen=True)
class _Repo:
    name: str
    url: str
    ref: str
    conn_id: str | None


# -- test access -------------------------------------------------------------------------------------------
def test_access(name: str, *, conn_id: str | None = None, timeout: float | None = None) -> AccessResult:
    """`git ls-remote` of the repository's ref with its connection (or `conn_id`), told apart into KINDS.

    Never raises for what the remote answers: a failed check is a result with a hint on what to do.
    """
    repo = _load_repository(name)
    if conn_id and conn_id != repo.conn_id:
        # Testing another connection is choosing it for this URL (the REST face asks for the connection right):
        # its credentials may go to this host for the test, which attaches nothing.
        conn_id = validate_conn_id(conn_id)
        with attaching(conn_id, repo.url):
            return _probe(repo, conn_id, timeout=timeout)
    return _probe(repo, repo.conn_id, timeout=timeout)


test_access.__test__ = False  # not a pytest test, despite its name


def _probe(repo: _Repo, conn_id: str | None, *, timeout: float | None = None) -> AccessResult:
    _use_server_secrets_chain()
    transport = url_scheme(repo.url)
    probe = _Probe(path=paths.mirror_dir(repo.name), url=repo.url, conn_id=conn_id, timeout=timeout)
    started = time.monotonic()
    commit, error = None, None
    try:
        _full_ref, commit = probe.ls_remote(repo.ref)
    except DagOpsError as err:
        error = err
    except Exception as err:  # GitHook failing while it prepares git's environment (a bad extra, a missing extra)
        first_line = (str(err).splitlines() or [""])[0]
        error = DagOpsError(f"cannot use Airflow connection {conn_id!r}: {type(err).__name__}: {redact(first_line)}")
    latency = round(time.monotonic() - started, 3)
    connection = _lookup(conn_id) if conn_id else None
    public_key = _public_key_or_none(connection) if transport in SSH_TRANSPORTS else None
    if error is None:
        kind = "ok"
        message = f"{display_url(repo.url)} answers; {repo.ref} is at {commit[:12]}"
    else:
        kind = _kind_of(error, probe.stderr)
        message = _message(kind, error, probe.stderr, display_url(repo.url))
    context = {
        "repository": repo.name,
        "conn_id": conn_id,
        "transport": transport,
        "host": _host_of(repo.url),
        "url": display_url(repo.url),
        "ref": repo.ref,
        "public_key": public_key,
        "keyscan": _keyscan_command(repo.url),
    }
    hint = None if kind == "ok" else _hint(kind, context)
    secrets = _secrets_of(connection)
    result = AccessResult(
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
    log.info("credentials test of %s with %s: %s (%.2f s)", repo.name, conn_id or "no connection", kind, latency)
    return result


class _Probe(Mirror):
    """A Mirror that keeps git's whole (redacted) stderr: the sync's classification only reads its last
    lines, where git's generic "Could not read from remote repository" trailer hides ssh's real reason."""

    stderr = ""

    def _classify(self, command: str, stderr: bytes) -> GitError:
        self.stderr = redact(stderr.decode("utf-8", "replace"))
        return super()._classify(command, stderr)


def _kind_of(error: DagOpsError, stderr: str) -> str:
    if isinstance(error, CredentialHostRefused):
        return "host_not_attached"
    if isinstance(error, GitTimeout):
        return "timeout"
    if isinstance(error, RefNotFound):
        return "ref_not_found"
    if isinstance(error, InvalidInput) and "transport" in str(error):
        return "transport_not_allowed"
    if not stderr:
        # No git output: the connection could not be turned into credentials (missing, malformed).
        return "connection_error" if "connection" in str(error) else "error"
    text = stderr.lower()
    for kind, words in (
        ("host_key_mismatch", _HOST_KEY_WORDS),
        ("key_unusable", _KEY_WORDS),
        ("host_unreachable", _UNREACHABLE_WORDS),
        ("authentication_failed", _AUTH_WORDS),
        ("repository_not_found", _NOT_FOUND_WORDS),
    ):
        if any(word in text for word in words):
            return kind
    if "couldn't find remote ref" in text:
        return "ref_not_found"
    return "error"


def _message(kind: str, error: DagOpsError, stderr: str, url: str) -> str:
    """What went wrong, from git's own words: ssh's reason, not git's generic trailer after it."""
    if not stderr or kind in ("ref_not_found", "timeout", "error"):
        return str(error)
    lines = [
        line.strip()
        for line in stderr.splitlines()
        if line.strip()
        and not line.startswith("hint:")
        and not set(line.strip()) <= {"@"}
        and not any(word in line.lower() for word in _GIT_TRAILER)
    ]
    detail = " / ".join(lines[-2:]) or str(error)
    fingerprint = _FINGERPRINT.search(stderr) if kind == "host_key_mismatch" else None
    if fingerprint:
        detail += f" (the server presents {fingerprint.group(0)})"
    return f"{kind.replace('_', ' ')} for {url}: {detail}"


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


# -- deploy key --------------------------------------------------------------------------------------------
def deploy_key(name: str) -> str | None:
    """The public SSH key (OpenSSH one-liner) of the repository's connection; None when it holds no SSH key."""
    return deploy_key_info(name)[1]


def deploy_key_info(name: str) -> tuple[str | None, str | None]:
    """(conn_id, public key or None)."""
    repo = _load_repository(name)
    if not repo.conn_id:
        return None, None
    connection = _lookup(repo.conn_id)
    if connection is None:
        raise NotFound(f"the Airflow connection {repo.conn_id!r} of {name!r} does not exist (or cannot be read)")
    if _is_github_app(connection):
        return repo.conn_id, None  # its private_key signs GitHub App tokens: it is no deploy key
    return repo.conn_id, public_key_of(connection)


def public_key_of(connection) -> str | None:
    """Derive the public key from the connection's private key (inline or key_file); never returns the private part."""
    text = _key_text(connection)
    if not text:
        return None
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    passphrase = (connection.extra_dejson.get("private_key_passphrase") or "").encode() or None
    data = text.strip().encode() + b"\n"
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=passphrase)
        else:
            key = serialization.load_pem_private_key(data, password=passphrase)
    except UnsupportedAlgorithm as err:
        raise InvalidInput(
            f"the private key of connection {connection.conn_id!r} is a passphrase-protected OpenSSH key, "
            "which needs the `bcrypt` package to read: pip install bcrypt"
        ) from err
    except (ValueError, TypeError) as err:
        # cryptography's message may quote parts of the key: say what to check instead.
        raise InvalidInput(
            f"cannot read the private key of connection {connection.conn_id!r}: it is not an OpenSSH or PEM "
            "private key, or `private_key_passphrase` is wrong or missing"
        ) from err
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return public.decode()


def _public_key_or_none(connection) -> str | None:
    if connection is None or _is_github_app(connection):
        return None
    try:
        return public_key_of(connection)
    except DagOpsError:
        return None


def _key_text(connection) -> str | None:
    extra = connection.extra_dejson
    if extra.get("private_key"):
        return extra["private_key"]
    if extra.get("key_file"):
        try:
            return Path(extra["key_file"]).expanduser().read_text()
        except OSError as err:
            raise InvalidInput(
                f"cannot read the key_file of connection {connection.conn_id!r} ({extra['key_file']}): "
                f"{err.strerror}. The file must be readable on every Airflow machine."
            ) from err
    return None


def _is_github_app(connection) -> bool:
    extra = connection.extra_dejson
    return bool(extra.get("github_app_id") or extra.get("github_installation_id"))


# -- rotation ---------------------------------------------------------------------------------------------
def rotate(
    name: str,
    *,
    actor: str,
    new_token: str | None = None,
    wait: float = 0.0,
    keep_old: bool = False,
    on_public_key: Callable[[PendingRotation], None] | None = None,
    progress: Callable[[str], None] | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> RotationOutcome:
    """Rotate the repository's credentials in one go (the CLI's flow).

    SSH: a new ed25519 key pair goes into a new connection; `on_public_key` shows the public key to the
    person who adds it as a deploy key (and may block until they did); access is then polled for up to
    `wait` seconds. Token (`new_token`): a new connection with the new token is verified the same way.
    Either way the repository then switches to the new connection and the old one is deleted when dagops
    may (see `confirm_rotation`). On any failure or interruption the new connection is deleted and the
    repository keeps the old one.
    """
    progress = progress or (lambda _line: None)
    if new_token is not None:
        pending = start_token_rotation(name, new_token, actor=actor)
    else:
        pending = start_rotation(name, actor=actor)
    progress(f"created connection {pending.conn_id} (a copy of {pending.replaces} with the new {_what(pending)})")
    try:
        if on_public_key is not None and pending.public_key:
            on_public_key(pending)
        progress(f"checking access with {pending.conn_id}" + (f" (waiting up to {wait:.0f} s)" if wait else ""))
        return confirm_rotation(
            name,
            pending.rotation_id,
            actor=actor,
            wait=wait,
            keep_old=keep_old,
            abort_on_failure=True,
            poll_interval=poll_interval,
            progress=progress,
        )
    except BaseException:
        # Whatever happened (no access, Ctrl-C, a DB error), the repository must keep what works.
        _delete_unless_in_use(name, pending.conn_id)
        raise


def _what(pending: PendingRotation) -> str:
    return "SSH key" if pending.kind == "ssh_key" else "token"


def start_rotation(name: str, *, actor: str) -> PendingRotation:
    """Step 1 of an SSH key rotation: a new key pair in a new connection. Nothing changes for the
    repository yet; its public key must be added as a deploy key, then `confirm_rotation` switches."""
    repo, old = _rotatable(name)
    transport = url_scheme(repo.url)
    if transport in HTTP_TRANSPORTS:
        raise InvalidInput(
            f"{name!r} is fetched over {transport}, not SSH: rotate its token with "
            f"`dagops credentials rotate {name} --token-file FILE` (or `-` for stdin)"
        )
    if transport not in SSH_TRANSPORTS:
        raise InvalidInput(f"{name!r} is fetched over {transport}: only SSH keys and https tokens can be rotated")
    private, public = _new_key_pair(comment=f"dagops-{name}-{_now():%Y%m%d}")
    extra = {k: v for k, v in old.extra_dejson.items() if k not in KEY_EXTRAS}
    extra["private_key"] = private
    new_id = _create_pending(repo, old, actor=actor, extra=extra, password=old.password)
    host = _host_of(repo.url)
    return PendingRotation(
        repository=name,
        rotation_id=new_id,
        conn_id=new_id,
        replaces=old.conn_id,
        kind="ssh_key",
        public_key=public,
        host=host,
        instructions=(
            f"Add this public key as a deploy key with read access at {host} (repository settings → Deploy keys), "
            "then confirm the rotation: dagops verifies access with the new key before switching."
        ),
    )


def start_token_rotation(name: str, token: str, *, actor: str) -> PendingRotation:
    """Step 1 of a token rotation: a copy of the connection holding the new token."""
    repo, old = _rotatable(name)
    token = (token or "").strip()
    if not token:
        raise InvalidInput("the new token is empty: give it on stdin or in the --token-file")
    transport = url_scheme(repo.url)
    if transport in SSH_TRANSPORTS:
        raise InvalidInput(
            f"{name!r} is fetched over SSH: tokens are for https; rotate its SSH key with "
            f"`dagops credentials rotate {name}` (no --token-file)"
        )
    if transport not in HTTP_TRANSPORTS:
        raise InvalidInput(f"{name!r} is fetched over {transport}: only SSH keys and https tokens can be rotated")
    new_id = _create_pending(repo, old, actor=actor, extra=dict(old.extra_dejson), password=token)
    return PendingRotation(
        repository=name,
        rotation_id=new_id,
        conn_id=new_id,
        replaces=old.conn_id,
        kind="token",
        public_key=None,
        host=_host_of(repo.url),
        instructions="Confirm the rotation: dagops verifies access with the new token before switching.",
    )


def confirm_rotation(
    name: str,
    rotation_id: str,
    *,
    actor: str,
    wait: float = 0.0,
    keep_old: bool = False,
    abort_on_failure: bool = False,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    progress: Callable[[str], None] | None = None,
) -> RotationOutcome:
    """Step 2: verify access with the pending connection (polling up to `wait` seconds), then switch the
    repository to it and delete the old connection when it lives in the metadata DB and no other
    repository uses it. If access never works: RotationFailed, and the repository keeps its connection
    (the pending one is kept for another try, or deleted with `abort_on_failure`)."""
    progress = progress or (lambda _line: None)
    marker = _pending_marker(rotation_id)
    if marker is None or marker.get("repository") != name:
        raise NotFound(f"no pending credential rotation {rotation_id!r} for repository {name!r}; start one first")
    repo = _load_repository(name)
    old_id = marker["replaces"]
    if repo.conn_id != old_id:
        _delete_pending_quietly(rotation_id)
        raise Conflict(
            f"the connection of {name!r} changed to {repo.conn_id!r} since this rotation started (it replaced "
            f"{old_id!r}); the rotation was cancelled: start a new one"
        )
    # The pending connection is a copy of the old one: it may go where the old one is attached, nowhere else.
    check_credential_host(old_id, repo.url)
    with attaching(rotation_id, repo.url):
        access = _wait_for_access(repo, rotation_id, wait=wait, poll_interval=poll_interval)
    if not access.ok:
        if abort_on_failure:
            _delete_pending_quietly(rotation_id)
        kept = "the new connection was deleted" if abort_on_failure else f"{rotation_id!r} is kept for another try"
        raise RotationFailed(
            f"the new credentials do not work ({access.kind.replace('_', ' ')}): {access.message.rstrip('.')}. "
            f"{name!r} keeps its connection {old_id!r}; {kept}.",
            access=access,
            rotation_id=rotation_id,
            pending_kept=not abort_on_failure,
        )
    progress(f"access verified with {rotation_id} ({access.latency:.2f} s)")
    try:
        update_repository(name, conn_id=rotation_id, verify=False)  # verified just above
    except BaseException:
        _delete_unless_in_use(name, rotation_id)
        raise
    _finish_pending(rotation_id, marker, actor=actor)
    log.info("%s rotated the credentials of %s: %s replaces %s", actor, name, rotation_id, old_id)
    progress(f"{name} now uses {rotation_id}")
    removed, note = _retire_old(old_id, name, keep_old=keep_old)
    if removed:
        progress(f"removed the old connection {old_id}")
    return RotationOutcome(
        repository=name,
        status="switched",
        conn_id=rotation_id,
        new_conn_id=rotation_id,
        old_conn_id=old_id,
        old_conn_removed=removed,
        note=note,
        access=access,
        public_key=access.public_key,
    )


def abort_rotation(name: str, rotation_id: str) -> RotationOutcome:
    """Give up a pending rotation: its connection is deleted; the repository never used it."""
    marker = _pending_marker(rotation_id)
    if marker is None or marker.get("repository") != name:
        raise NotFound(f"no pending credential rotation {rotation_id!r} for repository {name!r}")
    _delete_connection(rotation_id)
    repo = _load_repository(name)
    return RotationOutcome(
        repository=name,
        status="aborted",
        conn_id=repo.conn_id or "",
        new_conn_id=rotation_id,
        old_conn_id=marker["replaces"],
        note=f"the pending connection {rotation_id!r} was deleted; {name!r} keeps {repo.conn_id!r}",
    )


def _wait_for_access(repo: _Repo, conn_id: str, *, wait: float, poll_interval: float) -> AccessResult:
    """Poll until the new credentials work: a deploy key added on a Git host may take a moment to apply."""
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        result = _probe(repo, conn_id)
        if result.ok or time.monotonic() + poll_interval > deadline:
            return result
        time.sleep(poll_interval)


def _rotatable(name: str):
    repo = _load_repository(name)
    if not repo.conn_id:
        raise Conflict(
            f"{name!r} uses no Airflow connection, so there is nothing to rotate: create a connection of type "
            "'git' and set it as the repository's conn_id (see docs/credentials.md)"
        )
    check_credential_host(repo.conn_id, repo.url)  # a copy of credentials that may not go there would not either
    old = _lookup(repo.conn_id)
    if old is None:
        raise NotFound(f"the Airflow connection {repo.conn_id!r} of {name!r} does not exist (or cannot be read)")
    if _is_github_app(old):
        raise InvalidInput(
            f"connection {repo.conn_id!r} authenticates as a GitHub App, which mints its own short-lived tokens: "
            "rotate the App's private key in GitHub's App settings and update the connection's private_key"
        )
    return repo, old


def create_connection(
    conn_id: str,
    *,
    kind: str,
    actor: str,
    host: str | None = None,
    login: str | None = None,
    token: str | None = None,
    description: str | None = None,
) -> dict:
    """Create an Airflow connection of type git in the metadata DB (what `airflow connections add` does):
    `kind="token"` stores the given token as its password; `kind="ssh_key"` generates an ed25519 key pair
    and keeps the private key in the connection. Answers the id and, for a key, the public half only."""
    from airflow.models.connection import Connection

    conn_id = validate_conn_id(conn_id)
    if not conn_id:
        raise InvalidInput("a connection id is required")
    if kind == "token" and not token:
        raise InvalidInput("a token connection needs the token (it is stored in the connection's password)")
    if kind not in ("token", "ssh_key"):
        raise InvalidInput(f"unknown kind {kind!r}; one of token, ssh_key")
    public_key = None
    extra: dict = {}
    if kind == "ssh_key":
        private, public_key = _new_key_pair(comment=f"dagops:{conn_id}")
        extra = {"private_key": private}
    _use_server_secrets_chain()
    if origin_of(conn_id) != "missing":
        raise Conflict(f"a connection named {conn_id!r} already exists; pick another id or use it as it is")
    with _airflow_session("create the connection") as session:
        session.add(
            Connection(
                conn_id=conn_id,
                conn_type="git",
                host=host or None,
                login=login or None,
                password=token if kind == "token" else None,
                extra=json.dumps(extra) if extra else None,
                description=description or f"created by {actor} through dagops",
            )
        )
    log.info("%s created git connection %s (%s)", actor, conn_id, kind)
    return {"conn_id": conn_id, "conn_type": "git", "kind": kind, "public_key": public_key}


def _new_key_pair(*, comment: str) -> tuple[str, str]:
    """An ed25519 key pair in OpenSSH formats: (private key text, "ssh-ed25519 AAAA... comment")."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, f"{public.decode()} {comment}"


# -- Airflow connections ----------------------------------------------------------------------------------
def _use_server_secrets_chain() -> None:
    """Let GitHook see connections of the metadata DB, as `airflow connections ...` and the api-server do.

    Outside a task, Airflow's Task SDK looks connections up in env vars and custom secrets backends only,
    unless the process declares itself a server (`_AIRFLOW_PROCESS_CONTEXT=server`, set by the api-server
    and the scheduler). The dagops CLI and API have the metadata DB, so they may; inside a task (the
    supervisor's comms are set) nothing changes.
    """
    import sys

    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    if getattr(runner, "SUPERVISOR_COMMS", None) is None:
        os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")


def _lookup(conn_id: str):
    """The connection from wherever Airflow keeps it (secrets backend, env var, metadata DB), or None."""
    try:
        from airflow.models.connection import Connection

        return Connection.get_connection_from_secrets(conn_id)
    except Exception as err:  # not found, or a backend that cannot be reached: the caller says what to do
        log.debug("connection %s cannot be read: %s", conn_id, type(err).__name__)
        return None


def origin_of(conn_id: str) -> str:
    """Where Airflow finds the connection first: 'metadata_db', 'environment', 'secrets backend <Class>' or
    'missing'. Only a connection found in the metadata DB can be written or deleted by dagops."""
    from airflow.configuration import ensure_secrets_loaded

    for backend in ensure_secrets_loaded():
        try:
            found = backend.get_connection(conn_id=conn_id)
        except Exception as err:  # an unreachable backend is skipped, as Airflow's own lookup does
            log.debug("backend %s did not answer for %s: %s", type(backend).__name__, conn_id, type(err).__name__)
            continue
        if found:
            kind = type(backend).__name__
            return {"MetastoreBackend": "metadata_db", "EnvironmentVariablesBackend": "environment"}.get(
                kind, f"secrets backend {kind}"
            )
    return "missing"


def _create_pending(repo: _Repo, old, *, actor: str, extra: dict, password: str | None) -> str:
    """Write the new connection into Airflow's metadata DB (what `airflow connections add` does)."""
    from airflow.models.connection import Connection

    _abandon_other_pendings(repo.name)
    marker = {
        "repository": repo.name,
        "replaces": old.conn_id,
        "actor": actor,
        "started_at": _now().isoformat(timespec="seconds"),
    }
    base = ROTATED_SUFFIX.sub("", old.conn_id)[:200]
    stamp = _now().strftime("%Y%m%d%H%M%S")
    with _airflow_session("create the new connection") as session:
        new_id = f"{base}_rotated_{stamp}"
        suffix = 2
        while session.scalar(select(Connection.conn_id).where(Connection.conn_id == new_id)) is not None:
            new_id, suffix = f"{base}_rotated_{stamp}_{suffix}", suffix + 1
        session.add(
            Connection(
                conn_id=new_id,
                conn_type=old.conn_type or "git",
                description=PENDING_MARK + json.dumps(marker),
                host=old.host,
                login=old.login,
                password=password,
                schema=old.schema,
                port=old.port,
                extra=json.dumps(extra),
            )
        )
    log.info("created connection %s for the credential rotation of %s (replaces %s)", new_id, repo.name, old.conn_id)
    return new_id


def _pending_marker(conn_id: str) -> dict | None:
    from airflow.models.connection import Connection

    with _airflow_session("read the pending rotation") as session:
        description = session.scalar(select(Connection.description).where(Connection.conn_id == conn_id))
    if not description or not description.startswith(PENDING_MARK):
        return None
    try:
        marker = json.loads(description[len(PENDING_MARK) :])
    except ValueError:
        return None
    return marker if isinstance(marker, dict) and {"repository", "replaces"} <= set(marker) else None


def _finish_pending(conn_id: str, marker: dict, *, actor: str) -> None:
    from airflow.models.connection import Connection

    description = (
        f"dagops: credentials of repository {marker['repository']!r}, rotated from {marker['replaces']!r} "
        f"by {actor} at {_now().isoformat(timespec='seconds')}"
    )
    try:
        with _airflow_session("describe the new connection") as session:
            connection = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
            if connection is not None:
                connection.description = description
    except DagOpsError as err:  # only a label: the switch is done, so log it and go on
        log.warning("could not update the description of %s: %s", conn_id, err)


def _abandon_other_pendings(name: str) -> None:
    """One pending rotation per repository: starting again drops the previous, never-used one."""
    from airflow.models.connection import Connection

    with _airflow_session("look for pending rotations") as session:
        rows = session.execute(
            select(Connection.conn_id, Connection.description).where(Connection.description.like(PENDING_MARK + "%"))
        ).all()
    for conn_id, _description in rows:
        marker = _pending_marker(conn_id)
        if marker and marker.get("repository") == name:
            log.info("dropping the unfinished rotation %s of %s", conn_id, name)
            _delete_pending_quietly(conn_id)


def _retire_old(old_id: str, name: str, *, keep_old: bool) -> tuple[bool, str | None]:
    """Delete the old connection when dagops may; otherwise say what is left for a person to do."""
    if keep_old:
        return False, f"the old connection {old_id!r} was kept (--keep-old); delete it once nothing uses it"
    users = _repositories_using(old_id)
    if users:
        return False, f"the old connection {old_id!r} was kept: repositories {', '.join(users)} still use it"
    where = origin_of(old_id)
    if where == "environment":
        return False, (
            f"the old connection {old_id!r} comes from the environment variable AIRFLOW_CONN_{old_id.upper()}, which "
            "dagops cannot delete: remove it from every Airflow machine's environment"
        )
    if where.startswith("secrets backend"):
        return False, f"the old connection {old_id!r} lives in the {where}, which dagops cannot write: delete it there"
    if where != "metadata_db":
        return False, None
    try:
        _delete_connection(old_id)
    except DagOpsError as err:  # the switch is done: a leftover connection is logged, not raised
        log.warning("could not delete the old connection %s: %s", old_id, err)
        return False, f"the old connection {old_id!r} could not be deleted ({err}); delete it by hand"
    log.info("deleted the old connection %s of %s", old_id, name)
    return True, None


def _repositories_using(conn_id: str) -> list[str]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(Repository.name)
                .where(or_(Repository.conn_id == conn_id, Repository.webhook_conn_id == conn_id))
                .order_by(Repository.name)
            )
        )


def _delete_connection(conn_id: str) -> None:
    from airflow.models.connection import Connection

    with _airflow_session(f"delete connection {conn_id!r}") as session:
        connection = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
        if connection is not None:
            session.delete(connection)


def _delete_unless_in_use(name: str, conn_id: str) -> None:
    """After a failure: delete the new connection, unless the switch to it did happen after all."""
    try:
        in_use = _load_repository(name).conn_id == conn_id
    except Exception:  # cannot tell: keeping an unused connection is harmless, deleting a used one is not
        log.warning("could not check whether %s uses %s; left it in place", name, conn_id)
        return
    if not in_use:
        _delete_pending_quietly(conn_id)


def _delete_pending_quietly(conn_id: str) -> None:
    """Cleanup on a failure path: never hide the original error behind a cleanup error."""
    try:
        _delete_connection(conn_id)
        log.info("deleted the unused connection %s", conn_id)
    except Exception as err:
        log.warning("could not delete the unused connection %s (%s); delete it by hand", conn_id, type(err).__name__)


@contextlib.contextmanager
def _airflow_session(doing: str):
    """A session on Airflow's metadata DB whose failures say what could not be done, without DB URLs."""
    try:
        from airflow.utils.session import create_session

        with create_session() as session:
            yield session
    except DagOpsError:
        raise
    except Exception as err:
        raise DagOpsError(
            f"cannot {doing} in Airflow's metadata DB ({type(err).__name__}): dagops writes rotated "
            "credentials there, like `airflow connections add`; run it where that DB is reachable "
            "(the api-server, or a CLI with Airflow's configuration)"
        ) from err


# -- small helpers ------------------------------------------------------------------------------------------
def _load_repository(name: str) -> _Repo:
    with session_scope() as session:
        repo = session.scalar(select(Repository).where(Repository.name == name))
        if repo is None:
            raise NotFound(f"no repository named {name!r} is registered; see `dagops repos list`")
        return _Repo(repo.name, repo.url, repo.ref, repo.conn_id)


def _host_of(url: str) -> str:
    match = _SCP_HOST.match(url) if "://" not in url else None
    if match:
        return match.group("host")
    try:
        parts = urlsplit(url)
        return parts.hostname or url
    except ValueError:
        return display_url(url)


def _keyscan_command(url: str) -> str:
    try:
        port = urlsplit(url).port if "://" in url else None
    except ValueError:
        port = None
    return f"ssh-keyscan {f'-p {port} ' if port else ''}{_host_of(url)}"


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


def _now() -> datetime:
    return datetime.now(timezone.utc)
