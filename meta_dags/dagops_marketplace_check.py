"""dagops_marketplace_check: refresh the marketplace catalogs, then validate every package for its badge.

Scheduled by `[dagops] marketplace_check_schedule` (default daily; empty: triggered runs only). The first run
comes as soon as Airflow first sees the DAG (catchup is off, so the latest scheduled time already past runs,
e.g. today's 00:00 for `@daily`): a fresh install has its badges within minutes, then once a day. The first
task fetches every catalog and rebuilds the package index; the second runs the full validation pipeline on
the newest released version of each package (exported from the catalog mirror into a scratch folder) and
stores its badge: passing or failing, and which checks failed (docs/marketplace.md).

Trigger with conf `{"catalogs": [NAME, ...]}` and/or `{"packages": [NAME, ...]}` to limit the run. A catalog
that cannot be fetched keeps its previous index; the run goes on with the others and then fails, naming it.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from airflow_dagops import settings
from airflow_dagops.airflow.task_errors import DEFAULT_ARGS

CHECK_SCHEDULE = settings.get("marketplace_check_schedule")


def _names(conf: dict, key: str) -> list[str] | None:
    value = conf.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        from airflow_dagops.airflow.task_errors import refusal

        raise refusal(f'"{key}" must be a list of names, e.g. {{"{key}": ["community"]}}')
    return value


@dag(
    dag_id="dagops_marketplace_check",
    # A trigger timetable: runs at the scheduled times themselves (no data interval to wait out), and with
    # catchup off only the latest one already past, once, when Airflow first sees the DAG.
    schedule=CronTriggerTimetable(CHECK_SCHEDULE, timezone="UTC") if CHECK_SCHEDULE else None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["dagops", "system", "marketplace"],
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    is_paused_upon_creation=False,  # badges from the start, not after someone finds the DAG and unpauses it
)
def dagops_marketplace_check():
    @task
    def refresh() -> list[dict]:
        """Fetch the catalogs and rebuild their package index."""
        from airflow_dagops.airflow.task_errors import task_error
        from airflow_dagops.errors import DagOpsError
        from airflow_dagops.marketplace import catalogs

        conf = get_current_context()["dag_run"].conf or {}
        try:
            results = catalogs.refresh_catalogs(_names(conf, "catalogs"))
        except DagOpsError as error:
            raise task_error(error) from None
        for result in results:
            print(result["message"])
            for problem in result.get("problems", []):
                print(f"  skipped: {problem}")
        return results

    @task
    def check(refreshed: list[dict]) -> list[dict]:
        """Validate each package's newest released version and store its badge."""
        from airflow_dagops.airflow.task_errors import refusal, task_error
        from airflow_dagops.errors import DagOpsError
        from airflow_dagops.marketplace import checks

        conf = get_current_context()["dag_run"].conf or {}
        try:
            badges = checks.check_packages(_names(conf, "packages"))
        except DagOpsError as error:
            raise task_error(error) from None
        for badge in badges:
            failed = [step for step, state in badge["checks"].items() if state == "failed"]
            print(f"{badge['catalog']}/{badge['package']} {badge['version']}: {badge['status']} {failed or ''}")
        unreachable = [r["catalog"] for r in refreshed if r["status"] != "ok"]
        if unreachable:  # the badges are stored; a retry of this task would not fetch the catalogs again
            raise refusal(f"catalogs not refreshed (their previous index was checked): {unreachable}")
        return badges

    check(refresh())


dagops_marketplace_check()
