"""Webhook registration through its faces: `dagops webhooks register|unregister|check` and the REST routes
(POST/DELETE /repositories/{name}/webhook/registration, GET .../webhook/deliveries), against a fake GitHub."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from airflow_dagops.cli.webhooks import app
from airflow_dagops.repositories.registry import add_repository
from tests.helpers.git_hosts import git_host  # noqa: F401 - the fixture
from tests.webhooks.conftest import GLOBAL_SECRET, env_connection
from tests.webhooks.test_registration import BASE, TOKEN, WEAK_TOKEN, git_connection

runner = CliRunner()


@pytest.fixture
def github(git_host, dagops_env, monkeypatch):  # noqa: F811 - the fixture imported above
    fake = git_host("github")
    fake.add_repo("acme/dags")
    fake.tokens[TOKEN] = {"admin:repo_hook"}
    fake.tokens[WEAK_TOKEN] = {"repo:status"}
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE)
    env_connection(monkeypatch, "dagops_webhook", password=GLOBAL_SECRET)
    git_connection(monkeypatch, "team_git", TOKEN, api_url=fake.url)
    add_repository("team", "https://github.com/acme/dags.git", conn_id="team_git", verify=False)
    return fake


def test_cli_register_check_unregister(github):
    created = runner.invoke(app, ["register", "team"])
    assert created.exit_code == 0, created.output
    assert "Webhook of 'team' created on github (acme/dags" in created.output
    assert f"{BASE}/pluginsv2/dagops/api/v1/webhooks/github" in created.output
    assert "Secret         set (the password of Airflow connection 'dagops_webhook')" in created.output
    updated = runner.invoke(app, ["register", "team", "--json"])
    assert json.loads(updated.output)["action"] == "updated"
    hook_id = json.loads(updated.output)["hook"]["id"]
    github.deliveries[hook_id] = [
        {"guid": "g-1", "delivered_at": "2026-05-01T10:00:00Z", "status_code": 202, "event": "push", "duration": 0.1}
    ]
    checked = runner.invoke(app, ["check", "team"])
    assert checked.exit_code == 0, checked.output
    assert "2026-05-01T10:00:00Z  push  202 ok" in checked.output
    removed = runner.invoke(app, ["unregister", "team"])
    assert removed.exit_code == 0 and f"hook {hook_id}" in removed.output
    gone = runner.invoke(app, ["check", "team"])
    assert gone.exit_code == 1 and "No webhook of dagops" in gone.output
    for result in (created, updated, checked, removed, gone):
        assert GLOBAL_SECRET not in result.output and TOKEN not in result.output


def test_cli_names_the_missing_scope(github, monkeypatch):
    git_connection(monkeypatch, "team_git", WEAK_TOKEN, api_url=github.url)
    result = runner.invoke(app, ["register", "team"])
    assert result.exit_code == 1
    assert "admin:repo_hook" in result.output and WEAK_TOKEN not in result.output


def test_rest_register_needs_write_and_connections_and_reading_deliveries_needs_read(github, web):
    for role in ("reader", "editor"):  # a DAG editor alone may not act with the connection's admin-scoped token
        refused = web.api("POST", "repositories/team/webhook/registration", json={}, as_=role)
        assert refused.status_code == 403 and not github.hooks.get("acme/dags")
    assert "connection read permission" in refused.get_json()["error"]["message"]
    created = web.api("POST", "repositories/team/webhook/registration", json={"provider": "github"}, as_="admin")
    assert created.status_code == 200, created.get_json()
    body = created.get_json()
    assert body["action"] == "created" and body["secret"] == "set"  # noqa: S105 - the word, not a secret
    assert GLOBAL_SECRET not in created.get_data(as_text=True)
    [post] = github.calls("POST")
    assert post.body["config"]["secret"] == GLOBAL_SECRET and post.body["events"] == ["push", "pull_request"]
    deliveries = web.api("GET", "repositories/team/webhook/deliveries?limit=5", as_="reader")
    assert deliveries.status_code == 200 and deliveries.get_json()["registered"] is True
    assert web.api("DELETE", "repositories/team/webhook/registration", as_="reader").status_code == 403
    assert web.api("DELETE", "repositories/team/webhook/registration", as_="editor").status_code == 403
    deleted = web.api("DELETE", "repositories/team/webhook/registration", as_="admin")
    assert deleted.status_code == 200 and deleted.get_json()["action"] == "deleted"
    assert github.hooks["acme/dags"] == []


def test_rest_answers_for_bad_input(github, web, monkeypatch):
    bad = web.api("POST", "repositories/team/webhook/registration", json={"provider": "bitbucket"}, as_="admin")
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_body"
    assert web.api("GET", "repositories/team/webhook/deliveries?limit=0", as_="reader").status_code == 422
    assert web.api("POST", "repositories/nope/webhook/registration", json={}, as_="admin").status_code == 404
    git_connection(monkeypatch, "team_git", WEAK_TOKEN, api_url=github.url)
    scope = web.api("POST", "repositories/team/webhook/registration", json={}, as_="admin")
    assert scope.status_code == 422, scope.get_json()
    error = scope.get_json()["error"]
    assert error["code"] == "host_permission_denied" and "admin:repo_hook" in error["message"]
    assert error["details"]["needs"].startswith("admin:repo_hook")
    github.server.shutdown()  # the host is down
    github.server.server_close()
    down = web.api("GET", "repositories/team/webhook/deliveries", as_="reader")
    assert down.status_code == 502 and down.get_json()["error"]["code"] == "host_api_failed"
