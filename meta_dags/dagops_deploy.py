"""dagops_deploy: deploy a version, roll back, pin or unpin a repository through Airflow.

Never scheduled; trigger it with conf:
`{"repository": NAME, "action": "deploy" | "rollback" | "pin" | "unpin", "version": ..., "pin": true}`.
- deploy: `version` is a commit sha (7+ hex digits) or a tag; it goes through the same gate as a sync's commit
  (airflow_dagops/releases/gate.py; the repository's own tests run in this task when its .dagops.yaml asks for
  them), is published to prod only if it passes (no promotion stages), old release folders are pruned, and the
  repository is pinned to it (the next poll would otherwise undo it).
- rollback: `version` is a release id or commit sha (default: the previous good release); `pin` stays there.
- pin: keep the live release, or roll back to `version` and keep that. unpin: follow the branch again.
The run is recorded in the repository's deploy log with the actor `airflow:<run_id>`. The task fails with
the reason when dagops refuses (unknown version, failed validation, nothing to roll back to).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, get_current_context, task

from airflow_dagops.airflow.task_errors import DEFAULT_ARGS


@dag(
    dag_id="dagops_deploy",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one move at a time; the repository lock serializes them anyway
    tags=["dagops", "system"],
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    is_paused_upon_creation=False,  # triggered on demand from the start; operators can pause it
)
def dagops_deploy():
    @task
    def apply() -> dict:
        """Deploy, roll back, pin or unpin one repository as the run's conf says."""
        from airflow_dagops.airflow.task_errors import task_error
        from airflow_dagops.errors import DagOpsError
        from airflow_dagops.releases import versions as versions_service

        context = get_current_context()
        try:
            result = versions_service.run_action(
                context["dag_run"].conf or {}, actor=f"airflow:{context['run_id']}", progress=print
            )
        except DagOpsError as error:  # a refusal fails at once; a busy lock or state DB is retried
            raise task_error(error) from None
        print(result)
        return result

    apply()


dagops_deploy()
