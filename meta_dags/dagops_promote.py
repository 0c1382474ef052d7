"""dagops_promote: move releases through their repositories' promotion stages (docs/promotion.md).

Scheduled every `[dagops] promotion_check_interval` seconds (default 120): for every release soaking in a
stage, reads the stage DAGs' runs since it went live from Airflow's REST API (connection
`[dagops] airflow_api_conn_id`); a failed run blocks the promotion (naming the run), enough successful runs
promote the release to the next stage, and from the last one to prod. Beside it, the A/B experiments
(docs/experiments.md): each running one is judged from both variants' runs, and with `auto_promote` a decided
verdict ends it (the winner goes live or stays). Nothing soaking and no experiment: no API call at all.

Trigger with conf `{"repository": NAME}` to check one repository, or
`{"repository": NAME, "action": "promote", "force": false}` to promote by hand (recorded with the actor
`airflow:<run_id>`). The task fails with the reason when dagops refuses (blocked without force, pinned, ...).
Something soaking but no such connection: the task skips, naming the connection and how to create it.
"""

from __future__ import annotations

import functools
from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task

from airflow_dagops import settings
from airflow_dagops.airflow.task_errors import DEFAULT_ARGS

ACTIONS = ("check", "promote")


@dag(
    dag_id="dagops_promote",
    schedule=timedelta(seconds=max(30, settings.get_int("promotion_check_interval"))),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["dagops", "system"],
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    is_paused_upon_creation=False,  # checks from the start; with nothing soaking a run does no I/O but the DB
)
def dagops_promote():
    @task
    def check_or_promote() -> list[dict]:
        """Check the soaking promotions (all, or the conf's repository), or promote one by hand."""
        from airflow_dagops.airflow.rest_client import AirflowApiRunSource
        from airflow_dagops.airflow.task_errors import refusal, task_error
        from airflow_dagops.errors import DagOpsError
        from airflow_dagops.experiments import service as experiments
        from airflow_dagops.releases import promotion

        context = get_current_context()
        conf = context["dag_run"].conf or {}
        action, repository = conf.get("action", "check"), conf.get("repository")
        actor = f"airflow:{context['run_id']}"
        try:
            if action not in ACTIONS:
                raise refusal(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
            if action == "promote":
                if not repository:
                    raise refusal('promote needs {"repository": NAME} in the conf')
                results = [promotion.promote(repository, actor=actor, force=bool(conf.get("force")))]
            else:
                names = [repository] if repository else None
                source = functools.cache(AirflowApiRunSource.from_connection)  # one login serves both checks
                results = promotion.check(source, names, actor=actor)
                results += experiments.check(source, names, actor=actor)
        except DagOpsError as error:  # refused: fail; no API connection: skip; state DB or API down: retry
            raise task_error(error) from None
        for result in results:
            print(f"{result.get('repository')}: {result.get('message')}")
        return results

    check_or_promote()


dagops_promote()
