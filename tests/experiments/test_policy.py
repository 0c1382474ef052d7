"""The cluster policy and the gate in the DAGs Airflow parses: prod's `report` and the candidate's `report__ab` carry
the gate on every task, the candidate's other DAGs are not parsed at all, `report__ab` starts unpaused, and a gated DAG
serializes the same way on every parse (no new DAG version each time)."""

from __future__ import annotations

import datetime

from airflow_dagops.airflow import experiment_gate
from airflow_dagops.experiments import service
from tests.helpers.parsing import parsed_dags


def _gated(dag) -> bool:
    return all(getattr(task._pre_execute_hook, experiment_gate.GATE_MARK, False) for task in dag.tasks)


def test_prod_and_candidate_dags_as_airflow_parses_them(dagops_env, candidate):
    service.start("team", "report", actor="test")
    parsed = parsed_dags(dagops_env.dags_folder)
    assert {dag_id: found.namespace for dag_id, found in parsed.items()} == {
        "report": "team",
        "other": "team",
        "report__ab": "team--ab",  # `other__ab` is skipped by the policy: only the experiment's DAG runs twice
        "report__staging": "team--staging",
        "other__staging": "team--staging",
    }
    assert _gated(parsed["report"].dag) and _gated(parsed["report__ab"].dag)
    assert not any(_gated(parsed[dag_id].dag) for dag_id in ("other", "report__staging", "other__staging"))
    assert parsed["report__ab"].dag.is_paused_upon_creation is False  # B gets every scheduled run too
    assert parsed["report"].dag.is_paused_upon_creation is None  # A keeps its own pause state
    assert "dagops:team--ab" in parsed["report__ab"].dag.tags and "dagops-repo:team" in parsed["report__ab"].dag.tags

    service.stop("team", actor="test")
    parsed = parsed_dags(dagops_env.dags_folder)
    assert "report__ab" not in parsed and not _gated(parsed["report"].dag)


def test_a_gated_dag_serializes_the_same_on_every_parse(dagops_env, candidate):
    from airflow.serialization.serialized_objects import DagSerialization

    service.start("team", "report", actor="test")
    first = DagSerialization.to_dict(parsed_dags(dagops_env.dags_folder)["report"].dag)
    second = DagSerialization.to_dict(parsed_dags(dagops_env.dags_folder)["report"].dag)
    assert first == second
    assert "dagops_experiment_gate" in str(first)  # the hook is stored as its source: no memory address in it


def test_the_gate_runs_before_a_task_s_own_pre_execute_and_on_mapped_tasks(dagops_env):
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    calls = []
    with DAG("x", schedule="@daily", start_date=datetime.datetime(2024, 1, 1)) as dag:
        plain = PythonOperator(task_id="plain", python_callable=print, pre_execute=lambda context: calls.append("own"))
        mapped = PythonOperator.partial(task_id="mapped", python_callable=print).expand(op_args=[[1], [2]])
    experiment = {"id": 12345, "variant": "A"}  # no such experiment in the state DB: A runs
    experiment_gate.install(dag, experiment)
    experiment_gate.install(dag, experiment)  # parsed again: the gate is not wrapped twice
    gate = plain._pre_execute_hook
    assert getattr(gate, experiment_gate.GATE_MARK) and gate.__closure__ is not None
    assert not any(getattr(cell.cell_contents, experiment_gate.GATE_MARK, False) for cell in gate.__closure__)
    assert getattr(mapped.partial_kwargs["pre_execute"], experiment_gate.GATE_MARK)
    assert dag.is_paused_upon_creation is None  # A keeps its pause state

    now = datetime.datetime.now(datetime.timezone.utc)

    class DagRun:
        run_type, logical_date, run_after = "scheduled", now, now

    gate({"dag_run": DagRun(), "logical_date": now, "run_id": "scheduled__x"})
    assert calls == ["own"]  # the gate let A run, then the task's own hook ran
