"""Testing DAG repositories: a pytest plugin (entry point `pytest11: dagops`) and helpers.

Fixtures: `dagbag`, `get_dag`, `dag` (with `@pytest.mark.dagops_dag("id")`), `run_dag`.
Performance budgets: `dag_parse_time`, `assert_parse_within`, `task_run_time`, `assert_task_within`, and
`@pytest.mark.dagops_budget(parse_seconds=N)`; `--dagops-perf-report FILE` writes what was measured.
Helpers: `mock_task(dag, task_id, result)`, `mock_operator(OperatorClass, result)`.
Integrity mode: `pytest --dagops-integrity dags/`. See docs/testing.md.

This module is imported by every pytest run in an environment with airflow-dagops installed, so it
imports nothing heavy: Airflow is imported by the fixtures that need it, when they first run.
"""

from __future__ import annotations

from airflow_dagops.testing.mocks import Mock, mock_operator, mock_task
from airflow_dagops.testing.plugin import (
    assert_parse_within,
    assert_task_within,
    dag,
    dag_parse_time,
    dagbag,
    get_dag,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_generate_tests,
    pytest_ignore_collect,
    pytest_runtest_call,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_unconfigure,
    run_dag,
    task_run_time,
)

__all__ = [
    "Mock",
    "assert_parse_within",
    "assert_task_within",
    "dag",
    "dag_parse_time",
    "dagbag",
    "get_dag",
    "mock_operator",
    "mock_task",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_generate_tests",
    "pytest_ignore_collect",
    "pytest_runtest_call",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_unconfigure",
    "run_dag",
    "task_run_time",
]
