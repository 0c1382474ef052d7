"""The cluster policy tags DAGs of dagops namespaces, and only those (the e2e test sees it in Airflow)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_dagops.airflow import cluster_policy as policy
from airflow_dagops.repositories.registry import add_repository, update_repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source


def _dag(dag_id: str, fileloc: str, tags=("team",)) -> DAG:
    dag = DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1), tags=list(tags))
    dag.fileloc = fileloc
    return dag


def test_dags_of_a_published_namespace_get_namespace_and_repository_tags(dagops_env, git_remote):
    add_repository("analytics", git_remote({"dags/a.py": dag_source("a")}).url, namespace="ana")
    sync_repository("analytics")
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


# -- access control (FAB auth manager): the namespace's repository decides who may read and edit its DAGs ----------
def _published_dag(dagops_env, namespace: str, dag_id: str = "a") -> DAG:
    """A freshly loaded DAG object of the namespace, as the dag-processor has at each parse."""
    dag = _dag(dag_id, str(dagops_env.dags_folder / namespace / "dags" / f"{dag_id}.py"))
    policy.dag_policy(dag)
    return dag


def test_access_control_is_set_only_for_namespaces_that_declare_it(dagops_env, git_remote):
    guarded = git_remote({"dags/a.py": dag_source("a")}, name="guarded")
    add_repository("guarded", guarded.url, access_control={"team_x": ["can_read", "can_edit"]})
    add_repository("open", git_remote({"dags/a.py": dag_source("a")}, name="open").url)
    sync_repository("guarded")
    sync_repository("open")

    # Airflow keeps old-style {role: actions} as {role: {"DAGs": actions}}: what FAB's sync_perm_for_dag reads.
    assert _published_dag(dagops_env, "guarded").access_control == {"team_x": {"DAGs": {"can_read", "can_edit"}}}
    assert _published_dag(dagops_env, "open").access_control is None
    outside = _dag("z", str(dagops_env.dags_folder / "top_level.py"))
    policy.dag_policy(outside)
    assert outside.access_control is None


def test_a_dag_of_a_namespace_without_access_control_keeps_its_own(dagops_env, git_remote):
    add_repository("open", git_remote({"dags/a.py": dag_source("a")}).url)
    sync_repository("open")
    dag = _dag("a", str(dagops_env.dags_folder / "open" / "dags" / "a.py"))
    dag.access_control = {"authors_choice": {"can_read"}}
    policy.dag_policy(dag)
    assert dag.access_control == {"authors_choice": {"DAGs": {"can_read"}}}


def test_changing_access_control_reaches_the_next_parse_without_a_restart(dagops_env, git_remote):
    add_repository("team", git_remote().url, access_control={"team_x": ["can_read"]})
    sync_repository("team")
    assert _published_dag(dagops_env, "team", "hello").access_control == {"team_x": {"DAGs": {"can_read"}}}

    # Each change rewrites the namespace file at once; the policy's cache notices it on the next parse.
    update_repository("team", access_control={"team_y": ["can_read", "can_delete"]})
    assert _published_dag(dagops_env, "team", "hello").access_control == {
        "team_y": {"DAGs": {"can_read", "can_delete"}}
    }
    update_repository("team", access_control={"team_x": ["can_edit"]})
    assert _published_dag(dagops_env, "team", "hello").access_control == {"team_x": {"DAGs": {"can_edit"}}}
    update_repository("team", access_control=None)
    assert _published_dag(dagops_env, "team", "hello").access_control is None
