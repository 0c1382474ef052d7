"""REST API through Flask's test client, for SimpleAuthManager and FabAuthManager, on each state DB.

"Sync Now" creates a real dagops_sync run in the session's Airflow DB; the sync task's own work is done
here by calling the service the task calls (`sync_repository` with the Airflow run id).
"""

from __future__ import annotations

import json

import pytest

from airflow_dagops.api.blueprint import PREFIX, api_blueprint
from airflow_dagops.api.webhooks import webhook_blueprint
from airflow_dagops.sync.sense import empty_trash
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source
from tests.helpers.web import airflow_runs_of_sync_dag

SECRET = "s3cr3t-t0ken-value"


def _register(web, remote, name="team", **extra):
    response = web.api("POST", "repositories", json={"name": name, "url": remote.url, **extra})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _sync_now(web, name="team", **body):
    """What the "Sync Now" button does, then what the dagops_sync task does with that Airflow run."""
    response = web.api("POST", f"repositories/{name}/sync", json=body)
    assert response.status_code == 202, response.get_json()
    run = response.get_json()
    sync_repository(name, trigger="manual", airflow_run_id=run["airflow_run_id"], force=body.get("force"))
    return web.api("GET", f"syncs/{run['id']}").get_json()


def _error(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


def _api_rules():
    """Every (path, method) the blueprint serves, as OpenAPI paths ({name}, {id})."""
    from flask import Flask

    app = Flask("probe")
    app.register_blueprint(api_blueprint)
    app.register_blueprint(webhook_blueprint)
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX):
            continue
        path = rule.rule[len(PREFIX) :].replace("<name>", "{name}").replace("<int:run_id>", "{id}")
        path = path.replace("<provider>", "{provider}")
        path = path.replace("<int:release_id>", "{id}").replace("<int:proposal_id>", "{id}")
        path = path.replace("<int:experiment_id>", "{id}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            yield path, method.lower(), rule


# -- authentication and authorization -------------------------------------------------------------------
def test_health_needs_no_login_and_says_nothing_secret(web):
    response = web.api("GET", "health", as_=None)
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["state_db"] == "ok"
    assert "/" not in json.dumps(body)  # no paths, no URLs


def test_every_route_but_health_answers_401_without_a_token(web):
    checked = 0
    for path, method, _rule in _api_rules():
        if path == "/health":
            continue
        concrete = path.replace("{name}", "team").replace("{id}", "1").replace("{provider}", "github")
        response = web.api(method.upper(), concrete, as_=None, json={})
        assert response.status_code == 401, (method, path, response.status_code)
        assert _error(response)["code"] == "unauthenticated"
        checked += 1
    assert checked >= 16


def test_a_forged_or_garbage_token_is_401(web):
    for header in ("Bearer not-a-jwt", "Bearer " + web.token("admin")[:-4] + "AAAA", "Basic YWRtaW46YWRtaW4="):
        response = web.client.get(f"{PREFIX}/repositories", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_reader_reads_but_cannot_change_anything(web, git_remote):
    _register(web, git_remote({"dags/a.py": dag_source("a")}))
    assert web.api("GET", "repositories", as_="reader").status_code == 200
    assert web.api("GET", "repositories/team", as_="reader").status_code == 200
    for method, path, body in [
        ("POST", "repositories", {"name": "x", "url": "file:///nowhere"}),
        ("PATCH", "repositories/team", {"priority": 1}),
        ("DELETE", "repositories/team", None),
        ("POST", "repositories/team/sync", {}),
        ("POST", "repositories/team/rollback", {"release": 1}),
        ("POST", "repositories/team/pin", {}),
        ("POST", "repositories/team/unpin", {}),
    ]:
        response = web.api(method, path, as_="reader", json=body)
        assert response.status_code == 403, (method, path)
        assert _error(response)["code"] == "forbidden"
    assert web.api("GET", "repositories/team", as_="admin").get_json()["priority"] == 100


def test_editor_may_write(web, git_remote):
    _register(web, git_remote({"dags/a.py": dag_source("a")}))
    response = web.api("PATCH", "repositories/team", as_="editor", json={"priority": 5})
    assert response.status_code == 200 and response.get_json()["priority"] == 5


def test_choosing_a_connection_needs_connection_rights(web, git_remote):
    """Else a DAG editor could point a stored token at a URL of their own."""
    _register(web, git_remote({"dags/a.py": dag_source("a")}))
    for body in ({"conn_id": "prod_git", "verify": False}, {"webhook_conn_id": "other_secret"}):
        response = web.api("PATCH", "repositories/team", as_="editor", json=body)
        assert response.status_code == 403, body
    created = web.api("POST", "repositories", as_="editor", json={"name": "x", "url": "file:///x", "conn_id": "c"})
    assert created.status_code == 403
    assert web.api("GET", "repositories/team").get_json()["conn_id"] is None
    allowed = web.api("PATCH", "repositories/team", as_="admin", json={"conn_id": "prod_git", "verify": False})
    assert allowed.status_code == 200 and allowed.get_json()["conn_id"] == "prod_git"


def test_fab_user_without_plugin_access_cannot_even_read(web):
    if web.auth_manager != "fab":
        pytest.skip("every SimpleAuthManager role may view plugins")
    response = web.api("GET", "repositories", as_="nobody")
    assert response.status_code == 403 and _error(response)["code"] == "forbidden"


def test_cookie_session_needs_the_csrf_header_for_writes(web, git_remote):
    from airflow_dagops.api import auth

    remote = git_remote({"dags/a.py": dag_source("a")})
    web.sign_in_with_cookie("admin")
    assert web.client.get(f"{PREFIX}/repositories").status_code == 200  # reads need no CSRF token
    assert web.client.get(f"{PREFIX}/connections").status_code == 200
    body = {"name": "team", "url": remote.url}
    refused = web.client.post(f"{PREFIX}/repositories", json=body)
    assert refused.status_code == 403 and _error(refused)["code"] == "csrf_failed"
    wrong = web.client.post(f"{PREFIX}/repositories", json=body, headers={auth.CSRF_HEADER: "0" * 64})
    assert wrong.status_code == 403
    assert web.client.get(f"{PREFIX}/repositories").get_json()["total"] == 0  # nothing was created

    principal = auth.Principal(user=None, name="admin", token=web.token("admin"), via_cookie=True)
    with web.app.test_request_context():
        token = auth.csrf_token_for(principal)
    accepted = web.client.post(f"{PREFIX}/repositories", json=body, headers={auth.CSRF_HEADER: token})
    assert accepted.status_code == 201, accepted.get_json()


# -- input errors -----------------------------------------------------------------------------------------
def test_malformed_json_is_400_and_changes_nothing(web):
    response = web.api("POST", "repositories", data=b'{"name": "team", "url": ', content_type="application/json")
    assert response.status_code == 400 and _error(response)["code"] == "malformed_json"
    assert web.api("GET", "repositories").get_json()["total"] == 0


def test_oversized_body_is_413(web):
    body = json.dumps({"name": "team", "url": "file:///x" + "a" * 70_000})
    response = web.api("POST", "repositories", data=body, content_type="application/json")
    assert response.status_code == 413 and _error(response)["code"] == "body_too_large"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "file:///x"}, "name"),
        ({"name": "team"}, "url"),
        ({"name": "Team!", "url": "file:///x"}, "name"),
        ({"name": "team", "url": "file:///x", "priority": "high"}, "priority"),
        ({"name": "team", "url": "file:///x", "colour": "blue"}, "colour"),
        ([1, 2], ""),
    ],
)
def test_bad_bodies_are_422_with_the_field(web, body, field):
    response = web.api("POST", "repositories", json=body)
    assert response.status_code == 422
    error = _error(response)
    assert error["code"] == "invalid_body"
    assert field in [e["field"] for e in error["details"]["errors"]]


