"""Tell git's failures apart: the one classifier of every git command that talks to a remote.

Syncs, catalog fetches, proposal pushes and access tests all ask the same question ("why did git fail?"), so
the words git, ssh and Git hosts use live here once. Two views of one verdict:

- `classify` turns a failure into the DagOpsError a fetch, ls-remote or push raises (actionable, redacted,
  marked transient when trying again can help);
- `failure_kind` / `kind_of` name it as one of KINDS, which the access test shows to a person.

The whole stderr is read, not only its tail: git's generic "Could not read from remote repository" trailer
comes last and hides ssh's real reason, printed before it.
"""

from __future__ import annotations

import re

from airflow_dagops.errors import (
    AuthenticationFailed,
    Conflict,
    CredentialHostRefused,
    DagOpsError,
    GitError,
    GitTimeout,
    InvalidInput,
    NoSpace,
    RefNotFound,
    RemoteUnreachable,
)
from airflow_dagops.safety import display_url, redact

# What an access test can answer (AccessResult.kind): a stable list, part of the REST API.
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

# git's generic trailer after any remote failure: it hides ssh's real reason, printed just before it.
GENERIC_TRAILER = (
    "could not read from remote repository",
    "please make sure you have the correct access rights",
    "and the repository exists",
)
# Words of git, ssh and Git hosts, matched against git's whole stderr (lower-cased), in the order of
# `_verdict`: the most specific first.
_HOST_KEY_WORDS = (
    "host key verification failed",
    "remote host identification has changed",
    "host key for",
    "no matching host key type",
)
_KEY_WORDS = ('load key "', "invalid format", "error in libcrypto", "incorrect passphrase", "bad passphrase")
_UNREACHABLE_WORDS = (
    "could not resolve host",
    "name or service not known",
    "connection refused",
    "timed out",
    "no route to host",
    "network is unreachable",
    "failed to connect",
)
_AUTH_WORDS = (
    "permission denied",
    "authentication failed",
    "could not read username",
    "could not read password",
    "invalid username or password",
    "http basic: access denied",
    "access denied",
    "terminal prompts disabled",
    "403",
    "returned error: 401",
)
# A connection that was made and then lost: a flaky network or an overloaded server, worth a retry.
_DROPPED_WORDS = (
    "connection reset",
    "connection closed by remote host",
    "kex_exchange_identification",
    "remote end hung up unexpectedly",
    "early eof",
    "broken pipe",
    "unexpected disconnect",
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
_REF_WORDS = ("couldn't find remote ref", "not our ref", "unadvertised object")
# A push the remote refused for what is there (the branch exists, moved on, or a hook declined it): `[rejected]`
# and `[remote rejected]` lines. Only when nothing else (credentials, network) explains the failure.
_REJECTED_WORDS = ("rejected]", "already exists", "non-fast-forward")
# A lock file of a local repository exists: another git process writes there, typically the orphan of a sync
# killed while its fetch ran. Transient; the mirror removes a lock older than any of our commands can run.
_LOCKED = re.compile(r"unable to create '([^']+\.lock)': file exists", re.IGNORECASE)
# The same orphan may also move a ref between our fetch's read and its update of it: transient, a retry
# fetches again from what is there now.
_REF_MOVED = re.compile(r"cannot lock ref '[^']+': is at \w+ but expected", re.IGNORECASE)


def tail_of(text: str, count: int = 3) -> str:
    """The informative tail of git's (already redacted) stderr on one line: hints, ssh's `@@@` banners and
    git's generic trailer left out."""
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip()
        and not line.startswith("hint:")
        and not set(line.strip()) <= {"@"}
        and not any(generic in line.lower() for generic in GENERIC_TRAILER)
    ]
    return " / ".join(lines[-count:]) or "no error output"


def last_lines(stderr: bytes, count: int = 3) -> str:
    """`tail_of` git's raw stderr, redacted first."""
    return tail_of(redact(stderr.decode("utf-8", "replace")), count)


def _verdict(text: str) -> str:
    """What went wrong, from git's whole lower-cased stderr; `connection_dropped` is a KINDS
    `host_unreachable` that deserves its own message. Authentication words next to "not found" mean the
    repository is missing (hosts hide private repositories behind both)."""
    if any(word in text for word in _HOST_KEY_WORDS):
        return "host_key_mismatch"
    if any(word in text for word in _KEY_WORDS):
        return "key_unusable"
    if any(word in text for word in _UNREACHABLE_WORDS):
        return "host_unreachable"
    if any(word in text for word in _AUTH_WORDS) and "not found" not in text:
        return "authentication_failed"
    if any(word in text for word in _DROPPED_WORDS):
        return "connection_dropped"
    if any(word in text for word in _REF_WORDS):
        return "ref_not_found"
    if any(word in text for word in _NOT_FOUND_WORDS):
        return "repository_not_found"
    return "error"


