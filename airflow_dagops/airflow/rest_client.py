"""DAG run outcomes from Airflow's REST API (v2), for promotion checks (releases/promotion.py) and the event feed.

The base URL and a user's name and password come from an Airflow Connection (`[dagops] airflow_api_conn_id`:
host such as `http://airflow-api-server:8080`, login, password), so secrets backends work and nothing is
stored by dagops. A token comes from `POST /auth/token`; the runs from one batch call,
`POST /api/v2/dags/~/dagRuns/list` with the stage's dag_ids, finished states and `start_date_gte`, paged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import requests

from airflow_dagops import settings
from airflow_dagops.airflow.connections import get_connection
from airflow_dagops.errors import AirflowApiUnavailable, ConnectionMissing, InvalidInput
from airflow_dagops.safety import redact

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """One finished DAG run of a stage's DAGs, as the RunSource reports it."""

    dag_id: str
    run_id: str
    state: str  # success / failed (anything else is ignored)
    ended_at: datetime | None = None
    started_at: datetime | None = None  # with ended_at, the run's duration (A/B experiments compare them)


class RunSource:
    """Where DAG run outcomes come from: Airflow's REST API in production (this module)."""

    def runs(self, dag_ids: list[str], since: datetime) -> list[RunOutcome]:  # pragma: no cover - interface
        raise NotImplementedError


FINISHED = ("success", "failed")
PAGE = 100  # Airflow's default [api] maximum_page_limit
MAX_PAGES = 50  # 5000 runs: far beyond any soak_runs; a stage running wild must not hang the check
DAG_IDS_PER_CALL = 100


