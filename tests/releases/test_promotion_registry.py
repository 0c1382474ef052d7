"""Stage namespaces never collide with a registered namespace or another repository's stage."""

from __future__ import annotations

import pytest

from airflow_dagops.errors import Conflict, InvalidInput
from airflow_dagops.repositories.info import get_repository, list_repositories
from airflow_dagops.repositories.registry import add_repository, update_repository

STAGES = {"stages": ["staging", "prod"], "soak_runs": 1}


def test_a_new_namespace_may_not_be_another_repositorys_stage(dagops_env, git_remote):
    url = git_remote().url
    add_repository("team", url, promotion=STAGES)
    with pytest.raises(Conflict, match="where repository 'team' publishes its 'staging' stage"):
        add_repository("other", url, namespace="team--staging")
    assert [r.name for r in list_repositories()] == ["team"]


def test_a_new_namespace_may_not_be_where_another_repositorys_ab_experiments_publish(dagops_env, git_remote):
    url = git_remote().url
    add_repository("team", url)
    with pytest.raises(Conflict, match="reserved for the A/B experiments of namespace 'team'"):
        add_repository("other", url, namespace="team--ab")
    assert [r.name for r in list_repositories()] == ["team"]


def test_a_stage_may_not_publish_into_a_registered_namespace(dagops_env, git_remote):
    url = git_remote().url
    add_repository("squatter", url, namespace="team--staging")
    with pytest.raises(Conflict, match="the namespace of repository 'squatter'"):
        add_repository("team", url, promotion=STAGES)
    add_repository("team", url)
    with pytest.raises(Conflict, match="the namespace of repository 'squatter'"):
        update_repository("team", promotion=STAGES)
    assert get_repository("team").promotion is None  # a refused change changes nothing


def test_two_repositories_may_not_share_a_stage_namespace(dagops_env, git_remote):
    url = git_remote().url
    add_repository("a", url, namespace="a--b", promotion={"stages": ["c", "prod"]})  # a--b--c
    with pytest.raises(Conflict, match="where repository 'a' publishes a stage too"):
        add_repository("x", url, namespace="a", promotion={"stages": ["b--c", "prod"]})


def test_a_stage_namespace_must_be_a_valid_name(dagops_env, git_remote):
    with pytest.raises(InvalidInput, match="longer than 63 characters"):
        add_repository("team", git_remote().url, namespace="n" * 60, promotion=STAGES)


def test_a_stage_may_not_take_a_folder_dagops_does_not_manage(dagops_env, git_remote):
    (dagops_env.dags_folder / "team--staging").mkdir()
    with pytest.raises(Conflict, match="not managed by dagops"):
        add_repository("team", git_remote().url, promotion=STAGES)
