"""Registering dagops' webhook on GitHub, GitLab and Gitea through their APIs (issue 23, part 2).

Against a local fake of each host's API (tests/helpers/git_hosts.py) that keeps hooks like the host, enforces token
scopes, and records every request body: the bodies are asserted against the hosts' documented formats.
"""

from __future__ import annotations

import json

import pytest

from airflow_dagops.errors import (
    ConnectionMissing,
    CredentialHostRefused,
    HostApiError,
    HostPermissionDenied,
    InvalidInput,
    NotFound,
)
from airflow_dagops.repositories.registry import add_repository, update_repository
from airflow_dagops.webhooks import registration
from tests.helpers.git_hosts import git_host  # noqa: F401 - the fixture
from tests.webhooks.conftest import GLOBAL_SECRET, REPO_SECRET, env_connection

TOKEN = "tok-admin-5d1c0b9a8f7e"  # noqa: S105 - a test token
WEAK_TOKEN = "tok-weak-0a9b8c7d6e5f"  # noqa: S105
BASE = "https://airflow.example.com"
# Where each host's repository lives, and what its project path is.
REPOS = {
    "github": ("https://github.com/acme/dags.git", "acme/dags"),
    "gitlab": ("https://gitlab.com/data/platform/dags.git", "data/platform/dags"),
    "gitea": ("https://codeberg.org/acme/dags.git", "acme/dags"),
}
SCOPES = {"github": {"admin:repo_hook", "repo"}, "gitlab": {"api"}, "gitea": {"write:repository"}}
WEAK = {"github": {"repo:status"}, "gitlab": {"read_api"}, "gitea": {"read:repository"}}


def git_connection(monkeypatch, conn_id: str, token: str, **extra) -> str:
    fields = {"conn_type": "git", "login": "bot", "password": token, "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    return conn_id


@pytest.fixture(params=["github", "gitlab", "gitea"])
def host(request, git_host, dagops_env, monkeypatch):  # noqa: F811 - the fixture imported above
    """Repository `team` on a fake host of each kind, its connection's token allowed to manage webhooks."""
    provider = request.param
    fake = git_host(provider)
    url, project = REPOS[provider]
    fake.add_repo(project)
    fake.tokens[TOKEN] = SCOPES[provider]
    fake.tokens[WEAK_TOKEN] = WEAK[provider]
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE + "/")
    env_connection(monkeypatch, "dagops_webhook", password=GLOBAL_SECRET)
    git_connection(monkeypatch, "team_git", TOKEN, api_url=fake.url)
    add_repository("team", url, conn_id="team_git", verify=False)
    return fake


