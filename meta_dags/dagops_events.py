"""dagops_events: record the outcomes of DAG runs of published DAGs in the dagops event feed (docs/automation.md).

Scheduled every `[dagops] events_interval` seconds (default 300): reads the finished runs of the DAGs of every
live release that ended since the last run, from Airflow's REST API (connection `[dagops] airflow_api_conn_id`,
as promotion checks use), and records one `dag_run` event per run (dag_id, run_id, state, repository,
namespace). Nothing published: no API call at all. The feed is read with `GET .../api/v1/events` or
`dagops events --follow`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from airflow_dagops import settings


@dag(
    dag_id="dagops_events",
    schedule=timedelta(seconds=max(60, settings.get_int("events_interval"))),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["dagops", "system"],
    doc_md=__doc__,
    is_paused_upon_creation=False,
)
def dagops_events():
    @task
    def collect_dag_runs() -> int:
        """Record the DAG runs of published DAGs that ended since the last run."""
        from airflow.exceptions import AirflowException

        from airflow_dagops.airflow.rest_client import AirflowApiRunSource
        from airflow_dagops.errors import DagOpsError
        from airflow_dagops.events import dag_runs as dag_run_events
        from airflow_dagops.safety import redact

        try:
            recorded = dag_run_events.collect(AirflowApiRunSource.from_connection)
        except DagOpsError as error:
            raise AirflowException(redact(str(error))) from None
        print(f"recorded {recorded} DAG run outcome(s)")
        return recorded

    collect_dag_runs()


dagops_events()
