"""POST /repositories/{name}/deploy and GET /repositories/{name}/diff, for each auth manager and state DB.

A deploy creates a real `dagops_deploy` run in the session's Airflow DB; the run's own work is done here by
calling what its task calls (`versions_service.run_action` with the run's conf), as test_api.py does for syncs.
"""

from __future__ import annotations

import json

import pytest

from airflow_dagops.api import auth
from airflow_dagops.api.blueprint import PREFIX
from airflow_dagops.releases import versions as versions_service
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.sync.sync import sync_repository
from tests.releases.test_diff import DAG_A_V1, DAG_A_V2, DAG_B


@pytest.fixture
def two_releases(web, git_remote, monkeypatch):
    """Repository `team`: release 1 (a.py), release 2 (a.py changed + b.py) live; structure step on."""
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")
    remote = git_remote({"dags/a.py": DAG_A_V1})
    created = web.api("POST", "repositories", json={"name": "team", "url": remote.url})
    assert created.status_code == 201, created.get_json()
    first = remote.head()
    sync_repository("team")
    second = remote.commit("second", {"dags/a.py": DAG_A_V2, "dags/b.py": DAG_B})
    sync_repository("team")
    return remote, first, second


def _deploy_runs() -> dict[str, dict]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(DagRun.run_id, DagRun.conf).where(DagRun.dag_id == "dagops_deploy")).all()
    return {run_id: json.loads(conf) if isinstance(conf, str) else conf for run_id, conf in rows}


def _error(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"}, body
    return body["error"]


def test_diff_between_two_releases(web, two_releases):
    _remote, first, second = two_releases
    response = web.api("GET", f"repositories/team/diff?from={first[:10]}&to={second[:10]}", as_="reader")
    assert response.status_code == 200, response.get_json()
    diff = response.get_json()
    assert diff["complete"] and diff["notes"] == []
    assert (diff["from"]["commit"], diff["to"]["commit"]) == (first, second)
    assert diff["dags_added"] == ["b"] and diff["dags_removed"] == []
    assert diff["changed"] == {"a": {"tasks_added": ["z"], "schedule": ["@daily", "@hourly"]}}
    by_id = web.api("GET", f"repositories/team/diff?from={diff['to']['id']}&to={diff['from']['id']}").get_json()
    assert by_id["dags_removed"] == ["b"] and by_id["changed"]["a"]["tasks_removed"] == ["z"]


def test_diff_refuses_missing_or_unknown_releases(web, two_releases):
    _remote, first, _second = two_releases
    missing = web.api("GET", f"repositories/team/diff?from={first[:10]}")
    assert missing.status_code == 422 and _error(missing)["code"] == "invalid_query"
    unknown = web.api("GET", f"repositories/team/diff?from={first[:10]}&to=deadbeef00")
    assert unknown.status_code == 404 and _error(unknown)["code"] == "not_found"
    garbage = web.api("GET", "repositories/team/diff?from=main&to=1")
    assert garbage.status_code == 422 and _error(garbage)["code"] == "invalid_input"
    nobody = web.api("GET", "repositories/nope/diff?from=1&to=2")
    assert nobody.status_code == 404


def test_deploy_dry_run_answers_the_diff_and_changes_nothing(web, two_releases):
    _remote, first, second = two_releases
    log_before, runs_before = versions_service.deploy_log("team"), _deploy_runs()
    response = web.api("POST", "repositories/team/deploy", json={"version": first[:10], "dry_run": True})
    assert response.status_code == 200, response.get_json()
    diff = response.get_json()
    assert diff["to"]["commit"] == first and diff["dags_removed"] == ["b"]
    assert get_repository("team").live_commit == second
    assert versions_service.deploy_log("team") == log_before
    assert _deploy_runs() == runs_before

    never_validated = web.api("POST", "repositories/team/deploy", json={"version": "v9.9", "dry_run": True})
    assert never_validated.status_code == 404 and "deploy it to validate it" in _error(never_validated)["message"]


def test_deploy_creates_a_dagops_deploy_run_that_deploys_and_pins(web, two_releases):
    remote, first, second = two_releases
    response = web.api("POST", "repositories/team/deploy", json={"version": first}, as_="editor")
    assert response.status_code == 202, response.get_json()
    accepted = response.get_json()
    assert accepted["repository"] == "team" and accepted["version"] == first
    conf = _deploy_runs()[accepted["airflow_run_id"]]
    assert conf == {"repository": "team", "action": "deploy", "version": first, "requested_by": "editor"}
    assert accepted["links"]["airflow_run"].endswith(accepted["airflow_run_id"])
    assert get_repository("team").live_commit == second  # nothing moves until the run does it

    # What the dagops_deploy task does with that conf: the service `dagops deploy` calls.
    versions_service.run_action(conf, actor=f"airflow:{accepted['airflow_run_id']}")
    repository = web.api("GET", "repositories/team").get_json()
    assert repository["live"]["commit"] == first and repository["pinned_release_id"] == repository["live"]["release_id"]


def test_deploy_refuses_bad_input_and_missing_rights(web, two_releases):
    _remote, first, _second = two_releases
    runs_before = _deploy_runs()
    for body in ({}, {"version": ""}, {"version": first, "extra": 1}, {"version": first, "dry_run": "yes"}):
        refused = web.api("POST", "repositories/team/deploy", json=body)
        assert refused.status_code == 422 and _error(refused)["code"] == "invalid_body", body
    option = web.api("POST", "repositories/team/deploy", json={"version": "--upload-pack=evil"})
    assert option.status_code == 422 and _error(option)["code"] == "invalid_input"
    unknown = web.api("POST", "repositories/nope/deploy", json={"version": first})
    assert unknown.status_code == 404
    reader = web.api("POST", "repositories/team/deploy", json={"version": first}, as_="reader")
    assert reader.status_code == 403
    assert _deploy_runs() == runs_before  # nothing was asked of Airflow


def test_deploy_with_the_cookie_needs_the_csrf_header(web, two_releases):
    _remote, first, _second = two_releases
    token = web.sign_in_with_cookie("admin")
    body = {"version": first, "dry_run": True}
    refused = web.client.post(f"{PREFIX}/repositories/team/deploy", json=body)
    assert refused.status_code == 403 and _error(refused)["code"] == "csrf_failed"
    principal = auth.Principal(user=None, name="admin", token=token, via_cookie=True)
    with web.app.test_request_context():
        csrf = auth.csrf_token_for(principal)
    accepted = web.client.post(f"{PREFIX}/repositories/team/deploy", json=body, headers={auth.CSRF_HEADER: csrf})
    assert accepted.status_code == 200


def test_both_routes_are_in_the_openapi_document(web):
    document = web.api("GET", "openapi.json").get_json()
    assert document["paths"]["/repositories/{name}/deploy"]["post"]["requestBody"]
    assert {p["name"] for p in document["paths"]["/repositories/{name}/diff"]["get"]["parameters"]} == {
        "name",
        "from",
        "to",
    }
    assert "DeployRequest" in document["components"]["schemas"]
