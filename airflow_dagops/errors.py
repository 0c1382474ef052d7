"""One exception hierarchy. Every message says what went wrong and what to do about it."""

from __future__ import annotations


class DagOpsError(Exception):
    """Base of every error dagops raises on purpose; its message is safe to show to a user."""

    exit_code = 1


class InvalidInput(DagOpsError):
    """A name, URL, ref or setting that dagops refuses before doing anything."""

    exit_code = 2


class NotFound(DagOpsError):
    """A repository or release that is not registered."""


class Conflict(DagOpsError):
    """The request clashes with existing state (name or namespace taken, ...)."""


class GitError(DagOpsError):
    """A git command failed; the message is already redacted."""


class GitTimeout(GitError):
    """A git command ran longer than `[dagops] git_timeout`."""


class AuthenticationFailed(GitError):
    """The remote refused the credentials (or their absence)."""


class RemoteUnreachable(GitError):
    """The remote could not be reached or is not a git repository."""


class RefNotFound(GitError):
    """The tracked branch, tag or commit does not exist on the remote."""


class LockBusy(DagOpsError):
    """Another process holds the repository's sync lock for too long."""


class ValidationFailed(DagOpsError):
    """A release has error-level findings and was not published."""
