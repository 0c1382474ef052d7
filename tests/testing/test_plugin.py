"""The pytest plugin as a DAG repository uses it: a small repository's own tests run in a pytest subprocess
(pytester), with the plugin loaded from its entry point like in any project that installs airflow-dagops."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

# A TaskFlow DAG whose first task calls an HTTP API. The API's address comes from a Connection: a closed
# port on the loopback address, so an unmocked run fails fast without any traffic leaving the machine.
EXCHANGE_RATES_DAG = """
import pendulum
import requests
from airflow.sdk import BaseHook, Variable, dag, task


@dag(
    dag_id="exchange_rates",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"currency": "EUR"},
    tags=["fx"],
)
def exchange_rates():
    @task
    def fetch_rates():
        api = BaseHook.get_connection("rates_api")
        response = requests.get(f"http://{api.host}:{api.port}/rates", timeout=5)
        response.raise_for_status()
        return response.json()

    @task
    def convert(rates, **context):
        currency = context["params"]["currency"]
        margin = float(Variable.get("fx_margin"))
        return round(rates[currency] * (1 + margin), 4)

    convert(fetch_rates())


exchange_rates()
"""

AUDIT_DAG = """
import pendulum
from airflow.sdk import dag, task


@dag(dag_id="audit", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def audit():
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def double(n):
        return n * 2

    double.expand(n=numbers())


audit()
"""

ENV_FILE = """
connections:
  rates_api: http://127.0.0.1:9
  warehouse:
    conn_type: postgres
    host: db.internal
    login: reader
variables:
  fx_margin: "0.1"
  thresholds: {low: 1, high: 5}
"""

REPO_TESTS = """
import pytest
from airflow_dagops.errors import InvalidInput
from airflow_dagops.testing import mock_operator, mock_task

RATES = {"EUR": 1.0, "USD": 2.0}


def test_dagbag_loads_every_dag(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dag_ids) == ["audit", "exchange_rates"]


@pytest.mark.dagops_dag("exchange_rates")
def test_dag_by_marker(dag):
    assert dag.dag_id == "exchange_rates"
    assert set(dag.task_ids) == {"fetch_rates", "convert"}


@pytest.mark.dagops_dag()
def test_every_dag_has_tasks(dag):
    assert dag.task_ids


@pytest.mark.parametrize("dag", ["audit"], indirect=True)
def test_dag_by_indirect_parametrize(dag):
    assert dag.dag_id == "audit"


def test_mocked_http_task_run_succeeds(run_dag):
    result = run_dag("exchange_rates", conf={"currency": "USD"}, mocks={"fetch_rates": RATES})
    result.assert_success()
    assert result.task_states == {"fetch_rates": "success", "convert": "success"}
    # the mock's value went through XCom; the Variable came from the env file
    assert result.xcoms == {"fetch_rates": RATES, "convert": 2.2}
    assert len(result.mocks["fetch_rates"].calls) == 1


def test_unmocked_http_task_fails_and_the_result_says_so(run_dag):
    result = run_dag("exchange_rates")
    assert result.state == "failed"
    assert not result.succeeded
    assert result.task_states == {"fetch_rates": "failed", "convert": "upstream_failed"}
    assert result.failed_tasks == ["fetch_rates"]
    with pytest.raises(AssertionError, match="fetch_rates=failed"):
        result.assert_success()


def test_callable_mock_gets_the_task_context(run_dag):
    seen = []

    def fake_api(context):
        seen.append(context["params"]["currency"])
        return {"GBP": 10.0}

    result = run_dag("exchange_rates", conf={"currency": "GBP"}, mocks={"fetch_rates": fake_api})
    assert seen == ["GBP"]
    assert result.xcoms["convert"] == 11.0


def test_mock_raising_an_exception_fails_the_task(run_dag):
    result = run_dag("exchange_rates", mocks={"fetch_rates": RuntimeError("API down")})
    assert result.task_states["fetch_rates"] == "failed"


def test_mock_task_helper_is_undone_after_its_block(get_dag, run_dag):
    dag = get_dag("exchange_rates")
    original = dag.task_dict["fetch_rates"].execute
    with mock_task(dag, "fetch_rates", RATES):
        assert run_dag(dag).succeeded
    assert dag.task_dict["fetch_rates"].execute == original


def test_mock_operator_replaces_every_task_of_its_class(get_dag, run_dag):
    dag = get_dag("audit")
    mock_operator(type(dag.task_dict["numbers"]), [7, 8])  # undone by the fixture when the test ends
    result = run_dag(dag)
    assert result.xcoms == {"numbers": [7, 8], "double": [[7, 8], [7, 8]]}


def test_mapped_task_values_are_listed_by_map_index(run_dag):
    result = run_dag("audit")
    assert result.task_states == {"numbers": "success", "double": "success"}
    assert result.xcoms == {"numbers": [1, 2, 3], "double": [2, 4, 6]}


def test_mock_of_an_unknown_task_is_refused(run_dag):
    with pytest.raises(InvalidInput, match="no task 'nope'"):
        run_dag("exchange_rates", mocks={"nope": 1})


def test_environment_file_reaches_the_process(dagbag):
    import json, os

    assert json.loads(os.environ["AIRFLOW_CONN_WAREHOUSE"])["host"] == "db.internal"
    assert json.loads(os.environ["AIRFLOW_VAR_THRESHOLDS"]) == {"low": 1, "high": 5}
"""


def make_repository(pytester: pytest.Pytester) -> None:
    pytester.makefile(".py", **{"dags/exchange_rates": EXCHANGE_RATES_DAG, "dags/audit": AUDIT_DAG})
    pytester.makefile(".yaml", **{"tests/dagops-env": ENV_FILE})
    pytester.makefile(".py", **{"tests/test_dags": REPO_TESTS})
    pytester.makeini("[pytest]\ndagops_env = tests/dagops-env.yaml\n")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


def test_fixtures_and_run_dag_in_a_dag_repository(pytester):
    make_repository(pytester)
    result = run(pytester, "-v", "tests")
    result.assert_outcomes(passed=14)
    result.stdout.fnmatch_lines(
        ["*test_dag_by_marker[[]exchange_rates[]] PASSED*", "*test_every_dag_has_tasks[[]audit[]] PASSED*"]
    )


def test_dag_fixture_without_an_id_says_how_to_name_one(pytester):
    pytester.makefile(".py", **{"dags/audit": AUDIT_DAG})
    pytester.makepyfile(test_it="def test_it(dag):\n    pass\n")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*mark the test with @pytest.mark.dagops_dag('my_dag')*"])


def test_unknown_dag_id_lists_the_dags_there_are(pytester):
    pytester.makefile(".py", **{"dags/audit": AUDIT_DAG})
    pytester.makepyfile(test_it="def test_it(get_dag):\n    get_dag('nope')\n")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no DAG 'nope' in *dags (DAGs: audit)*"])


def test_a_bad_environment_file_is_a_clear_usage_error(pytester):
    pytester.makefile(".py", **{"dags/audit": AUDIT_DAG})
    pytester.makefile(".yaml", env=textwrap.dedent("connections:\n  warehouse: {host: db}\n"))
    pytester.makepyfile(test_it="def test_it(dagbag):\n    pass\n")
    result = run(pytester, "--dagops-env", "env.yaml")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*connection 'warehouse' needs a conn_type*"])


def test_an_unused_plugin_imports_no_airflow_and_a_projects_own_fixture_wins(pytester):
    pytester.makeconftest("import pytest\n\n\n@pytest.fixture\ndef dag():\n    return 'mine'\n")
    pytester.makepyfile(
        test_it="import sys\n\n\ndef test_it(dag):\n    assert dag == 'mine'\n    assert 'airflow' not in sys.modules\n"
    )
    result = run(pytester)
    result.assert_outcomes(passed=1)
