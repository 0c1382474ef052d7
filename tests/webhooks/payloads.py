"""Webhook deliveries as each Git host sends them: headers and payloads, trimmed to the fields that matter
(shapes from the providers' documentation: GitHub push/pull_request/ping, GitLab Push Hook/Merge Request
Hook, Gitea push/pull_request, Bitbucket Cloud repo:push)."""

from __future__ import annotations

import json
import uuid

from airflow_dagops.git.urls import path_of
from airflow_dagops.webhooks.signatures import sign

EVENT_HEADER = {
    "github": "X-GitHub-Event",
    "gitlab": "X-Gitlab-Event",
    "gitea": "X-Gitea-Event",
    "bitbucket": "X-Event-Key",
}
DELIVERY_HEADER = {
    "github": "X-GitHub-Delivery",
    "gitlab": "X-Gitlab-Event-UUID",
    "gitea": "X-Gitea-Delivery",
    "bitbucket": "X-Request-UUID",
}
PUSH_EVENT = {"github": "push", "gitlab": "Push Hook", "gitea": "push", "bitbucket": "repo:push"}
PULL_EVENT = {"github": "pull_request", "gitlab": "Merge Request Hook", "gitea": "pull_request"}


def push(provider: str, url: str, sha: str, ref: str = "refs/heads/main") -> dict:
    if provider == "gitlab":
        return {
            "object_kind": "push",
            "ref": ref,
            "before": "0" * 40,
            "after": sha,
            "checkout_sha": sha,
            "project": {"git_http_url": url, "web_url": url.removesuffix(".git")},
            "repository": {"git_http_url": url},
        }
    if provider == "bitbucket":
        kind, name = ("tag", ref[len("refs/tags/") :]) if ref.startswith("refs/tags/") else ("branch", ref[11:])
        return {
            "push": {"changes": [{"new": {"type": kind, "name": name, "target": {"hash": sha}}, "old": None}]},
            "repository": {"full_name": path_of(url), "links": {"html": {"href": url.removesuffix(".git")}}},
        }
    return {"ref": ref, "before": "0" * 40, "after": sha, "deleted": False, "repository": {"clone_url": url}}


def pull_request(
    provider: str,
    url: str,
    number: int,
    head_sha: str,
    *,
    base: str = "main",
    action: str | None = None,
    fork: bool = False,
) -> dict:
    if provider == "gitlab":
        return {
            "object_kind": "merge_request",
            "project": {"id": 42, "git_http_url": url},
            "object_attributes": {
                "iid": number,
                "action": action or "open",
                "target_branch": base,
                "source_branch": f"feature-{number}",
                "source_project_id": 43 if fork else 42,
                "target_project_id": 42,
                "last_commit": {"id": head_sha},
            },
        }
    default_action = {"github": "opened", "gitea": "opened"}[provider]
    head_repo = {"id": 2 if fork else 1, "full_name": "someone/dags" if fork else "acme/dags"}
    return {
        "action": action or default_action,
        "number": number,
        "pull_request": {
            "number": number,
            "head": {"sha": head_sha, "ref": f"feature-{number}", "repo": head_repo},
            "base": {"sha": "b" * 40, "ref": base, "repo": {"id": 1, "full_name": "acme/dags"}},
        },
        "repository": {"clone_url": url},
    }


def headers(provider: str, event: str, body: bytes, *, secret: str | None, delivery: str | None = None) -> dict:
    result = {
        "Content-Type": "application/json",
        EVENT_HEADER[provider]: event,
        DELIVERY_HEADER[provider]: delivery or str(uuid.uuid4()),
    }
    if secret is not None:
        result.update(sign(provider, body, secret))
    return result


def encode(payload: dict) -> bytes:
    return json.dumps(payload).encode()
