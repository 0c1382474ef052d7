"""`dagops webhooks show REPO`: what to paste into the Git host's webhook form, never the secret."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from airflow_dagops.cli.webhooks import app
from airflow_dagops.repositories.registry import add_repository
from tests.webhooks.conftest import GLOBAL_SECRET, REPO_SECRET, env_connection

runner = CliRunner()


def test_show_prints_url_content_type_events_and_the_connection_id(dagops_env, monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    env_connection(monkeypatch, "dagops_webhook", password=GLOBAL_SECRET)
    add_repository("team", "git@github.com:acme/dags.git", conn_id="github_team", verify=False)
    result = runner.invoke(app, ["show", "team"])
    assert result.exit_code == 0, result.output
    assert "https://airflow.example.com/pluginsv2/dagops/api/v1/webhooks/github" in result.output
    assert "application/json" in result.output and "Pushes, Pull requests" in result.output
    assert "'dagops_webhook' (the global webhook secret)" in result.output
    assert "'github_team' sets commit statuses" in result.output
    assert "Note:" not in result.output  # base URL and secret are both there
    assert GLOBAL_SECRET not in result.output


def test_show_with_a_repository_secret_as_json(dagops_env, monkeypatch):
    env_connection(monkeypatch, "team_hook", password=REPO_SECRET)
    add_repository("team", "https://gitlab.example.com/group/dags.git", webhook_conn_id="team_hook", verify=False)
    result = runner.invoke(app, ["show", "team", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["provider"] == "gitlab" and info["events"] == ["Push events", "Tag push events", "Merge request events"]
    assert info["secret_conn_id"] == "team_hook" and info["secret_scope"] == "repository" and info["secret_exists"]
    assert REPO_SECRET not in result.output


def test_show_says_what_is_missing(dagops_env, monkeypatch):
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    add_repository("team", "https://git.internal/acme/dags.git", verify=False)
    unknown = runner.invoke(app, ["show", "team"])
    assert unknown.exit_code == 0 and "git.internal is not a host dagops knows" in unknown.output
    assert "--provider github|gitlab|gitea|bitbucket" in unknown.output
    result = runner.invoke(app, ["show", "team", "--provider", "gitea"])
    assert result.exit_code == 0, result.output
    assert "http://localhost:8080/pluginsv2/dagops/api/v1/webhooks/gitea" in result.output
    assert "[api] base_url is not set" in result.output
    assert "airflow connections add dagops_webhook --conn-type generic --conn-password" in result.output
    assert "no connection, so pull-request checks cannot report" in result.output
    missing = runner.invoke(app, ["show", "nope"])
    assert missing.exit_code == 1 and "no repository named 'nope'" in missing.output