def test_dangerous_urls_and_refs_are_refused_with_words(web):
    for body, words in [
        ({"name": "team", "url": "ext::sh%20-c%20touch"}, "never allowed"),
        ({"name": "team", "url": "-u/evil"}, "must not"),
        ({"name": "team", "url": "file:///x", "ref": "--upload-pack=evil", "verify": False}, "ref"),
    ]:
        response = web.api("POST", "repositories", json=body)
        assert response.status_code == 422, body
        assert words in _error(response)["message"]
    assert web.api("GET", "repositories").get_json()["total"] == 0


def test_credentials_in_a_url_are_refused_and_never_echoed(web):
    url = f"https://deploy:{SECRET}@git.example.com/team/dags.git"
    response = web.api("POST", "repositories", json={"name": "team", "url": url, "verify": False})
    assert response.status_code == 422
    assert SECRET not in response.get_data(as_text=True)
    assert "connection" in _error(response)["message"]


def test_unreachable_remote_is_422_and_registers_nothing(web, tmp_path):
    response = web.api("POST", "repositories", json={"name": "team", "url": f"file://{tmp_path}/missing"})
    assert response.status_code == 422
    assert _error(response)["code"] in ("remote_unreachable", "git_error")
    assert web.api("GET", "repositories").get_json()["total"] == 0


