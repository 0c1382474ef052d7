"""A small TaskFlow ETL: extract a few records, transform them, load a summary."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="demo_etl",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["demo", "etl"],
    default_args={"owner": "data-team", "retries": 1},
)
def demo_etl():
    @task
    def extract() -> list[dict]:
        return [{"city": "Lisbon", "temp": 21}, {"city": "Oslo", "temp": 4}, {"city": "Cairo", "temp": 30}]

    @task
    def transform(rows: list[dict]) -> dict:
        temps = [row["temp"] for row in rows]
        return {"count": len(rows), "mean": sum(temps) / len(temps), "max": max(temps)}

    @task
    def load(summary: dict) -> None:
        print(f"loaded summary: {summary}")

    load(transform(extract()))


demo_etl()
