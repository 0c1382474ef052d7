"""Airflow 3 compatibility check: ruff's AIR rules, mapped to findings, immune to the repo's own ruff config."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from airflow_dagops.validate import compat
from airflow_dagops.validate.compat import RULES, check_compat
from tests.helpers.repos import write_file as write

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bad"

AIRFLOW3_DAG = '''"""A clean Airflow 3 DAG."""

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="clean", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def clean():
    @task
    def extract() -> int:
        return 1

    extract()


clean()
'''

AIRFLOW2_DAG = """import pendulum
from airflow import DAG
from airflow.models import Variable
from airflow.operators.python import PythonOperator

threshold = Variable.get("threshold")

with DAG(dag_id="legacy", schedule_interval="@daily", start_date=pendulum.datetime(2024, 1, 1)):
    PythonOperator(task_id="run", python_callable=print)
"""


def by_rule(findings) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for finding in findings:
        grouped.setdefault(finding.rule, []).append(finding)
    return grouped


def expectation(path: Path) -> tuple[str, str]:
    first_line = path.read_text().splitlines()[0]
    severity, rule = first_line.removeprefix("# expect:").split()
    return severity, rule


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("compat_*.py")))
def test_each_compat_fixture_reports_its_declared_rule_and_severity(fixture):
    severity, rule = expectation(FIXTURES / fixture)
    findings = check_compat(FIXTURES, [fixture])
    assert (severity, rule) in {(f.severity, f.rule) for f in findings}, findings
    assert all(f.file == fixture for f in findings)


def test_airflow2_bash_operator_import_is_an_error_whose_hint_names_the_new_module():
    [finding] = [f for f in check_compat(FIXTURES, ["compat_airflow2_import.py"]) if f.rule == "AIR302"]
    assert finding.severity == "error"
    assert "airflow.operators.bash_operator.BashOperator" in finding.message
    assert "`airflow.providers.standard.operators.bash`" in finding.hint  # ruff's fix text
    lines = (FIXTURES / "compat_airflow2_import.py").read_text().splitlines()
    assert "BashOperator(" in lines[finding.line - 1]


def test_schedule_interval_is_an_error_telling_to_use_schedule():
    [finding] = check_compat(FIXTURES, ["compat_schedule_interval.py"])
    assert (finding.rule, finding.severity, finding.line) == ("AIR301", "error", 12)
    assert "schedule_interval" in finding.message
    assert finding.hint.startswith("Use `schedule` instead.")


def test_a_clean_airflow3_dag_has_no_findings(tmp_path):
    write(tmp_path, "dags/clean.py", AIRFLOW3_DAG)
    assert check_compat(tmp_path, ["dags/clean.py"]) == []


def test_deprecated_but_working_names_and_preview_rules_are_warnings(tmp_path):
    write(tmp_path, "legacy.py", AIRFLOW2_DAG)
    findings = by_rule(check_compat(tmp_path, ["legacy.py"]))
    assert findings["AIR301"][0].severity == "error"  # schedule_interval
    assert {f.severity for f in findings["AIR311"]} == {"warning"}  # airflow.DAG, airflow.models.Variable
    assert {f.severity for f in findings["AIR312"]} == {"warning"}  # airflow.operators.python.PythonOperator
    # AIR003 is a preview rule in ruff 0.17: present only because the check passes --preview.
    [variable_get] = findings["AIR003"]
    assert (variable_get.severity, variable_get.line) == ("warning", 6)
    assert "airflow.sdk" in findings["AIR311"][0].hint


def test_a_dag_without_schedule_gets_the_air002_warning_and_a_concrete_hint(tmp_path):
    write(tmp_path, "noschedule.py", AIRFLOW3_DAG.replace('schedule="@daily", ', ""))
    [finding] = check_compat(tmp_path, ["noschedule.py"])
    assert (finding.rule, finding.severity) == ("AIR002", "warning")
    assert "schedule=" in finding.hint  # ruff has no fix text for AIR002: our fallback hint


@pytest.mark.parametrize(
    "config_file, content",
    [
        ("pyproject.toml", '[tool.ruff]\nforce-exclude = true\nextend-exclude = ["*.py"]\n'),
        ("pyproject.toml", '[tool.ruff.lint]\nignore = ["AIR"]\nper-file-ignores = {"*.py" = ["AIR"]}\n'),
        ("ruff.toml", '[lint]\nper-file-ignores = {"*.py" = ["AIR301"]}\n'),
        (".ruff.toml", 'extend-exclude = ["legacy.py"]\nforce-exclude = true\n'),
    ],
)
def test_a_ruff_config_in_the_repository_does_not_change_the_result(tmp_path, config_file, content):
    write(tmp_path, "legacy.py", AIRFLOW2_DAG)
    baseline = check_compat(tmp_path, ["legacy.py"])
    write(tmp_path, config_file, content)
    assert check_compat(tmp_path, ["legacy.py"]) == baseline
    assert "AIR301" in by_rule(baseline)


def test_noqa_comments_and_ruff_environment_variables_do_not_switch_rules_off(tmp_path, monkeypatch):
    source = AIRFLOW2_DAG.replace("2024, 1, 1)):", "2024, 1, 1)):  # noqa: AIR301")
    assert "# noqa: AIR301" in source
    write(tmp_path, "legacy.py", source)
    monkeypatch.setenv("RUFF_OUTPUT_FORMAT", "concise")  # would break JSON parsing if passed through
    assert "AIR301" in by_rule(check_compat(tmp_path, ["legacy.py"]))
    assert not (tmp_path / ".ruff_cache").exists()  # --no-cache: the release folder stays untouched


def test_only_the_given_files_are_checked_and_paths_stay_relative(tmp_path):
    write(tmp_path, "dags/a.py", AIRFLOW2_DAG)
    write(tmp_path, "dags/b.py", AIRFLOW2_DAG)
    findings = check_compat(tmp_path, ["dags/b.py", "README.md"])
    assert findings and {f.file for f in findings} == {"dags/b.py"}


def test_bad_inputs_never_raise_and_are_left_to_other_checks(tmp_path):
    outside = tmp_path / "outside"
    write(outside, "secret.py", AIRFLOW2_DAG)
    root = tmp_path / "release"
    files = [
        write(root, "syntax.py", "def broken(:\n"),
        write(root, "latin1.py", b'x = "h\xe9llo"\n'),
        write(root, "nulls.py", b"x = 1\x00\n"),
        write(root, "-looks-like-an-option.py", AIRFLOW2_DAG),
        "missing.py",
        "../outside/secret.py",
    ]
    (root / "escape.py").symlink_to(outside / "secret.py")
    files.append("escape.py")
    findings = check_compat(root, files)
    assert {f.file for f in findings} == {"-looks-like-an-option.py"}
    assert "AIR301" in by_rule(findings)


def test_release_under_a_symlinked_path_maps_files_back_to_relative_paths(tmp_path):
    write(tmp_path / "real", "dags/legacy.py", AIRFLOW2_DAG)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    findings = check_compat(tmp_path / "link", ["dags/legacy.py"])
    assert findings and {f.file for f in findings} == {"dags/legacy.py"}


def test_no_python_files_means_no_ruff_run(tmp_path, monkeypatch):
    monkeypatch.setattr(compat, "find_ruff_bin", None)
    write(tmp_path, "README.md", "hello")
    assert check_compat(tmp_path, ["README.md"]) == []


def _fake_ruff(tmp_path: Path, script: str) -> str:
    path = tmp_path / "fake-ruff"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def _raise_not_found():
    raise FileNotFoundError("/nowhere/ruff")


@pytest.mark.parametrize(
    "lookup, reason",
    [
        (None, "`ruff` package is not installed"),
        (_raise_not_found, "ruff binary was not found"),
    ],
)
def test_missing_ruff_gives_one_warning_and_no_exception(tmp_path, monkeypatch, lookup, reason):
    monkeypatch.setattr(compat, "find_ruff_bin", lookup)
    write(tmp_path, "legacy.py", AIRFLOW2_DAG)
    [finding] = check_compat(tmp_path, ["legacy.py"])
    assert (finding.rule, finding.severity) == ("compat-check-unavailable", "warning")
    assert reason in finding.message and "pip install" in finding.hint


@pytest.mark.parametrize(
    "script, reason",
    [
        ('echo "ruff: internal error: boom" >&2; exit 2\n', "exited with code 2: ruff: internal error: boom"),
        ("echo 'this is not json'\n", "not JSON"),
        ('echo \'{"code": "AIR301"}\'\n', "not a list"),
    ],
)
def test_a_failing_ruff_gives_one_warning_and_no_exception(tmp_path, monkeypatch, script, reason):
    monkeypatch.setattr(compat, "find_ruff_bin", lambda: _fake_ruff(tmp_path, script))
    write(tmp_path, "release/legacy.py", AIRFLOW2_DAG)
    [finding] = check_compat(tmp_path / "release", ["legacy.py"])
    assert finding.rule == "compat-check-unavailable" and reason in finding.message


def test_a_ruff_that_cannot_start_gives_the_warning(tmp_path, monkeypatch):
    not_executable = tmp_path / "ruff"
    not_executable.write_text("")
    monkeypatch.setattr(compat, "find_ruff_bin", lambda: str(not_executable))
    write(tmp_path, "release/legacy.py", AIRFLOW2_DAG)
    [finding] = check_compat(tmp_path / "release", ["legacy.py"])
    assert finding.rule == "compat-check-unavailable" and "could not be started" in finding.message


def test_many_files_are_split_into_batches_below_the_argument_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(compat, "MAX_ARGUMENT_CHARS", 40)
    files = [write(tmp_path, f"dags/legacy_{i}.py", AIRFLOW2_DAG) for i in range(5)]
    findings = check_compat(tmp_path, files)
    assert {f.file for f in findings if f.rule == "AIR301"} == set(files)


def test_every_rule_ruff_knows_in_the_air_family_is_declared():
    ruff = compat.ruff_binary()
    output = subprocess.run([ruff, "rule", "--all", "--output-format", "json"], capture_output=True, check=True).stdout
    codes = {rule["code"] for rule in json.loads(output) if (rule.get("code") or "").startswith("AIR")}
    assert codes <= set(RULES), f"ruff has AIR rules we don't declare: {sorted(codes - set(RULES))}"


def test_every_emitted_rule_is_declared(tmp_path):
    write(tmp_path, "legacy.py", AIRFLOW2_DAG)
    shutil.copy(FIXTURES / "compat_airflow2_import.py", tmp_path / "a2.py")
    findings = check_compat(tmp_path, ["legacy.py", "a2.py"])
    assert findings and {f.rule for f in findings} <= set(RULES)
    assert all(f.hint and f.line and f.message for f in findings)