def _expected_body(provider: str, secret: str = GLOBAL_SECRET) -> dict:
    """The hosts' documented "create a webhook" bodies."""
    url = f"{BASE}/pluginsv2/dagops/api/v1/webhooks/{provider}"
    if provider == "github":
        return {
            "name": "web",
            "active": True,
            "events": ["push", "pull_request"],
            "config": {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"},
        }
    if provider == "gitlab":
        return {
            "url": url,
            "token": secret,
            "push_events": True,
            "tag_push_events": True,
            "merge_requests_events": True,
            "enable_ssl_verification": True,
        }
    return {
        "type": "gitea",
        "config": {"url": url, "content_type": "json", "secret": secret},
        "events": ["push", "pull_request", "pull_request_sync"],
        "active": True,
    }


def _hooks_path(provider: str) -> str:
    return "/projects/data%2Fplatform%2Fdags/hooks" if provider == "gitlab" else "/repos/acme/dags/hooks"


def test_register_creates_the_hook_with_the_documented_body(host):
    answer = registration.register("team")
    [post] = host.calls("POST")
    assert post.path == _hooks_path(host.provider)
    assert post.body == _expected_body(host.provider)
    auth = post.headers["Authorization"]
    assert auth == (f"token {TOKEN}" if host.provider == "gitea" else f"Bearer {TOKEN}")
    assert answer["action"] == "created" and answer["secret"] == "set"  # noqa: S105 - the word, not a secret
    assert answer["url"] == f"{BASE}/pluginsv2/dagops/api/v1/webhooks/{host.provider}"
    assert GLOBAL_SECRET not in json.dumps(answer) and TOKEN not in json.dumps(answer)
    assert len(host.hooks[REPOS[host.provider][1]]) == 1


def test_register_again_updates_the_same_hook(host):
    first = registration.register("team")
    second = registration.register("team")
    assert second["action"] == "updated" and second["hook"]["id"] == first["hook"]["id"]
    assert len(host.hooks[REPOS[host.provider][1]]) == 1 and len(host.calls("POST")) == 1
    [update] = host.calls("PUT" if host.provider == "gitlab" else "PATCH")
    assert update.path == f"{_hooks_path(host.provider)}/{first['hook']['id']}"
    expected = _expected_body(host.provider)
    if host.provider == "github":
        expected.pop("name")  # PATCH /repos/{o}/{r}/hooks/{id} takes no name
    if host.provider == "gitea":
        expected.pop("type")  # nor does Gitea's EditHookOption
    assert update.body == expected


def test_a_rotated_secret_reaches_the_host_and_a_repository_secret_wins(host, monkeypatch):
    registration.register("team")
    env_connection(monkeypatch, "team_hook", password=REPO_SECRET)
    update_repository("team", webhook_conn_id="team_hook", verify=False)
    answer = registration.register("team")
    update = host.writes()[-1]
    expected = {k: v for k, v in _expected_body(host.provider, REPO_SECRET).items() if k not in ("name", "type")}
    assert update.body == expected
    assert answer["secret_conn_id"] == "team_hook" and REPO_SECRET not in json.dumps(answer)


def test_other_hooks_are_left_alone_and_ours_is_found_on_a_later_page(host):
    project = REPOS[host.provider][1]
    for n in range(3):  # someone else's hooks (CI, chat) come first
        other = _expected_body(host.provider)
        other = json.loads(
            json.dumps(other).replace(f"{BASE}/pluginsv2/dagops/api/v1/webhooks", f"https://ci{n}.example")
        )
        host._new_hook(project, other)
    registration.register("team")
    host.page_size = 2
    host.requests.clear()
    answer = registration.register("team")
    assert answer["action"] == "updated"
    assert len(host.calls("GET", "/hooks")) == 2  # two pages, following Link: rel="next"
    assert len(host.hooks[project]) == 4 and not host.calls("DELETE")


def test_unregister_deletes_only_ours_and_is_idempotent(host):
    project = REPOS[host.provider][1]
    registration.register("team")
    host._new_hook(project, json.loads(json.dumps(_expected_body(host.provider)).replace(BASE, "https://ci.example")))
    answer = registration.unregister("team")
    assert answer["action"] == "deleted" and len(answer["deleted"]) == 1
    [delete] = host.calls("DELETE")
    assert delete.path == f"{_hooks_path(host.provider)}/{answer['deleted'][0]}"
    assert len(host.hooks[project]) == 1  # the other hook stays
    again = registration.unregister("team")
    assert again["action"] == "absent" and len(host.calls("DELETE")) == 1


def test_a_token_without_the_scope_is_a_clear_error_naming_it(host, monkeypatch):
    git_connection(monkeypatch, "team_git", WEAK_TOKEN, api_url=host.url)
    with pytest.raises(HostPermissionDenied) as caught:
        registration.register("team")
    needed = {"github": "admin:repo_hook", "gitlab": "Maintainer", "gitea": "write:repository"}[host.provider]
    assert needed in str(caught.value) and "team_git" in str(caught.value)
    assert caught.value.http_status == 422 and caught.value.code == "host_permission_denied"
    assert WEAK_TOKEN not in str(caught.value)
    assert not host.calls("POST") and not host.hooks.get(REPOS[host.provider][1])


def test_an_unknown_token_and_an_unknown_repository(host, monkeypatch):
    git_connection(monkeypatch, "team_git", "tok-revoked", api_url=host.url)
    with pytest.raises(HostApiError, match="wrong or expired") as caught:
        registration.register("team")
    assert "tok-revoked" not in str(caught.value)
    git_connection(monkeypatch, "team_git", TOKEN, api_url=host.url)
    host.repos.clear()
    with pytest.raises(NotFound, match="knows no repository"):
        registration.register("team")


def test_what_is_missing_is_said_before_anything_is_sent(host, monkeypatch):
    monkeypatch.delenv("AIRFLOW__API__BASE_URL")
    with pytest.raises(InvalidInput, match=r"\[api\] base_url is not set"):
        registration.register("team")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE)
    monkeypatch.delenv("AIRFLOW_CONN_DAGOPS_WEBHOOK")
    with pytest.raises(ConnectionMissing, match="'dagops_webhook'.*has no password"):
        registration.register("team")
    update_repository("team", conn_id=None, verify=False)
    with pytest.raises(InvalidInput, match="no Airflow connection"):
        registration.register("team")
    assert host.requests == []


