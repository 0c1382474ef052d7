"""Alerts and release health on the REST API: the releases list carries each release's run health, a route
compares a release with the previous one, another shows the alert state; only an admin sets `alerts`."""

from __future__ import annotations

from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.alerts.conftest import WEBHOOK_ALERTS
from tests.alerts.test_auto_rollback import _runs
from tests.helpers.repos import dag_source


def test_release_health_on_the_api(web, git_remote):
    remote = git_remote({"dags/etl.py": dag_source("etl")})
    add_repository("team", remote.url)
    first = sync_repository("team").release_id
    remote.commit("second", {"dags/etl.py": dag_source("etl") + "\n# v2\n"})
    second = sync_repository("team").release_id
    _runs(second, "success", "failed")

    page = web.api("GET", "repositories/team/releases", as_="reader").get_json()["items"]
    by_id = {release["id"]: release["run_health"] for release in page}
    assert by_id[first] is None
    assert by_id[second]["runs"] == 2 and by_id[second]["success_rate"] == 0.5
    assert by_id[second]["previous"]["release_id"] == first

    answer = web.api("GET", "repositories/team/release-health", as_="reader")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["release"]["release_id"] == second
    older = web.api("GET", f"repositories/team/release-health?release={first}", as_="reader").get_json()
    assert older["release"]["runs"] == 0
    assert web.api("GET", "repositories/team/release-health?release=x", as_="reader").status_code == 422
    assert web.api("GET", "repositories/nope/release-health", as_="reader").status_code == 404


def test_only_an_admin_sets_alerts_through_the_api(web, git_remote):
    add_repository("team", git_remote().url)
    refused = web.api("PATCH", "repositories/team", as_="editor", json={"alerts": WEBHOOK_ALERTS})
    assert refused.status_code == 403, refused.get_json()
    bad = web.api("PATCH", "repositories/team", json={"alerts": {"notifiers": [{"notifier": "os.system"}]}})
    assert bad.status_code == 422 and "notifications package" in bad.get_json()["error"]["message"]
    done = web.api(
        "PATCH", "repositories/team", json={"alerts": WEBHOOK_ALERTS, "auto_rollback": {"max_failure_rate": 0.2}}
    )
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["auto_rollback"] == {"max_failure_rate": 0.2, "min_runs": 3}
    shown = web.api("GET", "repositories/team/alerts", as_="reader").get_json()
    assert shown["alerts"]["notifiers"] == WEBHOOK_ALERTS["notifiers"] and shown["state"] is None
