"""Files Airflow never parses are not judged as DAG files (tests/fixtures/real/never_parsed).

The fixtures are real-looking repositories: `.airflowignore` in glob syntax (the Airflow 3 default) at the root and in
a subfolder, one in regexp syntax in a subfolder, a dbt project with Python models, vendored packages in Python 2
syntax, and helper modules that never say "airflow" or "dag" (one of them broken). Airflow parses none of them as DAG
files, so none may fail the release; a real DAG file with a syntax error still does, and so does a DAG importing a
broken helper.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_dagops.validate import validate
from airflow_dagops.validate.files import IGNORED_BY_AIRFLOWIGNORE, SKIPPED_BY_SAFE_MODE, list_files, parse_view

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "never_parsed"
NEVER_PARSED_GLOB = {
    "dags/report_wip.py": IGNORED_BY_AIRFLOWIGNORE,
    "dags/experiments/old_backfill.py": IGNORED_BY_AIRFLOWIGNORE,
    "scratch/try_sensor.py": IGNORED_BY_AIRFLOWIGNORE,
    "dbt/models/marts/orders_enriched.py": "a Python model of the dbt project in dbt/",
    "libs/legacy_airflow_client/setup.py": "part of the vendored package in libs/legacy_airflow_client/",
    "libs/legacy_airflow_client/legacy_airflow_client/__init__.py": (
        "part of the vendored package in libs/legacy_airflow_client/"
    ),
    "third_party/airflow_utils/dag_helpers.py": "part of the vendored package in third_party/",
    "libs/acme_sensors/src/acme_sensors/sensors.py": "part of the vendored package in libs/acme_sensors/",
    # Helpers that never say "airflow" and "dag": Airflow's safe mode never parses them (a DAG may import them).
    "helpers/naming.py": SKIPPED_BY_SAFE_MODE,
    "helpers/formatting.py": SKIPPED_BY_SAFE_MODE,
}
BROKEN_NEVER_PARSED = {
    "dags/report_wip.py",
    "dags/experiments/old_backfill.py",
    "scratch/try_sensor.py",
    "dbt/models/marts/orders_enriched.py",  # no syntax error, but raises (and imports snowflake) if imported
    "libs/legacy_airflow_client/legacy_airflow_client/__init__.py",
    "third_party/airflow_utils/dag_helpers.py",
    "libs/acme_sensors/src/acme_sensors/sensors.py",
    "helpers/formatting.py",
}


@pytest.fixture
def glob_repo(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX", "glob")
    return Path(shutil.copytree(FIXTURES / "glob", tmp_path / "glob"))


@pytest.fixture
def regexp_repo(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX", "regexp")
    return Path(shutil.copytree(FIXTURES / "regexp", tmp_path / "regexp"))


def by_file(report, file: str) -> list[tuple[str, str]]:
    return [(f.rule, f.severity) for f in report.findings if f.file == file]


def test_the_parse_view_is_airflows_listing_less_dbt_models_and_vendored_packages(glob_repo):
    view = parse_view(glob_repo, list_files(glob_repo))
    assert view.dag_files == {"dags/orders.py"}  # dags/pyproject.toml only configures ruff: no vendored package
    assert {f: view.not_parsed[f] for f in NEVER_PARSED_GLOB} == NEVER_PARSED_GLOB
    assert all(view.never_parsed(f) for f in NEVER_PARSED_GLOB)
    assert not view.never_parsed("dags/orders.py")


def test_no_error_on_files_airflow_never_parses_glob(glob_repo, tmp_path):
    report = validate(glob_repo, cache_path=tmp_path / "cache.db")
    assert report.errors == [], [(f.rule, f.file, f.message) for f in report.errors]
    assert {d.dag_id for d in report.dags} == {"orders"}  # the DAG importing the helper loads
    for file in BROKEN_NEVER_PARSED - {"dbt/models/marts/orders_enriched.py"}:
        [warning] = [f for f in report.findings if f.file == file and f.rule == "syntax-error"]
        assert warning.severity == "warning" and "never parses this file" in warning.message
        assert NEVER_PARSED_GLOB[file] in warning.message
    # Never imported (no import error), and no DAG-level check (no missing-module for snowflake) on them.
    for file in BROKEN_NEVER_PARSED:
        assert not [f for f in report.findings if f.file == file and f.rule in ("import-error", "missing-module")]
    # The cache tells the same truth.
    again = validate(glob_repo, cache_path=tmp_path / "cache.db")
    assert sorted(map(repr, again.findings)) == sorted(map(repr, report.findings))


def test_no_error_on_files_airflow_never_parses_regexp(regexp_repo, tmp_path):
    report = validate(regexp_repo, cache_path=tmp_path / "cache.db")
    assert report.errors == [], [(f.rule, f.file, f.message) for f in report.errors]
    assert by_file(report, "dags/legacy/export_v1.py") == [("syntax-error", "warning")]
    assert {d.dag_id for d in report.dags} == {"daily"}


def test_the_ignore_syntax_decides_which_files_are_dag_files(regexp_repo, monkeypatch, tmp_path):
    """Read as glob (the wrong syntax for this file), the regexp pattern matches nothing: the file is a DAG file."""
    monkeypatch.setenv("AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX", "glob")
    report = validate(regexp_repo, use_cache=False, structure=False)
    assert [(f.rule, f.file) for f in report.errors] == [("syntax-error", "dags/legacy/export_v1.py")]


def test_a_real_dag_file_with_a_syntax_error_is_still_an_error(glob_repo, tmp_path):
    (glob_repo / "dags" / "orders.py").write_text("from airflow.sdk import dag\n\n@dag(dag_id='orders'\ndef x():\n")
    report = validate(glob_repo, cache_path=tmp_path / "cache.db")
    assert [(f.rule, f.file) for f in report.errors] == [("syntax-error", "dags/orders.py")]
    assert not report.passed


def test_a_broken_helper_fails_the_dag_that_imports_it(glob_repo, tmp_path):
    """A helper's syntax error: the helper is never parsed alone, but the DAG importing it fails, and says so."""
    (glob_repo / "helpers" / "naming.py").write_text("def table_name(name):\n    return (\n")
    report = validate(glob_repo, cache_path=tmp_path / "cache.db")
    assert ("import-error", "dags/orders.py") in {(f.rule, f.file) for f in report.errors}


