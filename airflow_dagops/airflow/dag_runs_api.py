"""Trigger a DAG and read how its run went, through Airflow's REST API (v2), as the caller.

The event feed reads runs through the API with the `[dagops] airflow_api_conn_id` login (rest_client.py); an
assistant acting for a user must not borrow that identity: given the user's own Airflow JWT (the MCP face over
HTTP has it), every call carries it, so Airflow itself decides whether this user may trigger this DAG or read its
logs, per DAG, with whatever auth manager it runs. Without one (the local `dagops mcp` over stdio, with the CLI's
rights) the connection's login is used. The base URL is the connection's host either way (where dagops reaches
Airflow's API; never a Host header a caller sent).

    POST /api/v2/dags/{dag_id}/dagRuns                                            trigger, with conf
    GET  /api/v2/dags/{dag_id}/dagRuns/{run_id}                                   state, dates
    GET  /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances                     which task failed
    GET  /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task}/logs/{try}   its log, for the tail
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow_dagops.airflow.rest_client import AirflowApiRunSource, answer_excerpt
from airflow_dagops.errors import AirflowApiUnavailable, Forbidden, InvalidInput, NotFound
from airflow_dagops.redaction import redact_text

LOG_TAIL_LINES = 40
MAX_LOG_LINE = 500
FAILED_TASK_STATES = ("failed", "upstream_failed")


class DagRunsApi:
    def __init__(self, source: AirflowApiRunSource):
        self.source = source

    @classmethod
    def for_caller(cls, token: str | None) -> DagRunsApi:
        """As the user whose Airflow JWT `token` is, or (None) as the `airflow_api_conn_id` login."""
        return cls(AirflowApiRunSource.from_connection(token=token))

    def trigger(self, dag_id: str, conf: dict, *, note: str | None = None) -> dict:
        body = {"logical_date": None, "conf": conf, **({"note": note} if note else {})}
        return self._call("POST", f"/api/v2/dags/{_q(dag_id)}/dagRuns", json=body, ok=(200,))

    def run(self, dag_id: str, run_id: str) -> dict:
        return self._call("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")

    def paused(self, dag_id: str) -> bool | None:
        return self._call("GET", f"/api/v2/dags/{_q(dag_id)}").get("is_paused")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        data = self._call("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances")
        return list(data.get("task_instances") or [])

    def log_tail(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, *, lines: int = LOG_TAIL_LINES
    ) -> list[str]:
        path = f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/logs/{int(try_number)}"
        data = self._call("GET", path, params={"full_content": "true"}, headers={"Accept": "application/json"})
        rendered = [_line(entry) for entry in data.get("content") or []]
        return [redact_text(line)[:MAX_LOG_LINE] for line in rendered if line][-lines:]

    def outcome(self, dag_id: str, run_id: str, *, lines: int = LOG_TAIL_LINES) -> dict:
        """The run's state and dates; for a failed run, its first failed task and that task's log tail."""
        run = self.run(dag_id, run_id)
        answer: dict[str, Any] = {
            "dag_id": dag_id,
            "run_id": run_id,
            "state": run.get("state"),
            "start_date": run.get("start_date"),
            "end_date": run.get("end_date"),
            "conf": run.get("conf"),
            "failed_task": None,
            "log_tail": [],
        }
        if run.get("state") == "failed":
            failed = [ti for ti in self.task_instances(dag_id, run_id) if ti.get("state") in FAILED_TASK_STATES]
            failed.sort(key=lambda ti: (ti.get("state") != "failed", ti.get("end_date") or ""))
            if failed:
                task = failed[0]
                answer["failed_task"] = task.get("task_id")
                if task.get("state") == "failed" and task.get("try_number"):
                    answer["log_tail"] = self.log_tail(dag_id, run_id, task["task_id"], task["try_number"], lines=lines)
        return answer

    # -- HTTP ----------------------------------------------------------------------------------------------------
    def _call(
        self, method: str, path: str, *, ok: tuple[int, ...] = (200,), headers: dict | None = None, **kwargs
    ) -> dict:
        response = self.source.call(method, path, headers=headers, **kwargs)
        if response.status_code in ok:
            return response.json()
        if response.status_code in (401, 403):
            raise Forbidden(
                f"Airflow refused this ({response.status_code}) for your user: your role may not "
                f"{'trigger' if method == 'POST' else 'read'} this DAG's runs"
            )
        if response.status_code == 404:
            raise NotFound(f"Airflow knows no such DAG or run ({path.split('/api/v2/')[-1]})")
        if response.status_code in (400, 409, 422):
            raise InvalidInput(f"Airflow refused the request ({response.status_code}): {answer_excerpt(response)}")
        raise AirflowApiUnavailable(f"Airflow API {path} answered {response.status_code}: {answer_excerpt(response)}")


def _q(value: str) -> str:
    return quote(value, safe="")


def _line(entry) -> str:
    """One structured log record as a line: level, message, and an exception's type and value."""
    if isinstance(entry, str):
        return entry
    if not isinstance(entry, dict):
        return ""
    text = " ".join(str(entry.get(key)) for key in ("level", "event") if entry.get(key))
    for error in entry.get("error_detail") or []:
        if isinstance(error, dict):
            text += f" {error.get('exc_type', '')}: {error.get('exc_value', '')}"
    return text.strip()
