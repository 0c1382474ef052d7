"""The REST run source against a fake Airflow API (http.server in a thread): token, batch list, paging."""

from __future__ import annotations

import http.server
import json
import threading
from datetime import datetime, timezone

import pytest

from airflow_dagops.airflow.rest_client import AirflowApiRunSource, AirflowApiUnavailable, RunOutcome, base_url_of
from airflow_dagops.errors import ConnectionMissing
from tests.helpers.git_hosts import JsonAnswers

SINCE = datetime(2026, 11, 28, 1, 0, tzinfo=timezone.utc)


class FakeAirflow(JsonAnswers):
    runs: list[dict] = []
    requests: list[tuple[str, dict, str | None]] = []
    tokens_issued = 0
    expire_first_token = False

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        type(self).requests.append((self.path, body, self.headers.get("Authorization")))
        if self.path == "/auth/token":
            if body != {"username": "admin", "password": "pw"}:
                return self._answer(401, {"detail": "Invalid credentials"})
            type(self).tokens_issued += 1
            return self._answer(201, {"access_token": f"token-{self.tokens_issued}"})
        if self.path != "/api/v2/dags/~/dagRuns/list":
            return self._answer(404, {"detail": "Not Found"})
        if self.headers.get("Authorization") != f"Bearer token-{self.tokens_issued}" or (
            self.expire_first_token and self.tokens_issued == 1
        ):
            return self._answer(401, {"detail": "Token expired"})
        matching = [
            r
            for r in self.runs
            if r["dag_id"] in body["dag_ids"]
            and r["state"] in body["states"]
            and r["start_date"] >= body["start_date_gte"]
        ]
        page = matching[body["page_offset"] : body["page_offset"] + body["page_limit"]]
        return self._answer(200, {"dag_runs": page, "total_entries": len(matching)})


def _run(dag_id, run_id, state, start="2026-11-28T02:00:00+00:00", end="2026-11-28T02:05:00Z"):
    return {"dag_id": dag_id, "dag_run_id": run_id, "state": state, "start_date": start, "end_date": end}


@pytest.fixture
def airflow_api():
    FakeAirflow.runs, FakeAirflow.requests, FakeAirflow.tokens_issued = [], [], 0
    FakeAirflow.expire_first_token = False
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeAirflow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _source(url, password="pw"):
    return AirflowApiRunSource(base_url=url, username="admin", password=password)


def test_reads_finished_runs_of_the_stage_dags_since_the_stage_went_live(airflow_api):
    FakeAirflow.runs = [
        _run("a__staging", "scheduled__1", "success"),
        _run("b__staging", "manual__2", "failed", end=None),
        _run("a__staging", "old", "success", start="2026-11-27T23:00:00+00:00"),  # before the stage went live
        _run("a", "prod_run", "success"),  # prod's DAG: not asked for
    ]
    outcomes = _source(airflow_api).runs(["a__staging", "b__staging"], SINCE)
    started = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)  # with the end: the run's duration (A/B experiments)
    assert outcomes == [
        RunOutcome("a__staging", "scheduled__1", "success", datetime(2026, 11, 28, 2, 5, tzinfo=timezone.utc), started),
        RunOutcome("b__staging", "manual__2", "failed", None, started),
    ]
    (login, listing) = FakeAirflow.requests
    assert login[0] == "/auth/token"
    assert listing[2] == "Bearer token-1"
    assert listing[1]["states"] == ["success", "failed"]
    assert listing[1]["start_date_gte"] == "2026-11-28T01:00:00+00:00"


def test_pages_through_many_runs_with_one_login(airflow_api):
    FakeAirflow.runs = [_run("a__staging", f"r{i}", "success") for i in range(230)]
    outcomes = _source(airflow_api).runs(["a__staging"], SINCE)
    assert [o.run_id for o in outcomes] == [f"r{i}" for i in range(230)]
    assert [path for path, _body, _auth in FakeAirflow.requests].count("/auth/token") == 1
    assert [body.get("page_offset") for path, body, _ in FakeAirflow.requests if "dagRuns" in path] == [0, 100, 200]


def test_an_expired_token_is_renewed_once(airflow_api):
    FakeAirflow.expire_first_token = True
    FakeAirflow.runs = [_run("a__staging", "r1", "success")]
    assert len(_source(airflow_api).runs(["a__staging"], SINCE)) == 1
    assert FakeAirflow.tokens_issued == 2


def test_wrong_credentials_and_an_unreachable_api_say_what_to_fix(airflow_api):
    with pytest.raises(AirflowApiUnavailable, match="refused the login of 'admin'.*login and password"):
        _source(airflow_api, password="wrong").runs(["a__staging"], SINCE)
    with pytest.raises(AirflowApiUnavailable, match="cannot reach Airflow's API"):
        _source("http://127.0.0.1:9").runs(["a__staging"], SINCE)


def test_the_source_comes_from_an_airflow_connection(airflow_api, monkeypatch, dagops_env):
    host, port = airflow_api.removeprefix("http://").split(":")
    monkeypatch.setenv(
        "AIRFLOW_CONN_DAGOPS_AIRFLOW_API",
        json.dumps({"conn_type": "http", "host": host, "port": int(port), "login": "admin", "password": "pw"}),
    )
    FakeAirflow.runs = [_run("a__staging", "r1", "success")]
    source = AirflowApiRunSource.from_connection()
    assert source.base_url == airflow_api
    assert [o.run_id for o in source.runs(["a__staging"], SINCE)] == ["r1"]
    with pytest.raises(ConnectionMissing, match="connection 'missing' .* does not exist") as missing:
        AirflowApiRunSource.from_connection("missing")
    assert "airflow connections add missing --conn-type http" in str(missing.value)  # says how to create it


def test_base_url_from_the_connection_fields():
    assert base_url_of("http://api:8080/", None, None) == "http://api:8080"
    assert base_url_of("https://api", 8443, None) == "https://api:8443"
    assert base_url_of("api", 8080, "https") == "https://api:8080"
    assert base_url_of("api", None, None) == "http://api"
