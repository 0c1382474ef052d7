"""A classic-operator DAG with a task group, to show both styles side by side."""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TaskGroup

with DAG(
    dag_id="demo_report",
    schedule="0 6 * * 1",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["demo", "report"],
) as dag:
    start = EmptyOperator(task_id="start")
    with TaskGroup(group_id="build") as build:
        collect = BashOperator(task_id="collect", bash_command="echo collecting")
        render = BashOperator(task_id="render", bash_command="echo rendering")
        collect >> render
    publish = BashOperator(task_id="publish", bash_command="echo 'report published'")
    start >> build >> publish
