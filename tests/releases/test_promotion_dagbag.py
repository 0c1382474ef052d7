"""Prod and a staging copy of one repository load together in Airflow's own DagBag (the cluster policy runs):
staging dag_ids carry the stage suffix, staging DAGs start paused, and no dag_id is duplicated."""

from __future__ import annotations

from airflow_dagops.releases import promotion
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.parsing import parsed_dags
from tests.helpers.repos import dag_source


def test_prod_and_staging_load_together_with_suffixed_paused_staging_dags(dagops_env, staged_repo):
    remote, _first = staged_repo
    promotion.promote("team", actor="cli:dana")  # release 1 in prod and (still) in staging
    remote.commit("second", {"dags/c.py": dag_source("c")})
    sync_repository("team")  # release 2 in staging only

    parsed = parsed_dags(dagops_env.dags_folder)  # both bundles in bundle mode; a duplicate dag_id fails
    seen = {dag_id: found.namespace for dag_id, found in parsed.items()}
    assert seen == {
        "a": "team",
        "b": "team",
        "a__staging": "team--staging",
        "b__staging": "team--staging",
        "c__staging": "team--staging",
    }
    for dag_id, found in parsed.items():
        dag = found.dag
        staged = dag_id.endswith("__staging")
        assert dag.is_paused_upon_creation is (True if staged else None), dag_id
        assert ("dagops:team--staging" if staged else "dagops:team") in dag.tags
        assert "dagops-repo:team" in dag.tags
