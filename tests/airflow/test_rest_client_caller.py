"""Airflow's REST API as a caller (airflow/rest_client.py `AirflowApiRunSource(token=...)`, used by
airflow/dag_runs_api.py for an assistant's user): every call carries the caller's JWT, and a refusal is that
caller's, never followed by a login with the connection's name and password. A local HTTP server is Airflow."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from airflow_dagops.airflow.dag_runs_api import DagRunsApi
from airflow_dagops.airflow.rest_client import AirflowApiRunSource
from airflow_dagops.errors import Forbidden
from tests.helpers.git_hosts import JsonAnswers

CALLER_JWT = "caller.jwt.token"  # noqa: S105 - a fake token


@pytest.fixture
def airflow_api() -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    """(base URL, the requests seen: method, path, Authorization). Runs of dag `etl` are readable by the caller's
    JWT only; `/auth/token` would log anyone in as `conn.jwt`."""
    seen: list[tuple[str, str, str]] = []

    class Handler(JsonAnswers):
        def do_GET(self):  # noqa: N802 - http.server's naming
            seen.append(("GET", self.path, self.headers.get("Authorization", "")))
            if self.headers.get("Authorization") != f"Bearer {CALLER_JWT}":
                return self._answer(403, {"detail": "Forbidden"})
            if self.path.startswith("/api/v2/dags/etl/dagRuns/"):
                return self._answer(200, {"state": "success", "start_date": "s", "end_date": "e", "conf": {}})
            return self._answer(404, {"detail": "Not Found"})

        def do_POST(self):  # noqa: N802 - http.server's naming
            seen.append(("POST", self.path, self.headers.get("Authorization", "")))
            return self._answer(201, {"access_token": "conn.jwt"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def _source(url: str, token: str | None) -> AirflowApiRunSource:
    return AirflowApiRunSource(base_url=url, username="dagops", password="conn-password", token=token)


def test_a_callers_token_is_sent_as_it_is_and_no_login_happens(airflow_api):
    url, seen = airflow_api
    outcome = DagRunsApi(_source(url, CALLER_JWT)).outcome("etl", "run-1")
    assert outcome["state"] == "success"
    assert seen == [("GET", "/api/v2/dags/etl/dagRuns/run-1", f"Bearer {CALLER_JWT}")]


def test_a_refusal_of_the_caller_stays_theirs(airflow_api):
    url, seen = airflow_api
    source = _source(url, "someone.elses.jwt")
    assert (source.username, source.password) == ("", "")  # nothing to fall back on
    with pytest.raises(Forbidden, match="for your user"):
        DagRunsApi(source).run("etl", "run-1")
    assert [method for method, _, _ in seen] == ["GET"]  # no POST /auth/token


def test_without_a_token_the_connections_login_is_used(airflow_api):
    url, seen = airflow_api
    response = _source(url, None).call("GET", "/api/v2/dags/etl/dagRuns/run-1")
    assert response.status_code == 403  # the connection's identity is not the caller's
    assert seen == [("POST", "/auth/token", ""), ("GET", "/api/v2/dags/etl/dagRuns/run-1", "Bearer conn.jwt")]
