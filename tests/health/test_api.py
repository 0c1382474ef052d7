"""The monitoring routes (GET /health, /health/{name}, /metrics) and the health in the repository payload the page
shows, through the /pluginsv2 Flask app, for each auth manager and state DB. No browser: a scraper's token or an
Airflow JWT in an Authorization header. The Prometheus text is read back with prometheus_client's own parser."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

import airflow_dagops.api.health  # noqa: F401  (routes on the blueprint before the app is built)
from airflow_dagops.health.prometheus import FAMILIES
from airflow_dagops.sync.sync import sync_repository
from tests.health.test_health import BROKEN

TOKEN = "prom-scraper-" + "7f3a9c" * 4  # noqa: S105 (a test token)


@pytest.fixture
def team(web, git_remote, monkeypatch):
    """Repository `team` live at its first commit, then three commits that fail validation: failing."""
    monkeypatch.setenv("AIRFLOW__DAGOPS__METRICS_TOKEN", TOKEN)
    remote = git_remote()
    created = web.api("POST", "repositories", json={"name": "team", "url": remote.url})
    assert created.status_code == 201, created.get_json()
    assert sync_repository("team").status == "published"
    for number in range(3):
        remote.commit(f"broken {number}", {"dags/broken.py": BROKEN + f"# {number}\n"})
        assert sync_repository("team").status == "failed"
    return remote


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_health_without_credentials_says_only_whether_dagops_can_work(web, team):
    body = web.api("GET", "health", as_=None).get_json()
    assert body["status"] == "ok" and "repositories" not in body and "overall" not in body
    wrong = web.api("GET", "health", as_=None, headers=_bearer("not-the-token")).get_json()
    assert "repositories" not in wrong


@pytest.mark.parametrize("who", ["token", "reader"])
def test_health_with_the_token_or_a_login_lists_every_repository(web, team, who):
    credentials = {"as_": None, "headers": _bearer(TOKEN)} if who == "token" else {"as_": who}
    response = web.api("GET", "health", **credentials)
    assert response.status_code == 200
    body = response.get_json()
    assert body["overall"] == "failing" and body["counts"]["failing"] == 1
    (repo,) = body["repositories"]
    assert (repo["repository"], repo["state"], repo["reason"], repo["consecutive_failures"]) == (
        "team",
        "failing",
        "validation",
        3,
    )
    assert repo["since"] and repo["last_failure"]["code"] == "validation_failed"


def test_health_of_one_repository_needs_the_token_or_a_login(web, team):
    assert web.api("GET", "health/team", as_=None).status_code == 401
    assert web.api("GET", "health/team", as_=None, headers=_bearer("nope")).status_code == 401
    one = web.api("GET", "health/team", as_=None, headers=_bearer(TOKEN))
    assert one.status_code == 200 and one.get_json()["state"] == "failing"
    assert web.api("GET", "health/team", as_="reader").get_json()["reason"] == "validation"
    missing = web.api("GET", "health/nothere", as_=None, headers=_bearer(TOKEN))
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_the_token_opens_the_monitoring_routes_only(web, team):
    assert web.api("GET", "repositories", as_=None, headers=_bearer(TOKEN)).status_code == 401
    assert web.api("POST", "repositories/team/sync", as_=None, headers=_bearer(TOKEN), json={}).status_code == 401


def test_the_repository_payload_carries_its_health_for_the_page(web, team):
    listed = web.api("GET", "repositories").get_json()["items"][0]
    assert listed["health"]["state"] == "failing" and listed["health"]["reason"] == "validation"
    assert listed["health"]["since"] and "3 syncs in a row failed" in listed["health"]["message"]
    one = web.api("GET", "repositories/team").get_json()
    assert one["health"] == listed["health"]
    json.dumps(listed)  # plain JSON all the way


def test_metrics_are_prometheus_text_computed_from_the_state_db(web, team):
    assert web.api("GET", "metrics", as_=None).status_code == 401
    response = web.api("GET", "metrics", as_=None, headers=_bearer(TOKEN))
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert set(families) == set(FAMILIES)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}

    def value(name: str, **labels) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("dagops_sync_runs_total", repository="team", status="success", reason="none") == 1
    assert value("dagops_sync_runs_total", repository="team", status="failed", reason="validation") == 3
    assert value("dagops_sync_duration_seconds_count", repository="team", status="failed") == 3
    assert value("dagops_sync_duration_seconds_bucket", repository="team", status="failed", le="+Inf") == 3
    assert value("dagops_commit_to_live_seconds_count", repository="team") == 1
    assert value("dagops_validation_findings", repository="team", severity="error") >= 1
    assert value("dagops_repository_health", repository="team", state="failing") == 1
    assert value("dagops_repository_health", repository="team", state="ok") == 0
    assert value("dagops_repository_consecutive_failures", repository="team") == 3
    assert value("dagops_sync_pending") == 0
    assert value("dagops_release_live_age_seconds", repository="team") >= 0
    # Bounded labels only: no commit sha, no release or run id anywhere.
    label_values = {v for f in families.values() for s in f.samples for v in s.labels.values()}
    assert not any(team.head()[:7] in v for v in label_values)
    assert web.api("GET", "metrics", as_="reader").status_code == 200
