"""One DAG object reached twice in one file is one DAG; two DAG objects with one dag_id are a duplicate.

Real DAG files reach the same object twice all the time: `with DAG(...) as dag:` and then tasks attached after the
block with `dag=dag` (Airflow's own collection then returns the object twice), or one DAG bound to two module
globals. Neither may be reported as a `duplicate-dag-id` of itself, nor get its policy findings twice. Two
*different* DAG objects with one dag_id, in one file or in two, stay an error: Airflow keeps only one of them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_dagops.validate.pipeline import PipelineOptions, run_pipeline
from airflow_dagops.validate.structure import DagInfo, check_structure, duplicate_dag_id_findings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "dag_twice"


def stage(case: str, tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / case
    shutil.copytree(FIXTURES / case, root / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py"))
    return root, files


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("dag_twice")
    out = {}
    for case in ("good", "bad_same_file", "bad_two_files"):
        root, files = stage(case, tmp_path)
        out[case] = check_structure(root, files, timeout=20, workers=1)
    return out


def test_a_dag_reached_twice_in_its_file_is_one_dag_and_no_finding(results):
    result = results["good"]
    assert [f for f in result.findings if f.severity == "error"] == []
    assert sorted((d.dag_id, d.file) for d in result.dags) == [
        ("hourly_sync", "dags/bound_twice.py"),
        ("nightly_export", "dags/with_then_dag_eq.py"),
    ]
    export = next(d for d in result.dags if d.dag_id == "nightly_export")
    assert export.task_ids == ["export", "notify", "start"]  # tasks attached after the block are counted
    assert export.line == 9


def test_two_dag_objects_with_one_dag_id_in_one_file_are_a_duplicate(results):
    result = results["bad_same_file"]
    duplicates = [f for f in result.findings if f.rule == "duplicate-dag-id"]
    assert [(f.severity, f.file, f.line) for f in duplicates] == [
        ("error", "dags/copy_paste.py", 9),
        ("error", "dags/copy_paste.py", 20),
    ]
    assert "twice in this file" in duplicates[0].message
    assert "line 20" in duplicates[0].message and "line 9" in duplicates[1].message


def test_one_dag_id_in_two_files_is_a_duplicate_on_both(results):
    result = results["bad_two_files"]
    duplicates = sorted((f.file, f.message) for f in result.findings if f.rule == "duplicate-dag-id")
    assert duplicates == [
        ("dags/billing_a.py", "dag_id 'billing' is also defined in dags/billing_b.py:9."),
        ("dags/billing_b.py", "dag_id 'billing' is also defined in dags/billing_a.py:9."),
    ]
    assert all(f.severity == "error" for f in result.findings if f.rule == "duplicate-dag-id")


def test_policy_findings_are_not_doubled_for_a_dag_reached_twice(tmp_path):
    root, _ = stage("good", tmp_path)
    report = run_pipeline(root, PipelineOptions(skip={"security", "compat", "imports", "dependencies"}, timeout=20))
    assert sorted(d.dag_id for d in report.dags) == ["hourly_sync", "nightly_export"]
    keys = [(f.rule, f.file, f.line, f.message) for f in report.findings]
    assert len(keys) == len(set(keys)), keys
    assert "duplicate-dag-id" not in {f.rule for f in report.findings}


def test_the_same_dag_reported_twice_by_an_older_cache_entry_is_one_dag():
    same = DagInfo(dag_id="x", file="dags/a.py", line=3, task_ids=["t"])
    assert duplicate_dag_id_findings([same, DagInfo(**vars(same))]) == []
    other = DagInfo(dag_id="x", file="dags/a.py", line=7, task_ids=["u"])
    assert [f.line for f in duplicate_dag_id_findings([same, other])] == [3, 7]
