"""Dynamic task mapping: one task per partition, then a reduce step."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="demo_fanout",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["demo", "mapping"],
)
def demo_fanout():
    @task
    def partitions() -> list[int]:
        return list(range(4))

    @task
    def process(partition: int) -> int:
        return partition * partition

    @task
    def total(values: list[int]) -> int:
        result = sum(values)
        print(f"total = {result}")
        return result

    total(process.expand(partition=partitions()))


demo_fanout()
