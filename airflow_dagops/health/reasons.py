"""Why a sync failed, in the few words an operator acts on: a stored error code (and, for rows without one, its
message) mapped onto a `FailureReason`. docs/operations.md has a runbook entry for each reason.
"""

from __future__ import annotations

from airflow_dagops.statuses import FailureReason

# Error codes (airflow_dagops/errors.py, and the few sync/ writes itself) by the reason they are.
_REASON_OF_CODE: dict[str, FailureReason] = {
    "authentication_failed": FailureReason.AUTH,
    "credential_host_refused": FailureReason.AUTH,
    "access_failed": FailureReason.AUTH,
    "connection_missing": FailureReason.AUTH,
    "remote_unreachable": FailureReason.UNREACHABLE,
    "git_timeout": FailureReason.UNREACHABLE,
    "ref_not_found": FailureReason.UNREACHABLE,
    "validation_failed": FailureReason.VALIDATION,
    "tests_failed": FailureReason.TESTS,
    "no_space": FailureReason.NO_SPACE,
}
# Rows written before the code was stored, or by a path that stored none: the words git and the OS use.
_REASON_OF_WORDS: tuple[tuple[str, FailureReason], ...] = (
    ("no space left on device", FailureReason.NO_SPACE),
    ("authentication failed", FailureReason.AUTH),
    ("invalid credentials", FailureReason.AUTH),
    ("permission denied (publickey", FailureReason.AUTH),
    ("could not resolve host", FailureReason.UNREACHABLE),
    ("connection refused", FailureReason.UNREACHABLE),
    ("timed out", FailureReason.UNREACHABLE),
    ("validation failed", FailureReason.VALIDATION),
)
# A sync that failed for one of these reasons had read the remote first (it fetched, then the commit or the disk
# failed): it still counts as a successful check of the remote. Any other failure does not.
REMOTE_REACHED = (FailureReason.VALIDATION, FailureReason.TESTS, FailureReason.NO_SPACE)
REACHED_CODES = tuple(code for code, reason in _REASON_OF_CODE.items() if reason in REMOTE_REACHED)


def failure_reason(code: str | None, message: str | None = None) -> FailureReason:
    """The reason of one failed sync run from its `error_code` (and `error` when the code says nothing)."""
    if code in _REASON_OF_CODE:
        return _REASON_OF_CODE[code]
    if code and code not in ("error", "git_error"):  # a specific code that is none of the above
        return FailureReason.OTHER
    text = (message or "").lower()
    for words, reason in _REASON_OF_WORDS:
        if words in text:
            return reason
    return FailureReason.OTHER