def test_unknown_repository_release_and_sync_are_404(web):
    for path in ("repositories/ghost", "repositories/ghost/syncs", "releases/999", "syncs/999"):
        response = web.api("GET", path)
        assert response.status_code == 404, path
        assert _error(response)["code"] == "not_found"
    assert web.api("POST", "repositories/ghost/sync", json={}).status_code == 404


def test_unknown_api_path_and_wrong_method_answer_in_the_envelope(web):
    assert _error(web.api("GET", "no/such/thing"))["code"] == "not_found"
    response = web.api("PUT", "repositories")
    assert response.status_code == 405 and _error(response)["code"] == "method_not_allowed"


def test_bad_paging_is_422(web):
    for query in ("limit=0", "limit=201", "limit=ten", "offset=-1"):
        response = web.api("GET", f"repositories?{query}")
        assert response.status_code == 422, query


# -- repositories -------------------------------------------------------------------------------------------
def test_create_get_list_update_delete(web, git_remote, dagops_env):
    remote = git_remote({"dags/a.py": dag_source("a")})
    created = _register(web, remote, namespace="team_ns", priority=3)
    assert created["status"] == "pending" and created["namespace"] == "team_ns" and created["priority"] == 3
    assert created["links"]["page"].endswith("/dagops/repositories/team")
    assert web.api("GET", "repositories/team").get_json()["url"] == remote.url

    taken = web.api("POST", "repositories", json={"name": "team", "url": remote.url})
    assert taken.status_code == 409 and _error(taken)["code"] == "conflict"
    ns_taken = web.api("POST", "repositories", json={"name": "other", "url": remote.url, "namespace": "team_ns"})
    assert ns_taken.status_code == 409

    updated = web.api("PATCH", "repositories/team", json={"priority": 7, "poll_interval": 120, "enabled": False})
    assert updated.status_code == 200
    assert updated.get_json()["priority"] == 7 and updated.get_json()["status"] == "disabled"
    assert web.api("PATCH", "repositories/team", json={"namespace": "x"}).status_code == 422
    bad_ref = web.api("PATCH", "repositories/team", json={"ref": "no-such-branch"})
    assert bad_ref.status_code == 422 and _error(bad_ref)["code"] == "ref_not_found"
    assert web.api("GET", "repositories/team").get_json()["ref"] == "main"

    listing = web.api("GET", "repositories?limit=1").get_json()
    assert listing["total"] == 1 and listing["limit"] == 1 and len(listing["items"]) == 1

    deleted = web.api("DELETE", "repositories/team")
    assert deleted.status_code == 200 and "removed" in deleted.get_json()["message"]
    assert web.api("GET", "repositories/team").status_code == 404


def test_delete_with_keep_dags_leaves_a_plain_folder(web, git_remote, dagops_env):
    _register(web, git_remote({"dags/a.py": dag_source("a")}))
    _sync_now(web)
    response = web.api("DELETE", "repositories/team?keep_dags=true")
    assert response.status_code == 200
    kept = dagops_env.dags_folder / "team"
    assert kept.is_dir() and not kept.is_symlink() and (kept / "dags" / "a.py").is_file()
    assert web.api("DELETE", "repositories/team?keep_dags=maybe").status_code in (404, 422)


