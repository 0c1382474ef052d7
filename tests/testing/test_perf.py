"""Performance budgets in the pytest plugin, as a DAG repository uses them: parse time of a DAG file and run time of
a task with mocks, checked against budgets and written to the perf report. The DAGs sleep at parse and run time
for as long as the test says, against budgets the test sets, so the verdicts do not depend on the machine's speed."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

# Sleeps 2 s whenever the file is parsed; its `crunch` task sleeps 2 s when it runs; `fetch` calls a closed port.
SLOW_DAG = """
import time

import pendulum
import requests
from airflow.sdk import dag, task

time.sleep(2)  # work at parse time: what the budget is for


@dag(dag_id="slow", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def slow():
    @task
    def fetch():
        return requests.get("http://127.0.0.1:9/rows", timeout=5).json()

    @task
    def crunch(rows):
        time.sleep(2)
        return len(rows)

    crunch(fetch())


slow()
"""

QUICK_DAG = """
import pendulum
from airflow.sdk import dag, task


@dag(dag_id="quick", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def quick():
    @task
    def hello():
        return "hi"

    hello()


quick()
"""

REPO_TESTS = """
import pytest

ROWS = {"fetch": [1, 2, 3]}


@pytest.mark.dagops_dag("quick")
@pytest.mark.dagops_budget(parse_seconds=1.5)
def test_quick_parses_within_budget(dag):
    assert dag.dag_id == "quick"


@pytest.mark.dagops_dag("slow")
@pytest.mark.dagops_budget(parse_seconds=1.5)
def test_slow_parse_is_over_budget(dag):
    assert dag.dag_id == "slow"


def test_parse_time_is_measured_cold(dag_parse_time, assert_parse_within):
    assert dag_parse_time("slow") >= 2.0
    assert assert_parse_within("quick.py", 1.5) < 1.5


def test_task_over_budget(assert_task_within):
    assert_task_within("slow", "crunch", 0.5, mocks=ROWS)


def test_task_within_budget(task_run_time, assert_task_within):
    assert task_run_time("slow", "crunch", mocks=ROWS) >= 2.0
    assert assert_task_within("slow", "fetch", 1.5, mocks=ROWS) < 1.5


def test_a_budget_that_is_not_a_number(assert_parse_within):
    assert_parse_within("quick", 0)


def test_a_failed_task_has_no_run_time(task_run_time):
    task_run_time("slow", "fetch")


@pytest.mark.dagops_budget(seconds=1)
def test_a_budget_marker_with_a_wrong_argument():
    pass
"""


def test_budgets_fail_with_the_numbers_and_the_report_holds_every_measurement(pytester):
    pytester.makefile(".py", **{"dags/slow": SLOW_DAG, "dags/quick": QUICK_DAG})
    pytester.makefile(".py", **{"tests/test_perf": REPO_TESTS})
    report = pytester.path / "out" / "perf.json"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-v", "tests", f"--dagops-perf-report={report}", timeout=300
    )
    result.assert_outcomes(passed=3, failed=5)
    result.stdout.fnmatch_lines_random(
        [
            "*test_quick_parses_within_budget*PASSED*",
            "*test_slow_parse_is_over_budget*FAILED*",
            "*parsing dags/slow.py took 2.* s, over its budget of 1.5 s*",
            "*task slow.crunch took 2.* s, over its budget of 0.5 s*",
            "*the parse budget must be a positive number of seconds, not 0*",
            "*task slow.fetch ended failed, so its run time says nothing*",
            "*dagops_budget takes parse_seconds=N only*",
            "*dagops: measured parse and run times*",
        ]
    )
    measured = json.loads(report.read_text())
    assert set(measured["parse"]) == {"dags/slow.py", "dags/quick.py"}
    assert measured["parse"]["dags/slow.py"] >= 2.0 > measured["parse"]["dags/quick.py"]
    # The fastest of the two measurements of crunch; fetch was measured once (the failed run records nothing).
    assert set(measured["tasks"]) == {"slow.crunch", "slow.fetch"}
    assert measured["tasks"]["slow.crunch"] >= 2.0 > measured["tasks"]["slow.fetch"]


def test_a_file_that_does_not_parse_has_no_parse_time(pytester):
    pytester.makefile(
        ".py", **{"dags/broken": "import pendulum\nfrom airflow.sdk import dag\nraise ValueError('no')\n"}
    )
    pytester.makepyfile(test_it="def test_it(dag_parse_time):\n    dag_parse_time('broken.py')\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=240)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*broken.py cannot be parsed, so its parse time says nothing*ValueError: no*"])


@pytest.mark.parametrize("budget", [-1, "1", float("nan"), True])
def test_budgets_are_positive_numbers(budget):
    from airflow_dagops.errors import InvalidInput
    from airflow_dagops.testing.perf import check_budget

    with pytest.raises(InvalidInput, match="must be a positive number of seconds"):
        check_budget(budget, "the budget")
