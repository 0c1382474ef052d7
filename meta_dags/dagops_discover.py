"""dagops_discover: scan the Git host organizations of dagops.yaml's `discovery:` block for repositories that match
their rules (docs/many-repositories.md).

Scheduled by `[dagops] discovery_schedule` (default hourly; empty: triggered runs only). New matches are recorded
as proposed (or registered, for a source with `register: true`); matches that disappeared are flagged removed,
never deleted. With no source configured the task skips and says how to add one.

Trigger with conf `{"source": NAME}` to scan one source, `{"apply": true}` to register every proposed match. A
source whose host cannot be reached or refuses is reported; the others are scanned, and then the task fails.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from airflow_dagops import settings
from airflow_dagops.airflow.task_errors import DEFAULT_ARGS

DISCOVERY_SCHEDULE = settings.get("discovery_schedule")


@dag(
    dag_id="dagops_discover",
    schedule=CronTriggerTimetable(DISCOVERY_SCHEDULE, timezone="UTC") if DISCOVERY_SCHEDULE else None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["dagops", "system"],
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    is_paused_upon_creation=False,  # discovery is opt-in through dagops.yaml; without it the run only skips
)
def dagops_discover():
    @task
    def discover() -> dict:
        """Scan the sources, record the matches, register where the source (or the conf) says so."""
        from airflow.sdk.exceptions import AirflowSkipException

        from airflow_dagops.airflow.task_errors import refusal, task_error
        from airflow_dagops.discovery import service as discovery
        from airflow_dagops.errors import DagOpsError

        conf = get_current_context()["dag_run"].conf or {}
        source, apply = conf.get("source"), conf.get("apply", False)
        if (source is not None and not isinstance(source, str)) or not isinstance(apply, bool):
            raise refusal('conf: {"source": NAME} and/or {"apply": true}')
        if not discovery.configured():
            raise AirflowSkipException(
                "no discovery source is configured: add a `discovery:` block to dagops.yaml and apply it "
                "(dagops repos apply -f dagops.yaml); see docs/many-repositories.md"
            )
        try:
            result = discovery.scan(source, apply=apply)
        except DagOpsError as error:
            raise task_error(error) from None
        failed = []
        for each in result["sources"]:
            if each.get("error"):
                failed.append(each["source"])
                print(f"{each['source']}: FAILED: {each['error']}")
                continue
            print(
                f"{each['source']}: {each['listed']} repositories, {each['matched']} match; new {each['new']}, "
                f"back {each['back']}, removed (flagged) {each['removed']}"
            )
            for outcome in each["registered"]:
                done = "registered" if outcome["ok"] else "not registered"
                print(f"  {done} {outcome['name']}: {outcome['reason'] or outcome['url']}")
        if failed:  # the others were scanned and recorded; a retry would scan them again
            raise refusal(f"discovery sources that could not be scanned: {failed}")
        return {"sources": [each["source"] for each in result["sources"]]}

    discover()


dagops_discover()
