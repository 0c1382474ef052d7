"""The plugin's pieces in process: the env file format and the mock helpers on real Airflow DAG objects."""

from __future__ import annotations

import json

import pendulum
import pytest

from airflow_dagops.errors import InvalidInput
from airflow_dagops.testing import mock_operator, mock_task
from airflow_dagops.testing.environment import default_dags_folder, load_environment_file
from airflow_dagops.testing.mocks import undo_all


def write(tmp_path, text: str, name: str = "env.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_env_file_gives_airflow_conn_and_var_variables(tmp_path):
    path = write(
        tmp_path,
        "connections:\n  api: https://user:pw@api.example.com\n  db: {conn_type: postgres, host: db, port: 5432}\n"
        "variables:\n  name: plain\n  limits: {low: 1}\n  retries: 3\n",
    )
    env = load_environment_file(path).env_vars()
    assert env["AIRFLOW_CONN_API"] == "https://user:pw@api.example.com"
    assert json.loads(env["AIRFLOW_CONN_DB"]) == {"conn_type": "postgres", "host": "db", "port": 5432}
    assert env["AIRFLOW_VAR_NAME"] == "plain"
    assert json.loads(env["AIRFLOW_VAR_LIMITS"]) == {"low": 1}
    assert env["AIRFLOW_VAR_RETRIES"] == "3"


def test_env_file_in_json_and_an_empty_one(tmp_path):
    path = write(tmp_path, json.dumps({"variables": {"a": "b"}}), "env.json")
    assert load_environment_file(path).env_vars() == {"AIRFLOW_VAR_A": "b"}
    assert load_environment_file(write(tmp_path, "", "empty.yaml")).env_vars() == {}
    assert load_environment_file(None).env_vars() == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "expected a mapping with 'connections' and/or 'variables', got list"),
        ("secrets: {}\n", "expected a mapping"),
        ("connections: [a]\n", "'connections' must be a mapping of id to value, got list"),
        ("connections:\n  bad-id: http://x\n", "connections id 'bad-id' must be letters, digits and underscores"),
        ("connections:\n  db: {host: db}\n", "connection 'db' needs a conn_type"),
        ("connections:\n  db: 5\n", "connection 'db' must be a URI or a mapping, got int"),
        ("variables: {a: [1,\n", "line 2: not valid YAML or JSON"),
    ],
)
def test_a_bad_env_file_names_what_is_wrong(tmp_path, text, message):
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[")):
        load_environment_file(write(tmp_path, text))


def test_a_missing_env_file_is_named(tmp_path):
    with pytest.raises(InvalidInput, match="cannot read the dagops env file .*nope.yaml"):
        load_environment_file(tmp_path / "nope.yaml")


def test_default_dags_folder_is_dags_when_present(tmp_path):
    assert default_dags_folder(tmp_path) == tmp_path
    (tmp_path / "dags").mkdir()
    assert default_dags_folder(tmp_path) == tmp_path / "dags"


def make_dag():
    from airflow.sdk import DAG
    from airflow.sdk.bases.operator import BaseOperator

    class Extract(BaseOperator):
        def execute(self, context):
            return "real"

    with DAG("helpers", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
        Extract(task_id="extract") >> Extract(task_id="load")
    return dag, Extract


def test_mock_task_returns_a_value_calls_a_callable_or_raises_and_is_undone():
    dag, _ = make_dag()
    task = dag.task_dict["extract"]
    with mock_task(dag, "extract", {"rows": 1}) as mock:
        assert task.execute(context={"ti": "x"}) == {"rows": 1}
    assert mock.calls == [{"ti": "x"}]
    assert task.execute({}) == "real"
    with mock_task(dag, "extract", lambda context: context["n"] * 2):
        assert task.execute(context={"n": 4}) == 8
    with mock_task(dag, "extract", lambda: "no context"):
        assert task.execute(context={}) == "no context"
    with mock_task(dag, "extract", ValueError("boom")), pytest.raises(ValueError, match="boom"):
        task.execute(context={})
    assert task.execute({}) == "real"


def test_mock_operator_covers_every_task_of_the_class_until_undone():
    dag, extract_class = make_dag()
    mock = mock_operator(extract_class, 7)
    assert [dag.task_dict[t].execute({}) for t in ("extract", "load")] == [7, 7]
    assert len(mock.calls) == 2
    undo_all()
    assert dag.task_dict["load"].execute({}) == "real"


def test_mocking_an_unknown_task_or_a_non_operator_is_refused():
    dag, _ = make_dag()
    with pytest.raises(InvalidInput, match="DAG 'helpers' has no task 'nope' to mock; its tasks: extract, load"):
        mock_task(dag, "nope", 1)
    with pytest.raises(InvalidInput, match="needs an operator class"):
        mock_operator("BashOperator", 1)
