"""The credentials routes of the REST API, through the real /pluginsv2 Flask app and both auth managers:
test access, deploy key, the two-step SSH rotation, permissions, and no secret in any answer."""

from __future__ import annotations

from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository
from tests.credentials.conftest import TOKEN, assert_no_secret, connection_ids, stored_connection
from tests.helpers.servers import new_key_pair

BASE = "repositories/team/credentials"


def _register(url: str, conn_id: str | None, name: str = "team") -> None:
    add_repository(name, url, conn_id=conn_id, verify=False)


def test_test_access_answers_the_verdict_for_each_case(web, ssh, env_conn):
    _register(ssh.url, env_conn(extra=ssh.extra()))
    ok = web.api("POST", f"{BASE}/test")
    assert ok.status_code == 200 and ok.get_json()["ok"] and ok.get_json()["commit"] == ssh.head
    stranger = env_conn(extra=ssh.extra(new_key_pair()))
    failed = web.api("POST", f"{BASE}/test", json={"conn_id": stranger}).get_json()
    assert (failed["ok"], failed["kind"], failed["conn_id"]) == (False, "authentication_failed", stranger)
    assert "deploy key" in failed["hint"]
    other = web.api("POST", f"{BASE}/test", as_="editor", json={"conn_id": stranger})
    assert other.status_code == 403  # another connection's secret: needs Airflow's connection right
    assert web.api("POST", f"{BASE}/test", as_="editor").status_code == 200  # its own connection: DAG edit is enough
    assert web.api("POST", "repositories/nope/credentials/test").status_code == 404
    assert web.api("POST", f"{BASE}/test", json={"conn_id": 3}).status_code == 422
    assert web.api("POST", f"{BASE}/test", as_="reader").status_code == 403  # a write: it runs git
    assert web.api("POST", f"{BASE}/test", as_=None).status_code == 401


def test_deploy_key_is_public_only_and_404_without_an_ssh_key(web, ssh, http, env_conn):
    _register(ssh.url, env_conn(extra=ssh.extra()))
    response = web.api("GET", f"{BASE}/deploy-key", as_="reader")
    assert response.status_code == 200
    assert response.get_json()["public_key"] == " ".join(ssh.user_key.public.split()[:2])
    _register(http.url("team.git"), env_conn(password=TOKEN), name="web")
    missing = web.api("GET", "repositories/web/credentials/deploy-key")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    assert_no_secret({"deploy-key": response.get_data(as_text=True)}, [ssh.user_key.private])


def test_rotation_in_two_steps_switches_only_after_access_works(web, ssh, airflow_db):
    old = airflow_db(extra=ssh.extra())
    _register(ssh.url, old)
    assert web.api("POST", f"{BASE}/rotate", as_="editor").status_code == 403  # may edit DAGs, not connections
    started = web.api("POST", f"{BASE}/rotate")
    assert started.status_code == 201, started.get_json()
    pending = started.get_json()
    assert (
        pending["kind"] == "ssh_key" and pending["replaces"] == old and pending["public_key"].startswith("ssh-ed25519")
    )

    early = web.api("POST", f"{BASE}/rotate/confirm", json={"rotation_id": pending["rotation_id"]})
    assert early.status_code == 422 and early.get_json()["error"]["code"] == "access_failed"
    assert early.get_json()["error"]["details"]["access"]["kind"] == "authentication_failed"
    assert get_repository("team").conn_id == old

    ssh.server.authorize(pending["public_key"])
    confirmed = web.api("POST", f"{BASE}/rotate/confirm", json={"rotation_id": pending["rotation_id"], "wait": 5})
    assert confirmed.status_code == 200, confirmed.get_json()
    outcome = confirmed.get_json()
    assert outcome["status"] == "switched" and outcome["conn_id"] == pending["conn_id"] and outcome["old_conn_removed"]
    assert get_repository("team").conn_id == pending["conn_id"] and stored_connection(old) is None
    key = web.api("GET", f"{BASE}/deploy-key").get_json()["public_key"]
    assert key in pending["public_key"]

    again = web.api("POST", f"{BASE}/rotate").get_json()
    aborted = web.api("POST", f"{BASE}/rotate/confirm", json={"rotation_id": again["rotation_id"], "abort": True})
    assert aborted.status_code == 200 and aborted.get_json()["status"] == "aborted"
    assert again["conn_id"] not in connection_ids()
    unknown = web.api("POST", f"{BASE}/rotate/confirm", json={"rotation_id": "not_pending"})
    assert unknown.status_code == 404

    new_private = stored_connection(pending["conn_id"])[1]["private_key"]
    texts = {name: response.get_data(as_text=True) for name, response in (("started", started), ("early", early))}
    texts.update(confirmed=confirmed.get_data(as_text=True), aborted=aborted.get_data(as_text=True))
    assert_no_secret(texts, [ssh.user_key.private, new_private])


def test_rotating_a_token_repository_through_the_api_is_refused_with_the_cli_way(web, http, airflow_db):
    _register(http.url("team.git"), airflow_db(login="bot", password=TOKEN))
    response = web.api("POST", f"{BASE}/rotate")
    assert response.status_code == 422 and "--token-file" in response.get_json()["error"]["message"]


def test_the_routes_are_documented(web):
    paths = web.api("GET", "openapi.json").get_json()["paths"]
    assert set(paths["/repositories/{name}/credentials/test"]) == {"post"}
    assert set(paths["/repositories/{name}/credentials/deploy-key"]) == {"get"}
    assert set(paths["/repositories/{name}/credentials/rotate"]) == {"post"}
    assert set(paths["/repositories/{name}/credentials/rotate/confirm"]) == {"post"}
