"""Structural diffs between releases: `diff_summaries`, `dagops diff`, and `rollback/deploy --dry-run`."""

from __future__ import annotations

import json

import pytest

from airflow_dagops.releases.diff import describe, diff_summaries, has_structure
from airflow_dagops.repositories.info import get_repository


def _dag(dag_id, tasks=("x",), schedule=None, owners=("airflow",), retries=0, tags=()):
    return {
        "dag_id": dag_id,
        "file": f"dags/{dag_id}.py",
        "owners": list(owners),
        "tags": list(tags),
        "retries": retries,
        "schedule": schedule,
        "task_ids": sorted(tasks),
    }


def _summary(*dags):
    return {"passed": True, "structure": True, "dags": list(dags)}


def test_identical_summaries_give_an_empty_diff():
    summary = _summary(_dag("a", ("x", "y"), "@daily", tags=("t",)), _dag("b"))
    assert diff_summaries(summary, summary) == {"dags_added": [], "dags_removed": [], "changed": {}}
    assert describe(diff_summaries(summary, summary)) == []


def test_dags_added_and_removed():
    diff = diff_summaries(_summary(_dag("a"), _dag("old")), _summary(_dag("a"), _dag("new"), _dag("report_daily")))
    assert diff == {"dags_added": ["new", "report_daily"], "dags_removed": ["old"], "changed": {}}
    assert describe(diff) == ["+ dag new", "+ dag report_daily", "- dag old"]


def test_tasks_schedule_owners_retries_and_tags_changes():
    old = _summary(_dag("etl", ("extract", "transform"), "@daily", ("alice",), 1, ("a", "b")))
    new = _summary(_dag("etl", ("transform", "load"), "@hourly", ("bob",), 3, ("b", "c")))
    diff = diff_summaries(old, new)
    assert diff["dags_added"] == [] and diff["dags_removed"] == []
    assert diff["changed"] == {
        "etl": {
            "tasks_added": ["load"],
            "tasks_removed": ["extract"],
            "schedule": ["@daily", "@hourly"],
            "owners": [["alice"], ["bob"]],
            "retries": [1, 3],
            "tags": {"added": ["c"], "removed": ["a"]},
        }
    }
    (line,) = describe(diff)
    assert line.startswith("~ dag etl: schedule @daily → @hourly; owners alice → bob; retries 1 → 3")
    assert "tasks +load -extract" in line and "tags +c -a" in line


def test_only_changed_keys_are_reported():
    diff = diff_summaries(_summary(_dag("etl", schedule="@daily")), _summary(_dag("etl", schedule="@hourly")))
    assert diff["changed"] == {"etl": {"schedule": ["@daily", "@hourly"]}}
    assert describe(diff) == ["~ dag etl: schedule @daily → @hourly"]


def test_old_summaries_have_no_structure():
    assert not has_structure({"passed": True, "dags": [{"dag_id": "a", "file": "dags/a.py"}]})
    assert not has_structure({"passed": True, "structure": False, "dags": []})
    assert has_structure(_summary(_dag("a")))


# -- end to end: real releases, structure step on ---------------------------------------------------------------
DAG_A_V1 = """from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
import pendulum

with DAG(dag_id="a", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1), catchup=False):
    EmptyOperator(task_id="x") >> EmptyOperator(task_id="y")
"""
DAG_A_V2 = DAG_A_V1.replace('"@daily"', '"@hourly"').replace(
    'EmptyOperator(task_id="y")', 'EmptyOperator(task_id="y") >> EmptyOperator(task_id="z")'
)
DAG_B = DAG_A_V1.replace('dag_id="a"', 'dag_id="b"')


@pytest.fixture
def two_releases(cli, git_remote, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")  # structure on
    remote = git_remote({"dags/a.py": DAG_A_V1})
    assert cli("repos", "add", "team", remote.url).exit_code == 0
    first = remote.head()
    assert cli("sync", "team").exit_code == 0
    second = remote.commit("second", {"dags/a.py": DAG_A_V2, "dags/b.py": DAG_B})
    result = cli("sync", "team")
    assert result.exit_code == 0, result.output
    return first, second


def test_dagops_diff_between_two_real_releases(cli, two_releases):
    first, second = two_releases
    result = cli("diff", "team", first[:10], second[:10], "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["complete"] and data["notes"] == []
    assert data["dags_added"] == ["b"] and data["dags_removed"] == []
    assert data["changed"] == {"a": {"tasks_added": ["z"], "schedule": ["@daily", "@hourly"]}}

    text = cli("diff", "team", first[:10], second[:10])
    assert text.exit_code == 0
    assert "+ dag b" in text.stdout and "~ dag a: schedule @daily → @hourly; tasks +z" in text.stdout


def test_rollback_dry_run_prints_the_diff_and_changes_nothing(cli, two_releases, dagops_env):
    first, second = two_releases
    before = get_repository("team")
    log_before = json.loads(cli("versions", "team", "--json").stdout)["deploy_log"]
    result = cli("rollback", "team", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run" in result.stdout and "- dag b" in result.stdout
    assert "~ dag a: schedule @hourly → @daily; tasks -z" in result.stdout
    after = get_repository("team")
    assert after.live_commit == before.live_commit == second and after.pinned_release_id is None
    assert json.loads(cli("versions", "team", "--json").stdout)["deploy_log"] == log_before
    assert {p.name for p in (dagops_env.dags_folder / "team" / "dags").iterdir()} == {"a.py", "b.py"}

    deploy = cli("deploy", "team", "--version", first, "--dry-run")
    assert deploy.exit_code == 0 and "- dag b" in deploy.stdout
    assert get_repository("team").live_commit == second
    unknown = cli("deploy", "team", "--version", "v9.9", "--dry-run")
    assert unknown.exit_code != 0 and "run deploy to validate it first" in unknown.output


def test_release_validated_without_structure_gets_a_note(cli, git_remote, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "structure,security,compat,imports,policy")
    remote = git_remote({"dags/a.py": DAG_A_V1})
    assert cli("repos", "add", "team", remote.url).exit_code == 0
    first = remote.head()
    assert cli("sync", "team").exit_code == 0
    second = remote.commit("second", {"dags/b.py": DAG_B})
    assert cli("sync", "team").exit_code == 0
    result = cli("diff", "team", first[:10], second[:10])
    assert result.exit_code == 0 and "no structure recorded for release" in result.stdout


def test_the_deploy_log_keeps_what_each_deploy_changed(cli, two_releases):
    from airflow_dagops.releases import versions as versions_service

    newest, first_deploy = versions_service.deploy_log("team", 10)
    assert first_deploy["diff"]["dags_added"] == ["a"]  # nothing was live before the first release
    assert newest["diff"]["dags_added"] == ["b"]
    assert newest["diff"]["changed"] == {"a": {"tasks_added": ["z"], "schedule": ["@daily", "@hourly"]}}
