"""REST route for proposals, added to the dagops API blueprint (its JWT auth, CSRF check and error envelope apply;
proposing needs the plugin's write permission). docs/automation.md walks through it with curl.

    POST /repositories/{name}/proposals  {"files": [{"path", "content"}], "title", "description"}
        -> 201 {proposal_id, branch, commit, pr_url, ...}: validated, pushed as dagops/proposal-<id>, PR opened
        -> 422 invalid_input (a path outside the repository or its subdir, a file too large) or
           proposal_refused (details.findings): nothing was pushed
    GET  /repositories/{name}/proposals  -> {"items": [...], "total": N}: its newest proposals, newest first
    GET  /proposals/{id}                 -> the proposal as recorded

The work (export, validation in the sandbox, commit, push, pull request) runs in the request, like the dry run
of a deploy: the caller needs the verdict and the branch in the answer, and the size limits keep it short.
"""

from __future__ import annotations

from flask import jsonify

from airflow_dagops import settings
from airflow_dagops.api.blueprint import MAX_BODY, actor_name, api_blueprint, read_body
from airflow_dagops.api.openapi import NAME_PARAM, NULLABLE_STRING, json_content, operation, register, write_operation
from airflow_dagops.api.openapi import schema_ref as ref
from airflow_dagops.proposals import service as proposals


@api_blueprint.post("/repositories/<name>/proposals")
def create_proposal(name: str):
    # JSON escaping can double a file's size; the proposal's own limits are checked by the service.
    body = read_body("ProposalRequest", max_body=MAX_BODY + 2 * settings.get_int("proposal_max_total_size"))
    result = proposals.propose(
        name, body["files"], title=body["title"], description=body.get("description"), actor=actor_name()
    )
    return jsonify(result), 201


@api_blueprint.get("/repositories/<name>/proposals")
def list_proposals(name: str):
    items = proposals.list_proposals(name, limit=20)
    return jsonify({"items": items, "total": len(items)})


@api_blueprint.get("/proposals/<int:proposal_id>")
def get_proposal(proposal_id: int):
    return jsonify(proposals.get_proposal(proposal_id))


# -- OpenAPI ------------------------------------------------------------------------------------------------------
SCHEMAS = {
    "ProposalRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["files", "title"],
        "properties": {
            "files": {
                "type": "array",
                "minItems": 1,
                "maxItems": proposals.MAX_FILES,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["path", "content"],
                    "properties": {
                        "path": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": proposals.MAX_PATH,
                            "description": "relative to the repository's root (under its subdir when it has one)",
                        },
                        "content": {"type": "string", "description": "the file's text (UTF-8)"},
                    },
                },
            },
            "title": {"type": "string", "minLength": 1, "maxLength": proposals.MAX_TITLE},
            "description": {"type": "string", "maxLength": proposals.MAX_DESCRIPTION},
        },
    },
    "Proposal": {
        "type": "object",
        "required": ["proposal_id", "status", "branch", "commit", "pr_url"],
        "properties": {
            "proposal_id": {"type": "integer"},
            "repository": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "string", "enum": ["validating", "refused", "pushed", "opened", "failed"]},
            "branch": NULLABLE_STRING,
            "commit": NULLABLE_STRING,
            "base_commit": NULLABLE_STRING,
            "pr_url": {**NULLABLE_STRING, "description": "null when the host is not GitHub, GitLab or Gitea"},
            "pr_error": {**NULLABLE_STRING, "description": "why no pull request was opened (the branch is pushed)"},
            "files": {"type": "array", "items": {"type": "object"}},
            "findings": {"type": "array", "items": {"type": "object"}, "description": "warnings of the validation"},
            "error": NULLABLE_STRING,
            "actor": {"type": "string"},
            "created_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
}
register(
    paths={
        "/repositories/{name}/proposals": {
            "post": write_operation(
                "create_proposal",
                "Propose files: validated against the live release, pushed as branch dagops/proposal-<id>, and "
                "opened as a pull/merge request on GitHub, GitLab or Gitea; refused with the findings otherwise",
                json_content(ref("Proposal"), "Created: the branch is pushed"),
                body="ProposalRequest",
                status="201",
            ),
            "get": operation(
                "list_proposals",
                "The repository's newest proposals (up to 20), newest first",
                json_content(
                    {
                        "type": "object",
                        "properties": {
                            "items": {"type": "array", "items": ref("Proposal")},
                            "total": {"type": "integer"},
                        },
                    }
                ),
                params=[NAME_PARAM],
            ),
        },
        "/proposals/{id}": {
            "get": operation(
                "get_proposal",
                "One proposal as recorded",
                json_content(ref("Proposal")),
                params=[{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}],
            )
        },
    },
    schemas=SCHEMAS,
)