def failure_kind(stderr: str) -> str:
    """One of KINDS for git's (redacted) stderr of a failed remote command."""
    verdict = _verdict(stderr.lower())
    return "host_unreachable" if verdict == "connection_dropped" else verdict


def kind_of(error: BaseException) -> str:
    """One of KINDS for an error of a remote command: from its type first, then from git's words."""
    if isinstance(error, CredentialHostRefused):
        return "host_not_attached"
    if isinstance(error, GitTimeout):
        return "timeout"
    if isinstance(error, RefNotFound):
        return "ref_not_found"
    if isinstance(error, InvalidInput) and "transport" in str(error):
        return "transport_not_allowed"
    stderr = stderr_of(error)
    if not stderr:
        # No git output: the connection could not be turned into credentials (missing, malformed).
        return "connection_error" if "connection" in str(error) else "error"
    return failure_kind(stderr)


def stderr_of(error: BaseException) -> str:
    """git's whole redacted stderr behind an error of `classify` ("" for any other error)."""
    return getattr(error, "git_stderr", "")


def is_transient(err: DagOpsError) -> bool:
    """A timeout or a lost connection: the same command may well succeed a few seconds later."""
    return isinstance(err, GitError) and bool(err.details.get("transient"))


def reworded(err: DagOpsError, message: str) -> DagOpsError:
    """The same failure (type, details, git's stderr) with a message that says more: which push, how many
    attempts."""
    again = type(err)(message, details=err.details)
    again.git_stderr = stderr_of(err)
    return again


def classify(
    command: str, stderr: bytes, *, url: str, conn_id: str | None = None, local: str = "the local repository"
) -> DagOpsError:
    """The DagOpsError for a failed `git <command>` against `url`; `local` names the repository git wrote to
    (a mirror, a scratch clone) in messages about its lock files and its disk."""
    raw = stderr.decode("utf-8", "replace")
    error = _local_failure(raw, url, local) or _remote_failure(command, raw, url, conn_id)
    error.git_stderr = redact(raw)
    return error


def _local_failure(raw: str, url: str, local: str) -> DagOpsError | None:
    """Failures of this machine rather than of the remote: a refused transport, a lock, a full disk."""
    lowered = raw.lower()
    detail = tail_of(redact(raw))
    if "transport" in lowered and "not allowed" in lowered:
        return InvalidInput(f"git refused the transport of {display_url(url)}: {detail}")
    locked = _LOCKED.search(raw)
    if locked:
        return GitError(
            f"{local} is locked by another git process ({locked.group(1)} exists); "
            "a sync killed during its fetch leaves one behind until its git exits",
            details={"transient": True, "lock": locked.group(1)},
        )
    if _REF_MOVED.search(raw):
        return GitError(
            f"a ref of {local} was moved by another git process during the fetch: {detail}",
            details={"transient": True},
        )
    if "no space left on device" in lowered or "disk quota exceeded" in lowered:
        return NoSpace(f"no space left for {local} of {display_url(url)}: {detail}. {NoSpace.hint}")
    return None


def _remote_failure(command: str, raw: str, url: str, conn_id: str | None) -> DagOpsError:
    """What the remote (or the way to it) answered, as the error that says what to do."""
    text = redact(raw)
    detail, where = tail_of(text), display_url(url)
    verdict = _verdict(text.lower())
    if command == "push" and verdict == "error" and any(word in text.lower() for word in _REJECTED_WORDS):
        return Conflict(f"{where} refused the push: {detail}")
    if verdict == "host_key_mismatch":
        return AuthenticationFailed(
            f"host key verification failed for {where}: add the server's key to the connection's "
            f"known_hosts_file ({detail})"
        )
    if verdict == "key_unusable":
        return AuthenticationFailed(f"ssh could not load the private key of connection {conn_id!r}: {detail}")
    if verdict == "host_unreachable":
        return RemoteUnreachable(
            f"cannot reach {where}: {detail}. Check the URL and the network.", details={"transient": True}
        )
    if verdict == "authentication_failed":
        return AuthenticationFailed(_auth_message(where, detail, conn_id))
    if verdict == "connection_dropped":
        return RemoteUnreachable(f"the connection to {where} was dropped: {detail}", details={"transient": True})
    if verdict == "repository_not_found" or any(word in text.lower() for word in GENERIC_TRAILER):
        return RemoteUnreachable(f"{where} is not a git repository or cannot be read: {detail}")
    if verdict == "ref_not_found":
        return RefNotFound(f"{where} has no such ref or commit: {detail}")
    return GitError(f"git {command} of {where} failed: {detail}")


def _auth_message(where: str, detail: str, conn_id: str | None) -> str:
    if conn_id:
        return f"authentication to {where} failed: {detail}. Check the Airflow connection {conn_id!r}."
    return (
        f"authentication to {where} failed: {detail}. Private repositories need --conn-id "
        "naming an Airflow connection of type 'git'."
    )
