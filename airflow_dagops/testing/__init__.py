"""Testing DAG repositories: a pytest plugin (entry point `pytest11: dagops`) and helpers.

Fixtures: `dagbag`, `get_dag`, `dag` (with `@pytest.mark.dagops_dag("id")`), `run_dag`.
Helpers: `mock_task(dag, task_id, result)`, `mock_operator(OperatorClass, result)`.
Integrity mode: `pytest --dagops-integrity dags/`. See docs/testing.md.

This module is imported by every pytest run in an environment with airflow-dagops installed, so it
imports nothing heavy: Airflow is imported by the fixtures that need it, when they first run.
"""

from __future__ import annotations

from airflow_dagops.testing.mocks import Mock, mock_operator, mock_task
from airflow_dagops.testing.plugin import (
    dag,
    dagbag,
    get_dag,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_generate_tests,
    pytest_ignore_collect,
    pytest_unconfigure,
    run_dag,
)

__all__ = [
    "Mock",
    "dag",
    "dagbag",
    "get_dag",
    "mock_operator",
    "mock_task",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_generate_tests",
    "pytest_ignore_collect",
    "pytest_unconfigure",
    "run_dag",
]
