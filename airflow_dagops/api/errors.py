"""One error envelope for every API answer: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging

from flask import jsonify

from airflow_dagops.errors import DagOpsError
from airflow_dagops.safety import redact

log = logging.getLogger(__name__)

# DagOpsError.code -> HTTP status; git failures while checking a new URL/ref/credentials are the
# caller's input being wrong, hence 422.
STATUS_OF_CODE = {
    "invalid_input": 422,
    "not_found": 404,
    "conflict": 409,
    "lock_busy": 409,
    "git_error": 422,
    "git_timeout": 422,
    "authentication_failed": 422,
    "remote_unreachable": 422,
    "ref_not_found": 422,
    "validation_failed": 422,
    "airflow_unavailable": 503,
}


class ApiError(Exception):
    """An error raised by the API layer itself (auth, body, query)."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


def envelope(status: int, code: str, message: str, details: dict | None = None):
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    return response


def from_api_error(err: ApiError):
    return envelope(err.status, err.code, err.message, err.details)


def from_dagops_error(err: DagOpsError):
    status = STATUS_OF_CODE.get(err.code, 500)
    return envelope(status, err.code, redact(str(err)), err.details)


def from_unexpected(err: Exception):
    log.exception("dagops API: unexpected error")
    return envelope(500, "internal_error", "dagops hit an unexpected error; the api-server log has the details")