class AirflowApiRunSource(RunSource):
    """Airflow's REST API as one identity: a user's name and password (a token from `POST /auth/token`, renewed
    once when it expires), or a caller's own Airflow JWT (`token`), which is never replaced by a login."""

    def __init__(self, *, base_url: str, username: str, password: str, timeout: float = 30.0, token: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # A caller's token comes without a login to fall back on: Airflow judges that caller, nobody else.
        self.username, self.password = ("", "") if token is not None else (username, password)
        self._http = requests.Session()
        self._token: str | None = token
        self._caller_token = token is not None

    @classmethod
    def from_connection(cls, conn_id: str | None = None, *, token: str | None = None) -> AirflowApiRunSource:
        """The API at the connection's host, as its login, or as the caller whose Airflow JWT `token` is."""
        conn_id = conn_id or settings.get("airflow_api_conn_id")
        connection = _connection(conn_id)
        if not connection.host:
            raise InvalidInput(f"Airflow connection {conn_id!r} has no host; set it to the api-server's URL")
        return cls(
            base_url=base_url_of(connection.host, connection.port, connection.schema),
            username=connection.login or "",
            password=connection.password or "",
            token=token,
        )

    def runs(self, dag_ids: list[str], since: datetime) -> list[RunOutcome]:
        """Finished runs of `dag_ids` that started at or after `since`, oldest first (promotion checks)."""
        return [_outcome(run) for run in self.finished_runs(dag_ids, start_date_gte=since)]

    def finished_runs(self, dag_ids: list[str], **since: datetime) -> list[dict]:
        """Finished runs of `dag_ids` (Airflow's own dicts) after one date filter of the list call, e.g.
        `start_date_gte=` (promotion) or `end_date_gt=` (the event feed): batched by dag_id, paged."""
        runs: list[dict] = []
        for start in range(0, len(dag_ids), DAG_IDS_PER_CALL):
            for page in range(MAX_PAGES):
                body = {
                    "dag_ids": dag_ids[start : start + DAG_IDS_PER_CALL],
                    "states": list(FINISHED),
                    **{key: value.isoformat() for key, value in since.items()},
                    "order_by": "id",
                    "page_limit": PAGE,
                    "page_offset": page * PAGE,
                }
                data = self._post("/api/v2/dags/~/dagRuns/list", body)
                batch = data.get("dag_runs") or []
                runs.extend(batch)
                if len(batch) < PAGE or page * PAGE + len(batch) >= (data.get("total_entries") or 0):
                    break
        return runs

    def tagged_dags(self, tag: str) -> list[str]:
        """dag_ids Airflow knows with `tag`."""
        response = self.call("GET", "/api/v2/dags", params={"tags": tag, "limit": 1000})
        if response.status_code != 200:
            raise AirflowApiUnavailable(f"Airflow API /api/v2/dags answered {response.status_code}")
        return [dag["dag_id"] for dag in response.json().get("dags") or []]

    # -- HTTP ----------------------------------------------------------------------------------------------------
    def call(self, method: str, path: str, *, headers: dict | None = None, **kwargs) -> requests.Response:
        """One request to `path` (`/api/v2/...`) as this source's identity; Airflow's answer whatever its status
        (the caller judges it). Raises AirflowApiUnavailable when Airflow cannot be reached or refuses the login."""
        headers = {"Authorization": f"Bearer {self._login()}", **(headers or {})}
        return self._send(method, path, headers=headers, **kwargs)

    def _post(self, path: str, body: dict) -> dict:
        response = self._request(path, body, retry_auth=not self._caller_token)
        return response.json()

    def _request(self, path: str, body: dict, *, retry_auth: bool) -> requests.Response:
        response = self.call("POST", path, json=body)
        if response.status_code == 401 and retry_auth:  # the token expired: one new login
            self._token = None
            return self._request(path, body, retry_auth=False)
        if response.status_code != 200:
            raise AirflowApiUnavailable(
                f"Airflow API {path} answered {response.status_code}: {answer_excerpt(response)}"
            )
        return response

    def _login(self) -> str:
        if self._token is None:
            response = self._send("POST", "/auth/token", json={"username": self.username, "password": self.password})
            if response.status_code not in (200, 201):
                raise AirflowApiUnavailable(
                    f"Airflow refused the login of {self.username!r} at {self.base_url}/auth/token "
                    f"({response.status_code}); check the connection's login and password"
                )
            self._token = response.json().get("access_token")
            if not self._token:
                raise AirflowApiUnavailable(f"{self.base_url}/auth/token answered no access_token")
        return self._token

    def _send(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return self._http.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as err:
            raise AirflowApiUnavailable(
                f"cannot reach Airflow's API at {redact(self.base_url)}: {type(err).__name__}; check the host of "
                f"connection [dagops] airflow_api_conn_id"
            ) from err


def base_url_of(host: str, port: int | None, schema: str | None) -> str:
    """`http://h:8080` from a host with or without scheme; the port and schema fields fill what it lacks."""
    if "://" in host:
        url = host.rstrip("/")
        if port and url.count(":") < 2:
            url = f"{url}:{port}"
        return url
    scheme = schema if schema in ("http", "https") else "http"
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def create_command(conn_id: str) -> str:
    """The command that creates the API connection by hand (placeholders for what only the operator knows)."""
    return (
        f"airflow connections add {conn_id} --conn-type http --conn-host <the api-server's URL, e.g. "
        "http://localhost:8080> --conn-login <user> --conn-password <password>"
    )


def _connection(conn_id: str):
    """The connection from wherever Airflow keeps it: in a task through the Task SDK, elsewhere through the
    secrets backends and the metadata DB (airflow.models.Connection picks the right path)."""
    try:
        return get_connection(conn_id)
    except Exception as err:
        # Airflow's own "not found" (core and Task SDK each have a class of that name): say how to create it.
        if type(err).__name__ == "AirflowNotFoundException":
            raise ConnectionMissing(
                f"Airflow connection {conn_id!r} ([dagops] airflow_api_conn_id) does not exist; dagops reads DAG "
                "run outcomes (the event feed, promotion checks) through it. `dagops init` creates it for a local "
                f"Airflow with SimpleAuthManager; elsewhere create it: {create_command(conn_id)}",
                details={"conn_id": conn_id},
            ) from err
        raise InvalidInput(  # a secrets backend that cannot be reached, a malformed connection
            f"cannot read Airflow connection {conn_id!r} ({type(err).__name__}); check the secrets backend, or "
            f"create it: {create_command(conn_id)}"
        ) from err


def _outcome(run: dict) -> RunOutcome:
    ended, started = run.get("end_date"), run.get("start_date")
    return RunOutcome(
        dag_id=run["dag_id"],
        run_id=run["dag_run_id"],
        state=run["state"],
        ended_at=datetime.fromisoformat(ended.replace("Z", "+00:00")) if ended else None,
        started_at=datetime.fromisoformat(started.replace("Z", "+00:00")) if started else None,
    )


def answer_excerpt(response: requests.Response) -> str:
    """The start of an answer, on one line and redacted, for an error message."""
    return redact(response.text[:300].replace("\n", " "))