# -- syncs ---------------------------------------------------------------------------------------------------
def test_sync_now_creates_an_airflow_run_and_the_task_finishes_it(web, git_remote):
    _register(web, git_remote({"dags/a.py": dag_source("a"), "dags/b.py": dag_source("b")}))
    response = web.api("POST", "repositories/team/sync", json={})
    assert response.status_code == 202
    queued = response.get_json()
    assert queued["status"] == "queued" and queued["trigger"] == "manual"
    assert queued["links"]["airflow_run"].endswith(f"/dags/dagops_sync/runs/{queued['airflow_run_id']}")
    run = next(r for r in airflow_runs_of_sync_dag() if r["run_id"] == queued["airflow_run_id"])
    assert run["conf"]["repository"] == "team" and run["conf"]["requested_by"] == "admin"
    assert web.api("GET", "repositories/team").get_json()["status"] == "syncing"

    again = web.api("POST", "repositories/team/sync", json={})
    assert again.status_code == 409 and _error(again)["details"]["sync_id"] == queued["id"]

    sync_repository("team", trigger="manual", airflow_run_id=queued["airflow_run_id"])
    finished = web.api("GET", f"syncs/{queued['id']}").get_json()
    assert finished["status"] == "success" and finished["duration_seconds"] is not None
    repo = web.api("GET", "repositories/team").get_json()
    assert repo["status"] == "synced" and repo["dag_count"] == 2
    assert repo["live"]["short_commit"] == finished["commit"][:7]
    history = web.api("GET", "repositories/team/syncs").get_json()
    assert history["total"] == 1 and history["items"][0]["id"] == queued["id"]


def test_failed_validation_is_said_in_words(web, git_remote):
    remote = git_remote({"dags/a.py": dag_source("a")})
    _register(web, remote)
    _sync_now(web)
    remote.commit("broken", {"dags/b.py": "def broken(:  # an Airflow DAG\n", "dags/c.py": "x = (  # an Airflow DAG\n"})
    failed = _sync_now(web)
    assert failed["status"] == "failed" and failed["error_code"] == "validation_failed"
    repo = web.api("GET", "repositories/team").get_json()
    assert repo["status"] == "failed"
    assert repo["status_message"] == "Validation failed: 2 errors in 2 files"
    assert repo["live"]["message"] == "initial commit"  # the last good release stays live

    again = _sync_now(web)  # the same broken head: refused without validating again...
    assert again["status"] == "rejected"
    repo = web.api("GET", "repositories/team").get_json()  # ...and the failure stays visible
    assert repo["status"] == "failed" and repo["status_message"] == "Validation failed: 2 errors in 2 files"


def test_unreachable_remote_at_sync_time_is_said_in_words(web, git_remote, tmp_path):
    _register(web, git_remote({"dags/a.py": dag_source("a")}))
    moved = web.api("PATCH", "repositories/team", json={"url": f"file://{tmp_path}/gone", "verify": False})
    assert moved.status_code == 200
    failed = _sync_now(web)
    assert failed["status"] == "failed"
    assert web.api("GET", "repositories/team").get_json()["status_message"] == "Remote unreachable"


def test_a_run_airflow_ended_without_the_task_is_closed(web, git_remote):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    _register(web, git_remote({"dags/a.py": dag_source("a")}))
    queued = web.api("POST", "repositories/team/sync", json={}).get_json()
    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id="dagops_sync", run_id=queued["airflow_run_id"]).one()
        run.state = DagRunState.FAILED  # e.g. the worker died before the sync task started
    listed = web.api("GET", "repositories").get_json()["items"][0]
    assert listed["status"] == "failed"  # the list page polls this: it must not say "syncing" forever
    repo = web.api("GET", "repositories/team").get_json()
    assert repo["status"] == "failed" and repo["last_sync"]["error_code"] == "unexpected"
    assert "see its task log" in repo["last_sync"]["error"]


def test_sync_history_pages(web, git_remote):
    remote = git_remote({"dags/a.py": dag_source("a")})
    _register(web, remote)
    for index in range(3):
        remote.commit(f"change {index}", {"dags/a.py": dag_source("a") + f"\n# {index}\n"})
        _sync_now(web)
    first = web.api("GET", "repositories/team/syncs?limit=2").get_json()
    second = web.api("GET", "repositories/team/syncs?limit=2&offset=2").get_json()
    assert first["total"] == 3 and len(first["items"]) == 2 and len(second["items"]) == 1
    ids = [r["id"] for r in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)


