"""dagops_events: record the outcomes of DAG runs of published DAGs in the dagops event feed (docs/automation.md).

Scheduled every `[dagops] events_interval` seconds (default 300): reads the finished runs of the DAGs of every
live release that ended since the last run, from Airflow's REST API (connection `[dagops] airflow_api_conn_id`,
as promotion checks use), and records one `dag_run` event per run (dag_id, run_id, state, repository,
namespace). Both variants' DAGs of an A/B experiment are read too: each run is recorded against the release its
variant runs, and the copy of a date the experiment's gate skipped as `skipped` (docs/experiments.md). Nothing
published: no API call at all. The feed is read with `GET .../api/v1/events` or `dagops events --follow`. Then a
repository's `auto_rollback` rule judges its live release by its first runs (airflow_dagops/releases/
auto_rollback.py): a release that fails too many is rolled back, pinned and alerted.

Without that connection the task skips, and its log names the connection and the command that creates it
(`dagops init` creates it for a local Airflow with SimpleAuthManager, as `make run` has). An API that does not
answer is retried (airflow_dagops/airflow/task_errors.py), then fails: the connection points somewhere wrong.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from airflow_dagops import settings
from airflow_dagops.airflow.task_errors import DEFAULT_ARGS


@dag(
    dag_id="dagops_events",
    schedule=timedelta(seconds=max(60, settings.get_int("events_interval"))),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["dagops", "system"],
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    is_paused_upon_creation=False,
)
def dagops_events():
    @task
    def collect_dag_runs() -> int:
        """Record the DAG runs of published DAGs that ended since the last run."""
        from airflow_dagops.airflow.rest_client import AirflowApiRunSource
        from airflow_dagops.airflow.task_errors import task_error
        from airflow_dagops.errors import DagOpsError
        from airflow_dagops.events import dag_runs as dag_run_events

        try:
            recorded = dag_run_events.collect(AirflowApiRunSource.from_connection)
        except DagOpsError as error:  # no connection: skip with how to create it; API down: retry
            raise task_error(error) from None
        print(f"recorded {recorded} DAG run outcome(s)")
        # Judge the live releases by their first runs (docs/operations.md, auto-rollback) even when this run recorded
        # nothing new: an experiment check (dagops_promote) may have collected them since the last judgement.
        from airflow_dagops.releases.auto_rollback import evaluate

        for done in evaluate():
            print(f"auto_rollback: {done}")
        return recorded

    collect_dag_runs()


dagops_events()
