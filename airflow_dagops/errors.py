"""One exception hierarchy. Every message says what went wrong and what to do about it.

Each class carries the three things every face needs, so no face keeps a table of its own:
`code` (machine-readable, unique per class: stored with failed sync runs, returned by the API),
`http_status` (what the REST API answers) and `exit_code` (what the CLI exits with).

    DagOpsError                      error                    500  1
    ├── InvalidInput                 invalid_input            422  2
    │   ├── ConfigInvalid            config_invalid           422  2
    │   ├── ConnectionMissing        connection_missing       422  2
    │   └── MalformedJson            malformed_json           400  2
    ├── NotFound                     not_found                404  1
    ├── Conflict                     conflict                 409  1
    │   └── RequirementsMissing      requirements_missing     409  3
    ├── LockBusy                     lock_busy                409  1
    ├── GitError                     git_error                422  1
    │   ├── GitTimeout               git_timeout              422  1
    │   ├── AuthenticationFailed     authentication_failed    422  1
    │   │   └── CredentialHostRefused credential_host_refused 422  1
    │   ├── RemoteUnreachable        remote_unreachable       422  1
    │   ├── RefNotFound              ref_not_found            422  1
    │   └── RotationFailed           access_failed            422  1
    ├── ValidationFailed             validation_failed        422  1
    │   └── ProposalRefused          proposal_refused         422  2
    ├── NoSpace                      no_space                 507  1
    ├── StateDBUnavailable           state_db_unavailable     503  1
    ├── AirflowUnavailable           airflow_unavailable      503  1
    ├── AirflowApiUnavailable        airflow_api_unavailable  502  1
    ├── ReportError                  report_failed            502  1
    ├── HostApiError                 host_api_failed          502  1
    │   └── HostPermissionDenied     host_permission_denied   422  1
    ├── VenvBuildFailed              venv_build_failed        500  1
    ├── SandboxUnavailable           sandbox_unavailable      503  1
    ├── Unauthenticated              unauthenticated          401  1
    ├── Forbidden                    forbidden                403  1
    └── PayloadTooLarge              body_too_large           413  1

Git failures are 422: dagops runs git against a remote while checking a URL, ref or connection the caller
just gave, so a failing remote is the caller's input being wrong, not the server failing.
"""

from __future__ import annotations


class DagOpsError(Exception):
    """Base of every error dagops raises on purpose; its message is safe to show to a user."""

    code = "error"  # machine-readable: stored with failed sync runs, returned by the API
    http_status = 500
    exit_code = 1
    git_stderr = ""  # git's whole redacted stderr, for the errors git/errors.py makes of a failed git command

    def __init__(self, message: str = "", *, details: dict | None = None):
        super().__init__(message)
        self.details = details or {}  # structured context for API clients (never a secret)


# -- the caller's input ---------------------------------------------------------------------------------
class InvalidInput(DagOpsError):
    """A name, URL, ref or setting that dagops refuses before doing anything."""

    code = "invalid_input"
    http_status = 422
    exit_code = 2


class ConfigInvalid(InvalidInput):
    """dagops.yaml (or a package manifest) cannot be used; `problems` lists every one, each as
    `file:line: key: message`, so a user fixes them all in one go."""

    code = "config_invalid"

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems), details={"problems": problems})
        self.problems = problems


class ConnectionMissing(InvalidInput):
    """A feature needs an Airflow connection that does not exist (e.g. `[dagops] airflow_api_conn_id`); the
    message names it and says how to create it. System DAGs skip with that message instead of failing."""

    code = "connection_missing"


class MalformedJson(InvalidInput):
    """A body that is not JSON dagops will parse: invalid, not UTF-8, or nested too deep (REST or webhook)."""

    code = "malformed_json"
    http_status = 400


class Unauthenticated(DagOpsError):
    """A webhook delivery without a valid signature; always the same answer, so nothing leaks."""

    code = "unauthenticated"
    http_status = 401


class Forbidden(DagOpsError):
    """The caller's Airflow role does not allow this (the MCP face's permission checks, Airflow's own 403)."""

    code = "forbidden"
    http_status = 403


class PayloadTooLarge(DagOpsError):
    """A body over the size limit, refused before it is buffered."""

    code = "body_too_large"
    http_status = 413


# -- registered state -----------------------------------------------------------------------------------
class NotFound(DagOpsError):
    """A repository or release that is not registered."""

    code = "not_found"
    http_status = 404


class Conflict(DagOpsError):
    """The request clashes with existing state (name or namespace taken, ...)."""

    code = "conflict"
    http_status = 409


