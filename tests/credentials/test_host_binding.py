"""Credentials follow the repository, not the user's word (issue 16 item 3).

A connection's credentials go only to the host (scheme, host, port) the repository's URL had when the connection
was attached; changing the URL of a repository that has a connection needs the right that choosing the connection
needs. Two real smart-HTTP git servers on 127.0.0.1 (two ports: two hosts), serving the same repository: the one
the token was attached for, and a new one that records every Authorization header it is sent.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import pytest
from alembic import command
from sqlalchemy import text

from airflow_dagops.credentials import access, rotation
from airflow_dagops.git.credentials import CredentialHostRefused, check_credential_host, url_origin
from airflow_dagops.repositories import declarative
from airflow_dagops.repositories.registry import add_repository, update_repository
from airflow_dagops.store import db
from airflow_dagops.sync.runs import get_sync_run
from airflow_dagops.sync.sense import sense
from airflow_dagops.sync.sync import sync_repository
from tests.credentials.conftest import TOKEN
from tests.helpers.servers import GitHttpServer


@dataclass
class RecordingGitHttpServer(GitHttpServer):
    """The new host: serves the repository to the token too (as an attacker's mirror would), and records the
    Authorization header of every request (empty when git sent none)."""

    authorizations: list[str] = field(default_factory=list)

    def _authorized_user(self, environ):
        self.authorizations.append(environ.get("HTTP_AUTHORIZATION", ""))
        return super()._authorized_user(environ)

    def received_the_token(self) -> bool:
        return any(TOKEN in base64.b64decode(h.partition(" ")[2] or b"").decode() for h in self.authorizations if h)


@pytest.fixture
def new_host(served):
    server = RecordingGitHttpServer(served[0], tokens={TOKEN}).start()
    yield server
    server.stop()


@pytest.fixture
def token_conn(env_conn):
    return env_conn(login="bot", password=TOKEN)


def _repo(web, name: str = "team"):
    return web.api("GET", f"repositories/{name}").get_json()


def _add(web, url: str, conn_id: str, name: str = "team") -> None:
    created = web.api("POST", "repositories", json={"name": name, "url": url, "conn_id": conn_id})
    assert created.status_code == 201, created.get_json()


def test_a_user_role_account_cannot_repoint_a_repository_that_has_a_token(web, http, new_host, token_conn):
    _add(web, http.url("team.git"), token_conn)
    before = _repo(web)
    for body in ({"url": new_host.url("team.git")}, {"url": new_host.url("team.git"), "verify": False}):
        answer = web.api("PATCH", "repositories/team", as_="editor", json=body)
        assert answer.status_code == 403, answer.get_json()
        error = answer.get_json()["error"]
        assert (
            error["code"] == "forbidden"
            and "connection" in error["message"]
            and "nothing was changed" in error["message"]
        )
    assert _repo(web) == before  # nothing changed
    assert new_host.authorizations == [] and not new_host.received_the_token()  # not even a request
    assert sync_repository("team").status == "published"  # still syncs from where it was
    # What DAG edit alone still allows: other settings, and the same URL.
    assert web.api("PATCH", "repositories/team", as_="editor", json={"priority": 7}).status_code == 200
    same = web.api("PATCH", "repositories/team", as_="editor", json={"url": http.url("team.git")})
    assert same.status_code == 200


def test_an_admin_changing_only_the_url_sends_no_credential_until_the_connection_is_re_attached(
    web, http, new_host, token_conn
):
    _add(web, http.url("team.git"), token_conn)
    _add(web, http.url("team.git"), token_conn, name="other")  # the old host, same connection

    checked = web.api("PATCH", "repositories/team", json={"url": new_host.url("team.git")})
    assert checked.status_code == 422, checked.get_json()  # the verify step refused to send the token
    assert "re-attaches" in checked.get_json()["error"]["message"]
    assert _repo(web)["url"] == http.url("team.git")  # nothing changed

    moved = web.api("PATCH", "repositories/team", json={"url": new_host.url("team.git"), "verify": False})
    assert moved.status_code == 200 and moved.get_json()["url"] == new_host.url("team.git")
    outcome = sync_repository("team")
    assert outcome.status == "failed"
    run = get_sync_run(outcome.sync_run_id)
    assert run["error_code"] == "credential_host_refused" and "did not send the credentials" in run["error"], run
    assert url_origin(http.url("x")) in run["error"] and TOKEN not in run["error"]
    tested = web.api("POST", "repositories/team/credentials/test").get_json()
    assert (tested["ok"], tested["kind"]) == (False, "host_not_attached") and "conn_id" in tested["hint"]
    assert not new_host.received_the_token() and new_host.authorizations == []

    # The old host still works, for the other repository with the same connection.
    assert sync_repository("other").status == "published"

    # Re-attaching (the URL and the connection together, by an admin) is what moves the credentials.
    body = {"url": new_host.url("team.git"), "conn_id": token_conn}
    assert web.api("PATCH", "repositories/team", as_="editor", json=body).status_code == 403
    reattached = web.api("PATCH", "repositories/team", json=body)
    assert reattached.status_code == 200, reattached.get_json()
    assert sync_repository("team").status == "published"
    assert new_host.received_the_token()
    assert sync_repository("other", force=True).status in ("published", "unchanged")


def test_the_connections_own_host_is_an_explicit_allowance(web, http, new_host, env_conn):
    """Whoever may edit the connection can name its host ("Repository URL"): that host gets its credentials."""
    conn_id = env_conn(login="bot", password=TOKEN, host=new_host.url("team.git"))
    _add(web, http.url("team.git"), conn_id)
    moved = web.api("PATCH", "repositories/team", json={"url": new_host.url("team.git"), "verify": False})
    assert moved.status_code == 200
    assert sync_repository("team").status == "published"
    assert new_host.received_the_token()


def test_dropping_the_connection_with_the_url_needs_no_connection_right_and_sends_nothing(
    web, http, new_host, token_conn
):
    _add(web, http.url("team.git"), token_conn)
    body = {"url": new_host.url("team.git"), "conn_id": None, "verify": False}
    answer = web.api("PATCH", "repositories/team", as_="editor", json=body)
    assert answer.status_code == 200 and answer.get_json()["conn_id"] is None
    assert sync_repository("team").status == "failed"  # the new host wants a token, and gets none
    assert new_host.authorizations and not any(new_host.authorizations)


def test_every_git_operation_asks_first(dagops_env, http, new_host, token_conn):
    """Fetch (sync), ls-remote (sense, verify), access tests and rotation: one gate, in git_credentials_env."""
    add_repository("team", http.url("team.git"), conn_id=token_conn)
    update_repository("team", url=new_host.url("team.git"), verify=False)
    with pytest.raises(CredentialHostRefused):
        check_credential_host(token_conn, new_host.url("team.git"))
    check_credential_host(token_conn, http.url("another.git"))  # same host, another path: attached
    [sensed] = sense(["team"], respect_poll_interval=False)
    assert sensed.error and "did not send the credentials" in sensed.error
    with pytest.raises(CredentialHostRefused):
        update_repository("team", ref="release", verify=True)  # the verify step of a change
    with pytest.raises(CredentialHostRefused):
        rotation.start_token_rotation("team", "ghp_" + "n3w" * 10, actor="admin")
    assert access.test_access("team").kind == "host_not_attached"
    assert not new_host.received_the_token()


def test_dagops_yaml_naming_both_re_attaches_the_connection(dagops_env, http, new_host, token_conn, tmp_path):
    add_repository("team", http.url("team.git"), conn_id=token_conn)
    config = tmp_path / "dagops.yaml"
    config.write_text(
        f"repositories:\n  - name: team\n    url: {new_host.url('team.git')}\n    conn_id: {token_conn}\n"
    )
    plan = declarative.plan(declarative.load(config))
    [action] = plan.actions
    assert url_origin(new_host.url("x")) in action.note
    declarative.apply(plan)
    assert new_host.received_the_token()
    assert sync_repository("team").status == "published"


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://GitHub.com/acme/dags.git", "https://github.com:443"),
        ("https://github.com:443/acme/dags", "https://github.com:443"),
        ("https://github.com:8443/acme/dags", "https://github.com:8443"),
        ("http://github.com/acme/dags", "http://github.com:80"),
        ("git@github.com:acme/dags.git", "ssh://github.com:22"),
        ("ssh://git@github.com/acme/dags.git", "ssh://github.com:22"),
        ("ssh://git@github.com:2222/acme/dags.git", "ssh://github.com:2222"),
        ("git://example.com/dags", "git://example.com:9418"),
        ("https://[::1]:8080/x", "https://[::1]:8080"),
        ("file:///srv/git/x", "file://"),
        ("/srv/git/x", "file://"),
    ],
)
def test_origins(url, origin):
    assert url_origin(url) == origin


def test_the_migration_attaches_existing_connections_to_their_current_urls(state_db_url):
    db.dispose_engines()
    db.migrate(state_db_url)
    command.downgrade(db._alembic_config(state_db_url), "0010")  # an installation from before the upgrade
    with db.get_engine(state_db_url).begin() as connection:
        for name, url, conn_id in (("a", "https://git.example.com/a", "c"), ("b", "git@h.example:b", None)):
            connection.execute(
                text(
                    "INSERT INTO dagops_repository (name, url, ref, namespace, priority, conn_id, enabled, "
                    "on_conflict, isolated_env, created_at, updated_at) "
                    "VALUES (:n, :u, 'main', :n, 100, :c, 1, 'skip_files', 0, '2026-01-01 00:00', '2026-01-01 00:00')"
                ),
                {"n": name, "u": url, "c": conn_id},
            )
    db.dispose_engines()
    db.migrate(state_db_url)
    with db.get_engine(state_db_url).connect() as connection:
        rows = dict(connection.execute(text("SELECT name, conn_origin FROM dagops_repository")).all())
    assert rows == {"a": "https://git.example.com:443", "b": None}
