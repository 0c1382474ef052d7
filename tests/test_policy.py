"""The cluster policy tags DAGs of dagops namespaces, and only those (the e2e test sees it in Airflow)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_dagops import policy, services
from tests.conftest import dag_source


def _dag(dag_id: str, fileloc: str, tags=("team",)) -> DAG:
    dag = DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1), tags=list(tags))
    dag.fileloc = fileloc
    return dag


def test_dags_of_a_published_namespace_get_namespace_and_repository_tags(dagops_env, git_remote):
    services.add_repository("analytics", git_remote({"dags/a.py": dag_source("a")}).url, namespace="ana")
    services.sync_repository("analytics")
    dag = _dag("a", str(dagops_env.dags_folder / "ana" / "dags" / "a.py"))
    policy.dag_policy(dag)
    assert set(dag.tags) == {"team", "dagops:ana", "dagops-repo:analytics"}


def test_other_dags_are_untouched(dagops_env, tmp_path):
    (dagops_env.dags_folder / "plain").mkdir()  # a folder nobody published: not a dagops namespace
    for fileloc in (
        str(dagops_env.dags_folder / "plain" / "x.py"),
        str(dagops_env.dags_folder / "top_level.py"),
        str(tmp_path / "elsewhere" / "y.py"),
    ):
        dag = _dag("x", fileloc)
        policy.dag_policy(dag)
        assert set(dag.tags) == {"team"}, fileloc