class RequirementsMissing(Conflict):
    """A marketplace package needs providers or Python packages this Airflow lacks; nothing was installed.
    `details` lists them (`missing_providers`, `missing_packages`). Install them on every Airflow machine, or
    install anyway (`--force`, REST `"force": true`, the page's "Install anyway"). Exit code 3 lets a script
    tell it from other refusals."""

    code = "requirements_missing"
    exit_code = 3

    def __init__(self, message: str, *, providers: list[str] | None = None, packages: list[str] | None = None):
        super().__init__(
            message, details={"missing_providers": list(providers or []), "missing_packages": list(packages or [])}
        )
        self.missing = list(providers or []) + list(packages or [])


class LockBusy(DagOpsError):
    """Another process holds the repository's sync lock for too long."""

    code = "lock_busy"
    http_status = 409


# -- git ------------------------------------------------------------------------------------------------
class GitError(DagOpsError):
    """A git command failed; the message is already redacted."""

    code = "git_error"
    http_status = 422


class GitTimeout(GitError):
    """A git command ran longer than `[dagops] git_timeout`."""

    code = "git_timeout"


class AuthenticationFailed(GitError):
    """The remote refused the credentials (or their absence)."""

    code = "authentication_failed"


class CredentialHostRefused(AuthenticationFailed):
    """A connection's credentials were asked for a host they were not attached for; nothing was sent."""

    code = "credential_host_refused"


class RemoteUnreachable(GitError):
    """The remote could not be reached or is not a git repository."""

    code = "remote_unreachable"


class RefNotFound(GitError):
    """The tracked branch, tag or commit does not exist on the remote."""

    code = "ref_not_found"


class RotationFailed(GitError):
    """The new credentials of a rotation never worked; the repository kept its old connection.

    `access` is the last access test (an AccessResult of airflow_dagops.credentials), so faces can show
    its kind and hint; `pending_kept` says whether the new connection is kept for another try."""

    code = "access_failed"

    def __init__(self, message: str, *, access, rotation_id: str, pending_kept: bool):
        super().__init__(message, details={"access": access.to_dict(), "rotation_id": rotation_id})
        self.access, self.rotation_id, self.pending_kept = access, rotation_id, pending_kept


# -- publishing -----------------------------------------------------------------------------------------
class ValidationFailed(DagOpsError):
    """A release has error-level findings and was not published."""

    code = "validation_failed"
    http_status = 422


class ProposalRefused(ValidationFailed):
    """Proposed files do not pass validation; `details` carries the findings. Nothing was pushed. The
    proposer's input is wrong (exit code 2), unlike a sync whose repository failed validation."""

    code = "proposal_refused"
    exit_code = 2


class NoSpace(DagOpsError):
    """The file system holding dagops_home is full; nothing was published."""

    code = "no_space"
    http_status = 507  # Insufficient Storage: the server's disk, not the request, is the problem
    hint = "Free space under [dagops] dagops_home, or lower [dagops] releases_to_keep; the live release is untouched."


class VenvBuildFailed(DagOpsError):
    """The virtual environment for a release's declared requirements could not be built."""

    code = "venv_build_failed"


class SandboxUnavailable(DagOpsError):
    """The structure check's sandbox cannot start, so DAG files are not imported (the release is blocked)."""

    code = "sandbox_unavailable"
    http_status = 503


# -- services dagops depends on -------------------------------------------------------------------------
class StateDBUnavailable(DagOpsError):
    """The dagops state DB could not be reached, or dropped the connection mid-transaction (a restart)."""

    code = "state_db_unavailable"
    http_status = 503


class AirflowUnavailable(DagOpsError):
    """Airflow cannot take the request now (system DAG not parsed yet, paused, DB down)."""

    code = "airflow_unavailable"
    http_status = 503


class AirflowApiUnavailable(DagOpsError):
    """Another Airflow's REST API (a promotion stage) did not answer as expected (down, wrong URL, wrong
    credentials). A gateway error: the request was fine, the upstream was not."""

    code = "airflow_api_unavailable"
    http_status = 502


class ReportError(DagOpsError):
    """A commit status could not be sent to the Git host; the message says why and never holds the token."""

    code = "report_failed"
    http_status = 502


class HostApiError(DagOpsError):
    """A Git host's REST API (webhooks, an organization's repositories) refused or did not answer; the message
    quotes the host and never holds the token (git/host_api.py)."""

    code = "host_api_failed"
    http_status = 502


class HostPermissionDenied(HostApiError):
    """The Git host answered 403: the connection's token lacks the scope or role the action needs, which the
    message names (GitHub `admin:repo_hook`, GitLab `api` with the Maintainer role, Gitea `write:repository`).
    The caller's configuration is wrong, not the host: 422."""

    code = "host_permission_denied"
    http_status = 422
