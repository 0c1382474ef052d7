"""Discovery tests: a fake GitHub, GitLab or Gitea API (tests/helpers/git_hosts.py) holding an organization, and a
connection whose token may read it."""

from __future__ import annotations

import json

from tests.helpers.git_hosts import git_host  # noqa: F401 - the fixture, for this folder's tests

TOKEN = "tok-org-reader-3c2b1a"  # noqa: S105 - a test token
WEAK_TOKEN = "tok-no-scope-9z8y7x"  # noqa: S105
ORG_URLS = {
    "github": "https://github.example.com/acme",
    "gitlab": "https://gitlab.example.com/data",
    "gitea": "https://gitea.example.com/acme",
}
READ = {"github": {"repo"}, "gitlab": {"read_api"}, "gitea": {"read:organization", "read:repository"}}


def git_connection(monkeypatch, conn_id: str, token: str, **extra) -> str:
    fields = {"conn_type": "git", "login": "bot", "password": token, "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    return conn_id


def source(kind: str, **overrides) -> dict:
    """One entry of dagops.yaml's `discovery:` block, for a host of `kind`."""
    spec = {
        "name": f"{kind}-org",
        "url": ORG_URLS[kind],
        "provider": kind,
        "conn_id": "org_token",
        "rule": {"topic": "airflow-dags"},
    }
    return {**spec, **overrides}
