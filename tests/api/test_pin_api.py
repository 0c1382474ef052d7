"""The one rule for pins through the REST API (airflow_dagops/releases/pins.py): a rollback or deploy of a pinned
repository moves its pin to the release made live, and every read (the repository, its releases, one release)
says the same; a sync of a new commit on a pinned repository leaves live alone."""

from __future__ import annotations

import pytest

from airflow_dagops.releases import versions as versions_service
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.pins import assert_live_and_pinned
from tests.helpers.repos import dag_source
from tests.helpers.web import airflow_runs_of_sync_dag


@pytest.fixture
def team(web, git_remote):
    """`team` registered through the API with two good releases, the second live: (remote, first, second) as
    release dicts of the API."""
    remote = git_remote({"dags/a.py": dag_source("a")})
    created = web.api("POST", "repositories", json={"name": "team", "url": remote.url})
    assert created.status_code == 201, created.get_json()
    sync_repository("team")
    remote.commit("second", {"dags/b.py": dag_source("b")})
    sync_repository("team")
    second, first = web.api("GET", "repositories/team/releases").get_json()["items"]
    return remote, first, second


def _reads_agree(web, release_id: int) -> None:
    """What the page's header, its releases table and one release's view read from the API: one live, one pin."""
    repository = web.api("GET", "repositories/team", as_="reader").get_json()
    assert repository["status"] == "pinned"
    assert repository["live"]["release_id"] == repository["pinned_release_id"] == release_id
    items = web.api("GET", "repositories/team/releases", as_="reader").get_json()["items"]
    assert [r["id"] for r in items if r["status"] == "live"] == [r["id"] for r in items if r["pinned"]] == [release_id]
    one = web.api("GET", f"releases/{release_id}", as_="reader").get_json()
    assert one["status"] == "live" and one["pinned"] is True
    assert_live_and_pinned("team", release_id)  # and the CLI's reads and the namespace link


def test_a_rest_rollback_of_a_pinned_repository_moves_the_pin(web, team, dagops_env):
    _remote, first, second = team
    pinned = web.api("POST", "repositories/team/pin", json={}, as_="editor")
    assert pinned.status_code == 200 and pinned.get_json()["pinned_release_id"] == second["id"]

    rolled = web.api("POST", "repositories/team/rollback", json={"release": first["id"]}, as_="editor")
    assert rolled.status_code == 200, rolled.get_json()
    body = rolled.get_json()
    assert body["live"]["release_id"] == body["pinned_release_id"] == first["id"] and body["status"] == "pinned"
    _reads_agree(web, first["id"])
    assert not (dagops_env.dags_folder / "team" / "dags" / "b.py").exists()

    # "pin": false does not unpin: only unpin does (the pin follows the release made live).
    forward = web.api("POST", "repositories/team/rollback", json={"release": second["commit"], "pin": False})
    assert forward.status_code == 200 and forward.get_json()["pinned_release_id"] == second["id"]
    _reads_agree(web, second["id"])


def test_a_sync_now_on_a_pinned_repository_does_not_change_live(web, team):
    remote, first, _second = team
    web.api("POST", "repositories/team/pin", json={"release": first["id"]})
    remote.commit("third", {"dags/c.py": dag_source("c")})
    accepted = web.api("POST", "repositories/team/sync", json={})
    assert accepted.status_code == 202, accepted.get_json()
    run_id = accepted.get_json()["airflow_run_id"]
    assert run_id in {run["run_id"] for run in airflow_runs_of_sync_dag()}
    assert sync_repository("team", trigger="manual", airflow_run_id=run_id).status == "pinned"  # the task's work
    _reads_agree(web, first["id"])


def test_a_rest_deploy_of_a_pinned_repository_moves_the_pin(web, team):
    """POST deploy creates a dagops_deploy run; its task's work (run_action with the run's conf) is done here."""
    _remote, first, _second = team
    web.api("POST", "repositories/team/pin", json={})
    accepted = web.api("POST", "repositories/team/deploy", json={"version": first["commit"]}, as_="editor")
    assert accepted.status_code == 202, accepted.get_json()
    conf = {"repository": "team", "action": "deploy", "version": first["commit"]}
    versions_service.run_action(conf, actor=f"airflow:{accepted.get_json()['airflow_run_id']}")
    _reads_agree(web, first["id"])
