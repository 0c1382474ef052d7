"""dagops_validate: check a pull/merge request head without publishing it.

Triggered by dagops when a webhook reports an opened or updated pull request (conf {"check_run": ID});
never scheduled. The task fetches the head (refs/pull/N/head, refs/merge-requests/N/head) into the
repository's mirror, validates it like a sync would, and reports a commit status back to the Git host.
A failed validation is a successful task (the check did its job: the Git host shows it red); the task
fails only when the check could not run at all.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, get_current_context, task

from airflow_dagops.airflow.task_errors import DEFAULT_ARGS


@dag(
    dag_id="dagops_validate",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,  # validation imports DAG files in child processes: keep a burst of pushes bounded
    tags=["dagops", "system"],
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    is_paused_upon_creation=False,  # triggered by webhooks from the start; operators can pause it
)
def dagops_validate():
    @task
    def check() -> dict:
        """Validate one pull request head and report it."""
        from airflow.exceptions import AirflowException

        from airflow_dagops.airflow.task_errors import refusal
        from airflow_dagops.checks import service

        conf = get_current_context()["dag_run"].conf or {}
        if not isinstance(conf.get("check_run"), int):
            raise refusal('dagops_validate needs conf {"check_run": <id>}; dagops triggers it from webhooks')
        result = service.run_check(conf["check_run"], progress=print)
        print(
            f"check {result['id']} of {result['repository']} #{result['number']} at {result['head_sha'][:12]}: "
            f"{result['status']} ({result['description']})"
        )
        for finding in result["findings"]:
            print(f"  {finding['severity']} {finding['rule']} {finding['file']}:{finding['line']} {finding['message']}")
        if result["report_error"]:
            print(f"the commit status was not sent: {result['report_error']}")
        if result["status"] == "error":
            raise AirflowException(result["error"] or "the check could not run")
        return {"check_run": result["id"], "status": result["status"]}

    check()


dagops_validate()
