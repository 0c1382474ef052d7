"""dagops_sync: keep every registered repository's namespace up to date with its Git ref.

Sense, then act: `sense` checks all repositories with cheap `git ls-remote` calls in one task; one mapped
`sync` task runs per repository that changed (or that the run's conf asked for). A cycle where nothing
changed maps zero sync tasks, so 100 quiet repositories cost one task a minute, not 100.

Trigger one repository with conf {"repository": "NAME"} (add "force": true to re-validate).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task

from airflow_dagops import settings
from airflow_dagops.airflow.task_errors import DEFAULT_ARGS
from airflow_dagops.health import observe
from airflow_dagops.releases.tests_runner import AWAITING_TESTS_ASSET
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.sync import sense as sensing
from airflow_dagops.sync.sync import sync_repository


def _trigger_of(context) -> str:
    dag_run = context["dag_run"]
    conf = dag_run.conf or {}
    if conf.get("trigger") in ("webhook", "manual", "cli"):
        return conf["trigger"]
    return "schedule" if str(dag_run.run_type).lower().endswith("scheduled") else "manual"


@dag(
    dag_id="dagops_sync",
    schedule=settings.get("sync_schedule") or None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["dagops", "system"],
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    is_paused_upon_creation=False,  # the system DAG polls from the start; operators can pause it
)
def dagops_sync():
    @task
    def sense() -> list[dict]:
        """Return the repositories to sync in this run."""

        context = get_current_context()
        conf = context["dag_run"].conf or {}
        trigger = _trigger_of(context)
        requested = conf.get("repository")
        if requested:
            get_repository(requested)  # fail clearly if it is not registered
            return [{"repository": requested, "trigger": trigger, "force": bool(conf.get("force"))}]
        changed = [r for r in sensing.sense(respect_poll_interval=trigger == "schedule") if r.changed]
        observe.publish_gauges()  # StatsD/OpenTelemetry gauges, once per poll (docs/operations.md)
        for result in changed:
            print(f"{result.repository}: {result.reason}" + (f" ({result.error})" if result.error else ""))
        return [{"repository": r.repository, "trigger": trigger, "force": False} for r in changed]

    # Every successful sync updates this asset, which schedules dagops_test; it finds the releases waiting for
    # their tests (if any) and runs them. (An outlet on a separate task would make that task the DAG's leaf,
    # and a failed sync would no longer fail the run.)
    @task(map_index_template="{{ item_name }}", outlets=[Asset(AWAITING_TESTS_ASSET)])
    def sync(item: dict) -> dict:
        """Fetch, export, validate and publish one repository."""
        from airflow_dagops.airflow.task_errors import refusal

        context = get_current_context()
        context["item_name"] = item["repository"]  # shown as the map index label in the Airflow UI
        outcome = sync_repository(
            item["repository"],
            trigger=item["trigger"],
            airflow_run_id=context["run_id"],
            force=item.get("force", False),
            progress=lambda step: print(f"{item['repository']}: {step}"),
            defer_tests=True,  # a repository's own tests run in dagops_test, one mapped task per module
        )
        print(outcome.message)
        for finding in outcome.findings:
            print(f"  {finding['severity']} {finding['rule']} {finding['file']}:{finding['line']} {finding['message']}")
        if not outcome.ok:  # recorded with its reason; the next poll is the retry
            raise refusal(outcome.message)
        return {"repository": outcome.repository, "status": outcome.status, "commit": outcome.commit}

    sync.expand(item=sense())


dagops_sync()