def test_the_token_goes_only_to_the_host_its_connection_is_attached_for(dagops_env, monkeypatch, git_host):  # noqa: F811
    fake = git_host("github")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE)
    env_connection(monkeypatch, "dagops_webhook", password=GLOBAL_SECRET)
    git_connection(monkeypatch, "team_git", TOKEN)  # no api_url: the API is the repository's own host
    add_repository("team", "https://github.com/acme/dags.git", conn_id="team_git", verify=False)
    update_repository("team", url="https://github.evil.example/acme/dags.git", verify=False)  # the URL only
    with pytest.raises(CredentialHostRefused):
        registration.register("team")
    assert fake.requests == []


def test_check_reports_the_hosts_last_deliveries(host):
    answer = registration.register("team")
    hook_id = answer["hook"]["id"]
    if host.provider == "github":
        host.deliveries[hook_id] = [
            {"id": 2, "guid": "g-2", "delivered_at": "2026-05-01T10:01:00Z", "redelivery": False, "duration": 0.3,
             "status": "Invalid HTTP Response: 401", "status_code": 401, "event": "push", "action": None},
            {"id": 1, "guid": "g-1", "delivered_at": "2026-05-01T10:00:00Z", "redelivery": False, "duration": 0.2,
             "status": "OK", "status_code": 202, "event": "pull_request", "action": "opened"},
        ]  # fmt: skip
    elif host.provider == "gitlab":
        host.deliveries[hook_id] = [
            {"id": 7, "url": answer["url"], "trigger": "push_hooks", "response_status": 202,
             "execution_duration": 0.1, "created_at": "2026-05-01T10:00:00Z"},
        ]  # fmt: skip
    result = registration.check("team")
    assert result["registered"] and result["hook"]["id"] == hook_id
    if host.provider == "github":
        assert [(d["event"], d["status_code"], d["ok"]) for d in result["deliveries"]] == [
            ("push", 401, False),
            ("pull_request.opened", 202, True),
        ]
        assert host.calls("GET", f"/hooks/{hook_id}/deliveries")
    elif host.provider == "gitlab":
        assert [(d["event"], d["status_code"]) for d in result["deliveries"]] == [("push_hooks", 202)]
        assert host.calls("GET", f"/hooks/{hook_id}/events")
    else:
        assert not result["deliveries_available"] and "does not list" in result["unavailable_reason"]


def test_check_without_a_hook_and_an_older_gitlab(host):
    result = registration.check("team")
    assert not result["registered"] and "dagops webhooks register team" in result["unavailable_reason"]
    if host.provider == "gitlab":
        host.events_api = False
        registration.register("team")
        result = registration.check("team")
        assert result["registered"] and not result["deliveries_available"]
        assert "GitLab 17.0" in result["unavailable_reason"]