# -- releases, rollback, pin -----------------------------------------------------------------------------------
def _two_releases(web, remote):
    _register(web, remote)
    _sync_now(web)
    remote.commit("second", {"dags/b.py": dag_source("b")})
    _sync_now(web)
    releases = web.api("GET", "repositories/team/releases").get_json()["items"]
    assert [r["status"] for r in releases] == ["live", "retired"]
    return releases


def test_releases_and_findings(web, git_remote):
    remote = git_remote({"dags/a.py": dag_source("a")})
    _register(web, remote)
    _sync_now(web)
    remote.commit("broken", {"dags/b.py": "def broken(:  # an Airflow DAG\n"})
    _sync_now(web)
    releases = web.api("GET", "repositories/team/releases").get_json()
    assert releases["total"] == 2 and releases["items"][0]["status"] == "failed"
    detail = web.api("GET", f"releases/{releases['items'][0]['id']}").get_json()
    finding = next(f for f in detail["findings"] if f["severity"] == "error")
    assert finding["file"] == "dags/b.py" and finding["line"] == 1
    assert "findings" not in releases["items"][0]


def test_rollback_by_id_and_by_sha(web, git_remote, dagops_env):
    new, old = _two_releases(web, git_remote({"dags/a.py": dag_source("a")}))
    rolled = web.api("POST", "repositories/team/rollback", json={"release": old["id"]})
    assert rolled.status_code == 200, rolled.get_json()
    assert rolled.get_json()["live"]["release_id"] == old["id"]
    link = dagops_env.dags_folder / "team"
    assert not (link / "dags" / "b.py").exists() and (link / "dags" / "a.py").is_file()

    forward = web.api("POST", "repositories/team/rollback", json={"release": new["commit"][:10]})
    assert forward.get_json()["live"]["release_id"] == new["id"]
    assert web.api("POST", "repositories/team/rollback", json={"release": "zzz"}).status_code == 422
    assert web.api("POST", "repositories/team/rollback", json={"release": 9999}).status_code == 404


def test_rollback_to_a_failed_release_is_409(web, git_remote):
    remote = git_remote({"dags/a.py": dag_source("a")})
    _register(web, remote)
    _sync_now(web)
    remote.commit("broken", {"dags/b.py": "def broken(:  # an Airflow DAG\n"})
    _sync_now(web)
    failed = web.api("GET", "repositories/team/releases").get_json()["items"][0]
    response = web.api("POST", "repositories/team/rollback", json={"release": failed["id"]})
    assert response.status_code == 409 and "did not pass validation" in _error(response)["message"]


def test_rollback_without_a_release_goes_to_the_previous_one(web, git_remote):
    _new, old = _two_releases(web, git_remote({"dags/a.py": dag_source("a")}))
    rolled = web.api("POST", "repositories/team/rollback", json={}).get_json()
    assert rolled["live"]["release_id"] == old["id"]


def test_rollback_to_a_pruned_release_re_exports_it(web, git_remote, monkeypatch, dagops_env):
    monkeypatch.setenv("AIRFLOW__DAGOPS__RELEASES_TO_KEEP", "1")
    remote = git_remote({"dags/a.py": dag_source("a")})
    _register(web, remote)
    _sync_now(web)
    remote.commit("second", {"dags/b.py": dag_source("b")})
    _sync_now(web)
    empty_trash()
    old = web.api("GET", "repositories/team/releases").get_json()["items"][1]
    assert old["on_disk"] is False
    rolled = web.api("POST", "repositories/team/rollback", json={"release": old["id"]})
    assert rolled.status_code == 200, rolled.get_json()
    assert (dagops_env.dags_folder / "team" / "dags" / "a.py").is_file()
    assert not (dagops_env.dags_folder / "team" / "dags" / "b.py").exists()
    assert web.api("GET", f"releases/{old['id']}").get_json()["on_disk"] is True


def test_pin_keeps_the_release_and_unpin_follows_again(web, git_remote):
    remote = git_remote({"dags/a.py": dag_source("a")})
    _new, old = _two_releases(web, remote)
    pinned = web.api("POST", "repositories/team/pin", json={"release": old["id"]}).get_json()
    assert pinned["status"] == "pinned" and pinned["pinned_release_id"] == old["id"]
    assert pinned["live"]["release_id"] == old["id"]
    remote.commit("third", {"dags/c.py": dag_source("c")})
    assert _sync_now(web)["status"] == "unchanged"
    assert web.api("GET", "repositories/team").get_json()["live"]["release_id"] == old["id"]

    unpinned = web.api("POST", "repositories/team/unpin", json={}).get_json()
    assert unpinned["pinned_release_id"] is None
    assert _sync_now(web)["status"] == "success"
    assert web.api("GET", "repositories/team").get_json()["live"]["message"] == "third"


