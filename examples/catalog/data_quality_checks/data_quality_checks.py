"""Declarative data-quality checks: one mapped task per table listed in the Variable `data_quality_checks`."""

from __future__ import annotations

import re
from datetime import timedelta

import pendulum
from airflow.sdk import Variable, dag, task

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a plain table or column name")
    return name


@dag(
    dag_id="data_quality_checks",
    schedule="@hourly",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["data-quality", "sql"],
    default_args={"owner": "analytics-engineering", "retries": 1, "retry_delay": timedelta(minutes=2)},
)
def data_quality_checks():
    @task
    def load_checks() -> list[dict]:
        config = Variable.get(
            "data_quality_checks", default={"conn_id": "warehouse", "checks": []}, deserialize_json=True
        )
        return [{**check, "conn_id": config["conn_id"]} for check in config["checks"]]

    @task(multiple_outputs=False)  # one result dict, not one XCom per key
    def run_check(check: dict) -> dict:
        from airflow.sdk import BaseHook

        hook = BaseHook.get_connection(check["conn_id"]).get_hook()
        # Names come from the Variable, not from users; still, only plain (schema.)identifiers are allowed.
        table = identifier(check["table"])
        failures = []
        rows = hook.get_first(f"SELECT COUNT(*) FROM {table}")[0]  # noqa: S608  # nosec B608
        if rows < check.get("min_rows", 0):
            failures.append(f"{rows} rows, expected at least {check['min_rows']}")
        for column in map(identifier, check.get("not_null", [])):
            nulls = hook.get_first(f"SELECT COUNT(*) FROM {table} WHERE {column} IS NULL")[0]  # noqa: S608  # nosec B608
            if nulls:
                failures.append(f"{nulls} NULLs in {column}")
        if check.get("fresh_column"):
            column = identifier(check["fresh_column"])
            newest = hook.get_first(f"SELECT MAX({column}) FROM {table}")[0]  # noqa: S608  # nosec B608
            limit = pendulum.now("UTC") - timedelta(hours=check.get("max_age_hours", 24))
            if newest is None or pendulum.instance(newest) < limit:
                failures.append(f"newest {check['fresh_column']} is {newest}, older than {limit}")
        if failures:
            raise ValueError(f"{table}: " + "; ".join(failures))
        return {"table": table, "rows": rows}

    run_check.expand(check=load_checks())


data_quality_checks()
