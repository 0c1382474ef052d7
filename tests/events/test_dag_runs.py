"""DAG run outcomes into the feed: the dagops_events collector against a fake Airflow REST API (http.server)."""

from __future__ import annotations

import http.server
import json
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_dagops.airflow.rest_client import AirflowApiRunSource
from airflow_dagops.events import dag_runs as dag_run_events
from airflow_dagops.events import feed as events
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source


class FakeAirflow(http.server.BaseHTTPRequestHandler):
    runs: list[dict] = []
    tags: dict[str, list[str]] = {}
    requests: list[tuple[str, str, dict]] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        type(self).requests.append(("POST", self.path, body))
        if self.path == "/auth/token":
            return self._answer(201, {"access_token": "tok"})
        if self.path != "/api/v2/dags/~/dagRuns/list" or self.headers.get("Authorization") != "Bearer tok":
            return self._answer(404, {"detail": "Not Found"})
        after = datetime.fromisoformat(body["end_date_gt"])
        matching = [
            r
            for r in self.runs
            if r["dag_id"] in body["dag_ids"]
            and r["state"] in body["states"]
            and datetime.fromisoformat(r["end_date"].replace("Z", "+00:00")) > after
        ]
        page = matching[body["page_offset"] : body["page_offset"] + body["page_limit"]]
        return self._answer(200, {"dag_runs": page, "total_entries": len(matching)})

    def do_GET(self):  # noqa: N802
        url = urlsplit(self.path)
        type(self).requests.append(("GET", url.path, parse_qs(url.query)))
        if url.path != "/api/v2/dags":
            return self._answer(404, {"detail": "Not Found"})
        tag = parse_qs(url.query)["tags"][0]
        return self._answer(200, {"dags": [{"dag_id": d} for d in self.tags.get(tag, [])]})

    def _answer(self, status: int, data: dict):
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@pytest.fixture
def airflow_api():
    FakeAirflow.runs, FakeAirflow.tags, FakeAirflow.requests = [], {}, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeAirflow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield lambda: AirflowApiRunSource(base_url=url, username="admin", password="pw")
    server.shutdown()
    server.server_close()


NOW = datetime.now(timezone.utc)


def _run(dag_id: str, run_id: str, state: str, ended: datetime) -> dict:
    return {
        "dag_id": dag_id,
        "dag_run_id": run_id,
        "state": state,
        "run_type": "scheduled",
        "start_date": (ended - timedelta(minutes=1)).isoformat(),
        "end_date": ended.isoformat().replace("+00:00", "Z"),
    }


def _dag_run_events() -> list[dict]:
    return events.list_events(kinds=["dag_run"])["events"]


def test_runs_of_published_dags_are_recorded_once(dagops_env, git_remote, airflow_api, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")  # lists the DAGs
    add_repository("team", git_remote({"dags/etl.py": dag_source("etl")}).url)
    release_id = sync_repository("team").release_id
    FakeAirflow.runs = [
        _run("etl", "scheduled__1", "success", NOW - timedelta(minutes=10)),
        _run("etl", "manual__2", "failed", NOW - timedelta(minutes=5)),
        _run("someone_elses_dag", "manual__3", "failed", NOW - timedelta(minutes=4)),
    ]

    assert dag_run_events.collect(airflow_api, now=NOW) == 2
    recorded = _dag_run_events()
    assert [(e["outcome"], e["detail"]["run_id"]) for e in recorded] == [
        ("success", "scheduled__1"),
        ("failed", "manual__2"),
    ]
    assert all(e["repository"] == "team" and e["release_id"] == release_id for e in recorded)
    assert recorded[1]["detail"]["namespace"] == "team" and recorded[1]["detail"]["dag_id"] == "etl"
    asked = [body for method, path, body in FakeAirflow.requests if path.endswith("dagRuns/list")]
    assert asked[0]["dag_ids"] == ["etl"]

    # Nothing new: the look-back overlap returns manual__2 again, and it is not recorded twice.
    assert dag_run_events.collect(airflow_api, now=NOW) == 0
    FakeAirflow.runs.append(_run("etl", "manual__4", "success", NOW + timedelta(minutes=1)))
    assert dag_run_events.collect(airflow_api, now=NOW) == 1
    assert [e["detail"]["run_id"] for e in _dag_run_events()] == ["scheduled__1", "manual__2", "manual__4"]


def test_without_a_dag_list_the_dags_are_found_by_their_dagops_tag(dagops_env, git_remote, airflow_api):
    add_repository("team", git_remote().url)  # structure step skipped: no DAG list
    sync_repository("team")
    FakeAirflow.tags = {"dagops-repo:team": ["hello"]}
    FakeAirflow.runs = [_run("hello", "manual__1", "success", NOW - timedelta(minutes=1))]
    assert dag_run_events.collect(airflow_api, now=NOW) == 1
    assert _dag_run_events()[0]["detail"]["dag_id"] == "hello"


def test_nothing_published_means_no_api_call(dagops_env):
    def no_source():
        raise AssertionError("the API must not be asked")

    assert dag_run_events.collect(no_source) == 0


def test_the_dagops_events_system_dag_parses(dagops_env, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from airflow_dagops import paths

    monkeypatch.setenv("AIRFLOW__DAGOPS__EVENTS_INTERVAL", "600")
    bag = DagBag(dag_folder=str(paths.meta_dags_dir() / "dagops_events.py"))
    assert bag.import_errors == {}
    dag = bag.dags["dagops_events"]
    assert dag.schedule == timedelta(seconds=600)
    assert dag.catchup is False and dag.max_active_runs == 1 and set(dag.task_dict) == {"collect_dag_runs"}