def test_a_broken_helper_without_the_words_is_a_warning_that_says_why(glob_repo, tmp_path):
    """Safe mode: `helpers/formatting.py` never says "airflow" nor "dag", so Airflow never parses it, and nothing
    imports it: its syntax error is a warning naming the reason, and no DAG-file check (imports, structure) runs on
    it."""
    report = validate(glob_repo, cache_path=tmp_path / "cache.db")
    assert by_file(report, "helpers/formatting.py") == [("syntax-error", "warning")]
    [warning] = [f for f in report.findings if f.file == "helpers/formatting.py"]
    assert warning.line == 8
    assert warning.message.endswith(f"Airflow never parses this file as a DAG file: {SKIPPED_BY_SAFE_MODE}")
    assert report.passed


def test_without_safe_mode_every_python_file_is_a_dag_file(glob_repo, monkeypatch):
    """`[core] dag_discovery_safe_mode = False`: Airflow parses every .py file it does not ignore, helpers included,
    so their syntax errors fail the release; ignored files, dbt models and vendored packages still do not."""
    monkeypatch.setenv("AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE", "False")
    view = parse_view(glob_repo, list_files(glob_repo))
    assert {"helpers/naming.py", "helpers/formatting.py", "dags/orders.py"} <= view.dag_files
    report = validate(glob_repo, use_cache=False, structure=False)
    assert [(f.rule, f.file) for f in report.errors] == [("syntax-error", "helpers/formatting.py")]
