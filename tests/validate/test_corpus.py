"""The fixture corpus through the whole pipeline: every bad DAG is caught with its exact rule id, every
good DAG passes, and Airflow's own example DAGs raise no error a plain DagBag load would not."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from airflow_dagops.validate.pipeline import PipelineOptions, run_pipeline

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BAD = sorted(p for p in (FIXTURES / "bad").iterdir() if p.name != "__pycache__") if (FIXTURES / "bad").is_dir() else []
GOOD = sorted((FIXTURES / "good").glob("*.py")) if (FIXTURES / "good").is_dir() else []


def expectation(case: Path) -> tuple[str, str]:
    first = (case / "EXPECT" if case.is_dir() else case).read_bytes().split(b"\n", 1)[0].decode()
    assert first.startswith("# expect: "), f"{case.name} must start with '# expect: <severity> <rule>'"
    severity, rule = first.removeprefix("# expect: ").split()
    return severity, rule


def full_pipeline(root: Path, tmp_path: Path):
    # Short limits keep the corpus quick: the hang and the memory hog are killed within them.
    return run_pipeline(root, PipelineOptions(cache_path=tmp_path / "cache.db", timeout=5, memory_limit=512 * 2**20))


def stage(case: Path, root: Path) -> None:
    if case.is_dir():
        shutil.copytree(case, root / "dags", ignore=shutil.ignore_patterns("EXPECT", "__pycache__"))
    else:
        (root / "dags").mkdir(parents=True)
        shutil.copy(case, root / "dags" / case.name)


@pytest.mark.parametrize("case", BAD, ids=[p.name for p in BAD])
def test_every_bad_fixture_is_caught_with_its_rule(case, tmp_path):
    severity, rule = expectation(case)
    root = tmp_path / "release"
    stage(case, root)
    report = full_pipeline(root, tmp_path)
    found = {(f.severity, f.rule) for f in report.findings}
    assert (severity, rule) in found, f"expected {severity} {rule}, got {sorted(found)}"
    assert report.passed == (severity != "error")


@pytest.mark.parametrize("case", GOOD, ids=[p.name for p in GOOD])
def test_every_good_fixture_passes(case, tmp_path):
    root = tmp_path / "release"
    stage(case, root)
    report = full_pipeline(root, tmp_path)
    assert report.errors == [], [f.to_dict() for f in report.errors]
    assert report.dags, "the good fixture should define at least one DAG"


def test_generated_cases_a_5_mb_file_and_a_symlink_out_of_the_tree(tmp_path):
    root = tmp_path / "release"
    (root / "dags").mkdir(parents=True)
    (root / "dags" / "huge.py").write_text("# generated\n" + "VALUE = 1\n" * 520_000)
    os.symlink("/etc/passwd", root / "dags" / "passwd.py")
    report = full_pipeline(root, tmp_path)
    found = {(f.severity, f.rule, f.file) for f in report.findings}
    assert ("error", "file-too-large", "dags/huge.py") in found
    assert ("warning", "symlink-outside-tree", "dags/passwd.py") in found


def test_airflows_example_dags_raise_no_error_a_plain_dagbag_would_not(tmp_path):
    import airflow
    from airflow.dag_processing.dagbag import DagBag

    examples = Path(airflow.__file__).parent / "example_dags"
    root = tmp_path / "examples"
    shutil.copytree(examples, root, ignore=shutil.ignore_patterns("__pycache__"))
    bag = DagBag(dag_folder=str(root))
    plain_failures = {os.path.relpath(path, root) for path in bag.import_errors}
    report = full_pipeline(root, tmp_path)
    unexpected = [f.to_dict() for f in report.errors if f.file not in plain_failures]
    assert unexpected == []
    assert len({d.dag_id for d in report.dags}) >= len(bag.dag_ids) * 0.9


def test_every_rule_the_corpus_expects_is_in_the_catalogue():
    from airflow_dagops.validate.rules import all_rules

    catalogue = all_rules()
    missing = sorted({expectation(case)[1] for case in BAD} - set(catalogue))
    assert missing == []
    assert all(description.strip() for description in catalogue.values())
