"""Security findings on code Airflow never parses are warnings that say why (tests/fixtures/real/not_dag_code).

The fixture is a repository with one real DAG, operator tools beside the DAGs that `.airflowignore` hides
(`dags/tools/`), a vendored package (`vendor/shellkit/`, kept as released) and a release script that never says
"airflow" or "dag" (`scripts/release.py`). Each runs a shell at import or in a function: bandit's high findings and
`import-time-side-effect` there are warnings naming the reason, never errors. The same code in a DAG file still fails
the release, and a secret is a leak wherever it is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_dagops.validate import validate
from airflow_dagops.validate.files import IGNORED_BY_AIRFLOWIGNORE, SKIPPED_BY_SAFE_MODE
from airflow_dagops.validate.secrets import VENDORED_REASON
from airflow_dagops.validate.security import check_security

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "not_dag_code"
REASONS = {
    "dags/tools/backfill_all.py": IGNORED_BY_AIRFLOWIGNORE,
    "vendor/shellkit/run.py": "part of the vendored package in vendor/",
    "scripts/release.py": SKIPPED_BY_SAFE_MODE,
}
SHELL_TASK = '''"""Runs the export script in a task."""

import subprocess

import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def export():
    @task
    def run(command: str):
        return subprocess.call(command, shell=True)

    run("make export")


export()
'''


@pytest.fixture
def repo(tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "repo"))


def findings_of(report, file: str) -> list[tuple[str, str]]:
    return sorted((f.rule, f.severity) for f in report.findings if f.file == file and f.severity != "info")


def test_security_findings_on_files_airflow_never_parses_are_warnings_with_the_reason(repo, tmp_path):
    report = validate(repo, cache_path=tmp_path / "cache.db")
    assert report.errors == [], [(f.rule, f.file, f.message) for f in report.errors]
    assert {d.dag_id for d in report.dags} == {"nightly_index"}
    assert findings_of(report, "dags/tools/backfill_all.py") == [
        ("bandit-B605", "warning"),
        ("import-time-side-effect", "warning"),
    ]
    assert findings_of(report, "scripts/release.py") == [
        ("bandit-B602", "warning"),
        ("import-time-side-effect", "warning"),
    ]
    assert findings_of(report, "vendor/shellkit/run.py") == [
        ("bandit-B602", "warning"),
        ("import-time-side-effect", "warning"),
    ]
    # Vendored code is softened by the security check itself (as for secrets), so it says so even without a listing;
    # every other warning here names why Airflow never parses the file.
    [vendored] = [f for f in report.warnings if f.file == "vendor/shellkit/run.py" and f.rule == "bandit-B602"]
    assert vendored.message.endswith(f"a warning, not an error, because it is {VENDORED_REASON}")
    for finding in report.warnings:
        if finding.file in REASONS and finding is not vendored:
            assert finding.message.endswith(f"Airflow never parses this file as a DAG file: {REASONS[finding.file]}")
    # The cache tells the same truth.
    again = validate(repo, cache_path=tmp_path / "cache.db")
    assert sorted(map(repr, again.findings)) == sorted(map(repr, report.findings))


def test_bandit_alone_softens_vendored_code_only(repo):
    """Without the pipeline's listing, the security check itself softens vendored code; the release script and the
    ignored tool are judged by the pipeline, which knows what Airflow parses."""
    findings = check_security(repo, ["vendor/shellkit/run.py", "scripts/release.py"])
    severities = {(f.file, f.rule, f.line): f.severity for f in findings}
    assert severities[("vendor/shellkit/run.py", "bandit-B602", 9)] == "warning"
    assert severities[("scripts/release.py", "bandit-B602", 7)] == "error"


def test_the_same_shell_call_in_a_dag_file_is_still_an_error(repo, tmp_path):
    (repo / "dags" / "export.py").write_text(SHELL_TASK)
    report = validate(repo, cache_path=tmp_path / "cache.db")
    assert [(f.rule, f.file) for f in report.errors] == [("bandit-B602", "dags/export.py")]


def test_a_secret_in_a_file_airflow_never_parses_is_still_an_error(repo, tmp_path):
    (repo / "scripts" / "seed.py").write_text('WAREHOUSE_PASSWORD = "Xk9-prod-7fQ2-warehouse"\n')
    report = validate(repo, cache_path=tmp_path / "cache.db", structure=False)
    assert [(f.rule, f.file) for f in report.errors] == [("hardcoded-secret-password", "scripts/seed.py")]
