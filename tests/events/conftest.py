"""The feed's tests: the REST face through the web fixtures of tests/helpers/web.py (the /pluginsv2 app, tokens per
role), and a fake of Airflow's REST API (http.server) that the DAG run collector reads: `FakeAirflow` holds its runs
and DAG tags and records every request; the `airflow_api` fixture serves it and hands out a source for it."""

from __future__ import annotations

import http.server
import json
import threading
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

import airflow_dagops.api.events  # noqa: F401  (routes on the blueprint before the app is built)
from airflow_dagops.airflow.rest_client import AirflowApiRunSource
from tests.helpers.git_hosts import JsonAnswers


class FakeAirflow(JsonAnswers):
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


@pytest.fixture
def airflow_api():
    FakeAirflow.runs, FakeAirflow.tags, FakeAirflow.requests = [], {}, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeAirflow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield lambda: AirflowApiRunSource(base_url=url, username="admin", password="pw")
    server.shutdown()
    server.server_close()


def airflow_run(dag_id: str, run_id: str, state: str, ended: datetime, *, seconds: float = 60) -> dict:
    """A finished DAG run as Airflow's REST API lists it."""
    return {
        "dag_id": dag_id,
        "dag_run_id": run_id,
        "state": state,
        "run_type": run_id.split("__")[0],
        "start_date": (ended - timedelta(seconds=seconds)).isoformat(),
        "end_date": ended.isoformat().replace("+00:00", "Z"),
    }