def test_pin_with_nothing_live_is_409(web, git_remote):
    _register(web, git_remote({"dags/a.py": dag_source("a")}))
    assert web.api("POST", "repositories/team/pin", json={}).status_code == 409


# -- DAGs and connections -------------------------------------------------------------------------------------
def test_dags_of_the_live_release_with_links_and_import_errors(web, git_remote, monkeypatch):
    from airflow.models.errors import ParseImportError
    from airflow.utils.session import create_session

    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")  # structure lists DAGs
    _register(web, git_remote({"dags/a.py": dag_source("team_a"), "dags/b.py": dag_source("team_b")}))
    _sync_now(web)
    with create_session() as session:
        session.query(ParseImportError).filter(ParseImportError.filename.like("team/%")).delete()
        session.add(ParseImportError(filename="team/dags/b.py", bundle_name="dags-folder", stacktrace="Boom: b"))
    try:
        body = web.api("GET", "repositories/team/dags").get_json()
    finally:
        with create_session() as session:
            session.query(ParseImportError).filter(ParseImportError.filename.like("team/%")).delete()
    assert [d["dag_id"] for d in body["items"]] == ["team_a", "team_b"]
    by_id = {d["dag_id"]: d for d in body["items"]}
    assert by_id["team_a"]["airflow_url"].endswith("/dags/team_a") and by_id["team_a"]["import_errors"] == []
    assert by_id["team_b"]["import_errors"][0]["stack_trace"] == "Boom: b"
    assert web.api("GET", "repositories/team").get_json()["dag_count"] == 2


def test_git_connections_are_listed_without_secrets(web):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id.like("web_test_%")).delete()
        session.add(
            Connection(
                conn_id="web_test_git",
                conn_type="git",
                host=f"https://deploy:{SECRET}@git.example.com/team.git",
                login="deploy",
                password=SECRET,
            )
        )
        session.add(Connection(conn_id="web_test_pg", conn_type="postgres", host="db", password=SECRET))
    try:
        response = web.api("GET", "connections")
        reader = web.api("GET", "connections", as_="reader")
    finally:
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id.like("web_test_%")).delete()
    assert response.status_code == 200
    assert SECRET not in response.get_data(as_text=True)
    ids = [c["conn_id"] for c in response.get_json()["items"]]
    assert "web_test_git" in ids and "web_test_pg" not in ids
    assert reader.status_code == 403  # reading connections is an Op/Admin right


def test_no_response_carries_a_secret(web, git_remote, monkeypatch):
    """A repository using a connection with a token: nothing the API answers contains the token."""
    monkeypatch.setenv("AIRFLOW_CONN_TEAM_GIT", json.dumps({"conn_type": "git", "password": SECRET}))
    remote = git_remote({"dags/a.py": dag_source("a")})
    _register(web, remote, conn_id="team_git")
    _sync_now(web)
    release = web.api("GET", "repositories/team/releases").get_json()["items"][0]
    seen = [
        web.api("GET", path).get_data(as_text=True)
        for path in (
            "repositories",
            "repositories/team",
            "repositories/team/syncs",
            "repositories/team/releases",
            f"releases/{release['id']}",
            "repositories/team/dags",
            "openapi.json",
        )
    ]
    assert all(SECRET not in text for text in seen)


# -- the OpenAPI document --------------------------------------------------------------------------------------
def test_openapi_document_matches_the_routes(web):
    response = web.api("GET", "openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    methods = {"get", "post", "put", "patch", "delete"}
    documented = {(path, method) for path, item in document["paths"].items() for method in methods & set(item)}
    served = {(path, method) for path, method, _rule in _api_rules()}
    assert documented == served
    for path, item in document["paths"].items():
        for method, operation in ((m, item[m]) for m in methods & set(item)):
            assert operation["responses"], (path, method)
            assert operation.get("operationId"), (path, method)
