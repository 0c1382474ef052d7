"""One exception hierarchy. Every message says what went wrong and what to do about it."""

from __future__ import annotations


class DagOpsError(Exception):
    """Base of every error dagops raises on purpose; its message is safe to show to a user."""

    code = "error"  # machine-readable: stored with failed sync runs, returned by the API
    exit_code = 1

    def __init__(self, message: str = "", *, details: dict | None = None):
        super().__init__(message)
        self.details = details or {}  # structured context for API clients (never a secret)


class InvalidInput(DagOpsError):
    """A name, URL, ref or setting that dagops refuses before doing anything."""

    code = "invalid_input"
    exit_code = 2


class NotFound(DagOpsError):
    """A repository or release that is not registered."""

    code = "not_found"


class Conflict(DagOpsError):
    """The request clashes with existing state (name or namespace taken, ...)."""

    code = "conflict"


class GitError(DagOpsError):
    """A git command failed; the message is already redacted."""

    code = "git_error"


class GitTimeout(GitError):
    """A git command ran longer than `[dagops] git_timeout`."""

    code = "git_timeout"


class AuthenticationFailed(GitError):
    """The remote refused the credentials (or their absence)."""

    code = "authentication_failed"


class RemoteUnreachable(GitError):
    """The remote could not be reached or is not a git repository."""

    code = "remote_unreachable"


class RefNotFound(GitError):
    """The tracked branch, tag or commit does not exist on the remote."""

    code = "ref_not_found"


class LockBusy(DagOpsError):
    """Another process holds the repository's sync lock for too long."""

    code = "lock_busy"


class ValidationFailed(DagOpsError):
    """A release has error-level findings and was not published."""

    code = "validation_failed"


class NoSpace(DagOpsError):
    """The file system holding dagops_home is full; nothing was published."""

    code = "no_space"
    hint = "Free space under [dagops] dagops_home, or lower [dagops] releases_to_keep; the live release is untouched."


class StateDBUnavailable(DagOpsError):
    """The dagops state DB could not be reached, or dropped the connection mid-transaction (a restart)."""

    code = "state_db_unavailable"
