"""One error envelope for every API answer: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from werkzeug.exceptions import HTTPException

from airflow_dagops.errors import DagOpsError
from airflow_dagops.redaction import redact_text as redact

log = logging.getLogger(__name__)


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
    """The error's own `http_status` (errors.py), so the API and the CLI never disagree on what an error is."""
    status = err.http_status
    return envelope(status, err.code, redact(str(err)), err.details)


def from_unexpected(err: Exception):
    log.exception("dagops API: unexpected error")
    return envelope(500, "internal_error", "dagops hit an unexpected error; the api-server log has the details")


def from_http_error(err: HTTPException):
    code = {413: "body_too_large", 404: "not_found", 405: "method_not_allowed"}.get(err.code or 0, "http_error")
    return envelope(err.code or 500, code, err.description or err.name)


def answer_in_the_envelope(blueprint: Blueprint) -> None:
    """Every error a blueprint's routes raise (ours, HTTP, unexpected) answers in the one envelope."""
    blueprint.register_error_handler(ApiError, from_api_error)
    blueprint.register_error_handler(DagOpsError, from_dagops_error)
    blueprint.register_error_handler(HTTPException, from_http_error)
    blueprint.register_error_handler(Exception, from_unexpected)


def exempt_from_form_csrf(blueprint: Blueprint) -> None:
    """The host app's Flask-WTF CSRF protects HTML forms with a session token. Our clients authenticate
    otherwise (Bearer token, our own CSRF header for the page, or a webhook signature)."""

    @blueprint.record_once
    def _exempt(state) -> None:
        csrf = state.app.extensions.get("csrf")
        if csrf is not None:
            csrf.exempt(blueprint)
