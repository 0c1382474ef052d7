"""POST /connections: the page's "New connection" (a token, or a deploy key dagops generates)."""

from __future__ import annotations

import json

import pytest

TOKEN = "ghp_n3w-t0ken-for-the-test-0123456789"


@pytest.fixture
def cleanup():
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    yield
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id.like("webconn_%")).delete()


def _stored(conn_id: str):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        conn = session.query(Connection).filter_by(conn_id=conn_id).one()
        return conn.conn_type, conn.login, conn.password, conn.extra_dejson


def test_a_token_connection_is_created_and_the_token_never_answered(web, cleanup):
    body = {"conn_id": "webconn_token", "kind": "token", "login": "x-access-token", "token": TOKEN}
    response = web.api("POST", "connections", json=body)
    assert response.status_code == 201, response.get_json()
    assert TOKEN not in response.get_data(as_text=True)
    assert response.get_json() == {"conn_id": "webconn_token", "conn_type": "git", "kind": "token", "public_key": None}
    assert _stored("webconn_token")[:3] == ("git", "x-access-token", TOKEN)
    listed = web.api("GET", "connections").get_data(as_text=True)
    assert "webconn_token" in listed and TOKEN not in listed
    again = web.api("POST", "connections", json=body)
    assert again.status_code == 409


def test_a_deploy_key_connection_answers_only_the_public_key(web, cleanup):
    response = web.api("POST", "connections", json={"conn_id": "webconn_key", "kind": "ssh_key"})
    assert response.status_code == 201, response.get_json()
    public_key = response.get_json()["public_key"]
    assert public_key.startswith("ssh-ed25519 ") and public_key.endswith("dagops:webconn_key")
    extra = _stored("webconn_key")[3]
    assert "PRIVATE KEY" in extra["private_key"]
    assert "PRIVATE KEY" not in response.get_data(as_text=True)
    assert "PRIVATE KEY" not in json.dumps(web.api("GET", "connections").get_json())


def test_bad_requests_and_missing_rights(web, cleanup):
    assert web.api("POST", "connections", json={"conn_id": "webconn_x", "kind": "token"}).status_code == 422
    assert web.api("POST", "connections", json={"conn_id": "bad id", "kind": "ssh_key"}).status_code == 422
    assert web.api("POST", "connections", json={"conn_id": "webconn_x", "kind": "password"}).status_code == 422
    refused = web.api("POST", "connections", as_="editor", json={"conn_id": "webconn_y", "kind": "ssh_key"})
    assert refused.status_code == 403  # DAG edit is not enough: creating connections is Airflow's Op right
