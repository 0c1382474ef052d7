"""Connect arguments that make Airflow's SQLite metadata DB wait for its one writer: `make run` points
`[database] sql_alchemy_connect_args` (and `..._async`) here.

SQLite lets one connection write at a time, and pysqlite gives up after 5 s with "database is locked". In `make run`
the scheduler, the dag-processor, the api-server (which writes for every task, through the execution API) and the
LocalExecutor's tasks share one SQLite file: on busy cores a write waited longer than that, and the REST API answered
a DAG run trigger with 500 ("Database error"). Waiting up to 60 s costs nothing while the file is free. Another
database gets no arguments from here (its driver would refuse `timeout`).
"""

from __future__ import annotations

from typing import Any

from airflow.configuration import conf

WAIT_SECONDS = 60


def _for_sqlite() -> dict[str, Any]:
    connection = conf.get("database", "sql_alchemy_conn", fallback="") or ""
    return {"timeout": WAIT_SECONDS} if connection.startswith("sqlite") else {}


# Two dicts: Airflow adds `check_same_thread` to the one it is given for its sync engine.
CONNECT_ARGS: dict[str, Any] = _for_sqlite()
CONNECT_ARGS_ASYNC: dict[str, Any] = _for_sqlite()
