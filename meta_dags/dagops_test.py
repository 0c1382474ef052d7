"""dagops_test: run a repository's own tests against a release, one mapped task per test module.

A repository opts in with `tests: required` (a failing test blocks the release) or `tests: optional` in its
`.dagops.yaml`. dagops_sync leaves such a release unpublished (status `testing`) and updates the asset this
DAG is scheduled on; `plan` finds every release waiting for its tests, `run_module` runs one module in the
validation sandbox (JUnit XML kept, and the parse and task run times the tests measured), and `finish` stores the
results with the release and publishes it when they pass and no measured time regressed against the live release's
(docs/testing.md#performance-budgets).

Trigger it by hand with conf {"repository": NAME, "release": ID_OR_SHA} to test any release on disk (the
results are stored; nothing is published unless that release was waiting for them).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task

from airflow_dagops.airflow.task_errors import DEFAULT_ARGS
from airflow_dagops.releases.tests_runner import AWAITING_TESTS_ASSET


@dag(
    dag_id="dagops_test",
    schedule=[Asset(AWAITING_TESTS_ASSET)],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["dagops", "system"],
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    is_paused_upon_creation=False,
)
def dagops_test():
    @task
    def plan() -> list[dict]:
        """The test modules to run: of the release in the conf, or of every release waiting for its tests."""
        from airflow_dagops.releases import tests as tests_service

        conf = get_current_context()["dag_run"].conf or {}
        modules = tests_service.test_plan(conf.get("repository"), conf.get("release"))
        for item in modules:
            print(f"{item['repository']} release {item['release_id']}: {item['module']}")
        return modules

    @task(map_index_template="{{ item_name }}")
    def run_module(item: dict) -> dict:
        """One test module in a sandboxed pytest process; a failing test is a result, not a task failure."""
        from airflow_dagops.releases import tests as tests_service

        get_current_context()["item_name"] = f"{item['repository']}: {item['module']}"
        result = tests_service.run_test_module(item["release_id"], item["module"])
        print(f"{item['module']}: {result['outcome']} ({result['passed']} passed, {result['failed']} failed)")
        for failure in result["failures"]:
            print(f"  {failure['kind']} {failure['test']}: {failure['message']}")
        for kind, measured in (result.get("perf") or {}).items():  # compared with the live release's in finish
            for name, seconds in measured.items():
                print(f"  measured {kind} {name}: {seconds:.3f} s")
        return {"release_id": item["release_id"], **result}

    @task
    def finish(results: list[dict]) -> list[str]:
        """Store the results with each release; publish those that were waiting and passed."""
        from airflow_dagops.airflow.task_errors import refusal
        from airflow_dagops.releases import tests as tests_service

        by_release: dict[int, list[dict]] = {}
        for result in results:
            by_release.setdefault(result.pop("release_id"), []).append(result)
        said = [tests_service.finish_release_tests(release_id, found) for release_id, found in by_release.items()]
        print("\n".join(said))
        failed = [line for line in said if "tests failed" in line]
        if failed:
            raise refusal("; ".join(failed))  # the results are stored: running them again changes nothing
        return said

    finish(run_module.expand(item=plan()))


dagops_test()
