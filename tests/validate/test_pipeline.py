"""The pipeline as a whole: config, caching, formats and the `dagops validate` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from airflow_dagops.validate.config import ConfigError, parse_config
from airflow_dagops.validate.pipeline import PipelineOptions, run_pipeline
from tests.helpers.repos import dag_source, run_git

FAST = {"security", "compat", "imports", "structure"}  # the steps tested in their own modules
# A DAG file with a typo on its first line. It says "airflow" and "dag", as every file Airflow's safe mode parses does:
# a broken file without those words is no DAG file, and its syntax error only a warning.
BROKEN_DAG = "from airflow.sdk import DAG, task,\n"


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def run(root: Path, tmp_path: Path, **options):
    options.setdefault("skip", FAST)
    options.setdefault("cache_path", tmp_path / "cache.db")
    return run_pipeline(root, PipelineOptions(**options))


def rules(report) -> set[tuple[str, str]]:
    return {(f.rule, f.file) for f in report.findings}


def test_file_checks_syntax_and_start_date(tmp_path):
    root = write(
        tmp_path / "repo",
        {
            "dags/ok.py": dag_source("ok"),
            "dags/broken.py": "def x(:\n",
            "dags/latin1.py": b"x = '\xe9t\xe9'\n",
            "dags/huge.py": "x = 1\n" * 400_000,
            "dags/now.py": dag_source("now").replace("pendulum.datetime(2024, 1, 1)", "pendulum.now()"),
        },
    )
    report = run(root, tmp_path)
    assert {
        ("syntax-error", "dags/broken.py"),
        ("non-utf8-file", "dags/latin1.py"),
        ("file-too-large", "dags/huge.py"),
        ("policy-dynamic-start-date", "dags/now.py"),
    } <= rules(report)
    assert not report.passed
    assert not any(f.file == "dags/ok.py" for f in report.errors)


def test_repo_config_disables_and_overrides_but_not_mandatory_rules(tmp_path):
    root = write(
        tmp_path / "repo",
        {
            "dags/a.py": "def x(:\n",
            "dags/now.py": dag_source("now").replace("pendulum.datetime(2024, 1, 1)", "pendulum.now()"),
            ".dagops.yaml": "disable: [syntax-error]\nseverity: {policy-dynamic-start-date: warning}\n",
        },
    )
    report = run(root, tmp_path)
    assert ("syntax-error", "dags/a.py") not in rules(report)
    assert [f.severity for f in report.findings if f.rule == "policy-dynamic-start-date"] == ["warning"]
    operator = tmp_path / "rules.yaml"
    operator.write_text("mandatory: [syntax-error]\n")
    report = run(root, tmp_path, operator_rules_file=str(operator))
    assert ("syntax-error", "dags/a.py") in rules(report)


def test_per_file_exceptions(tmp_path):
    root = write(
        tmp_path / "repo",
        {
            "legacy/old.py": "def x(:\n",
            ".dagops.yaml": 'exceptions:\n  "legacy/*.py": ["*"]\n',
        },
    )
    assert run(root, tmp_path).passed


@pytest.mark.parametrize(
    "text,match",
    [
        ("disable: [a\n", "line 2: not valid YAML"),
        ("unknown_key: 1\n", "line 1: 'unknown_key' is not a known setting"),
        ("disable: [a]\npolicy:\n  min_retries: many\n", "line 2: 'policy'.min_retries must be a whole number"),
        ("severity: {a: fatal}\n", "must map rule ids to one of"),
        ("on_invalid: maybe\n", "must be one of block, skip_files"),
        ("mandatory: [a]\n", "only be set by the operator"),
    ],
)
def test_bad_repo_config_is_a_clear_error(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(text, source=".dagops.yaml", operator=False)


def test_bad_repo_config_blocks_the_release(tmp_path):
    root = write(tmp_path / "repo", {"dags/ok.py": dag_source("ok"), ".dagops.yaml": "nope: 1\n"})
    report = run(root, tmp_path)
    assert [(f.rule, f.severity, f.file) for f in report.errors] == [("config-invalid", "error", ".dagops.yaml")]


def test_cached_results_are_reused_and_only_changed_files_rechecked(tmp_path):
    root = write(tmp_path / "repo", {f"dags/d{i}.py": dag_source(f"d{i}") for i in range(20)})
    first = run(root, tmp_path)
    assert first.stats["checked"]["syntax"] == 20 and first.stats["cached"]["syntax"] == 0
    write(root, {"dags/d3.py": "def broken(:\n"})
    second = run(root, tmp_path)
    assert second.stats["checked"]["syntax"] == 1 and second.stats["cached"]["syntax"] == 19
    assert rules(second) == {("syntax-error", "dags/d3.py")}
    third = run(root, tmp_path, cache_path=None)
    assert third.stats["checked"]["syntax"] == 20 and rules(third) == rules(second)


def test_formats(tmp_path):
    root = write(tmp_path / "repo", {"dags/a.py": BROKEN_DAG, "dags/b.py": dag_source("b")})
    report = run(root, tmp_path)
    from airflow_dagops.validate.formats import render

    data = json.loads(render(report, "json"))
    assert data["passed"] is False
    assert data["findings"][0] | {} == data["findings"][0]
    assert {k for k in data["findings"][0]} >= {"rule", "severity", "file", "line", "message"}
    sarif = json.loads(render(report, "sarif"))
    result = sarif["runs"][0]["results"][0]
    assert sarif["version"] == "2.1.0" and result["ruleId"] == "syntax-error" and result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 1
    junit = ElementTree.fromstring(render(report, "junit").split("\n", 1)[1])
    assert junit.get("failures") == "1" and junit.find("testcase/failure") is not None
    assert "dags/a.py:1: error [syntax-error]" in render(report, "text")


def dagops_validate(*args: str, cwd: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "XDG_CACHE_HOME": str(cwd.parent / "xdg"), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "airflow_dagops.cli.main", "validate", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dagops_validate_command_exit_codes_and_changed_since(tmp_path):
    repo = write(tmp_path / "repo", {"dags/a.py": dag_source("a"), "dags/b.py": dag_source("b")})
    run_git("init", "-q", "-b", "main", cwd=repo)
    run_git("add", "-A", cwd=repo)
    run_git("commit", "-qm", "init", cwd=repo)
    skip = {"AIRFLOW__DAGOPS__VALIDATION_SKIP": ",".join(FAST)}
    ok = dagops_validate(".", "--format", "json", cwd=repo, env_extra=skip)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["stats"]["files"] == 2
    write(repo, {"dags/c.py": BROKEN_DAG})
    bad = dagops_validate(".", "--changed-since", "HEAD", "--format", "json", cwd=repo, env_extra=skip)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["stats"]["files"] == 1 and report["findings"][0]["file"] == "dags/c.py"
    wrong = dagops_validate(".", "--format", "yaml", cwd=repo, env_extra=skip)
    assert wrong.returncode == 2 and "unknown format" in wrong.stderr
    missing = dagops_validate("nope", cwd=repo, env_extra=skip)
    assert missing.returncode == 2 and "is not a folder" in missing.stderr


def test_the_pre_commit_hook_blocks_a_broken_dag(tmp_path):
    import os
    import shutil

    root = Path(__file__).resolve().parents[2]
    hooks_repo = tmp_path / "hooks"  # pre-commit wants a git repository holding .pre-commit-hooks.yaml
    hooks_repo.mkdir()
    shutil.copy(root / ".pre-commit-hooks.yaml", hooks_repo)
    run_git("init", "-q", "-b", "main", cwd=hooks_repo)
    run_git("add", "-A", cwd=hooks_repo)
    run_git("commit", "-qm", "hooks", cwd=hooks_repo)
    repo = write(tmp_path / "dags-repo", {"dags/a.py": dag_source("a")})
    run_git("init", "-q", "-b", "main", cwd=repo)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "XDG_CACHE_HOME": str(tmp_path / "xdg"),
        "AIRFLOW__DAGOPS__VALIDATION_SKIP": ",".join(FAST),
    }
    pre_commit = [
        str(Path(sys.executable).parent / "pre-commit"),
        "try-repo",
        str(hooks_repo),
        "dagops-validate",
        "--all-files",
    ]
    run_git("add", "-A", cwd=repo)
    good = subprocess.run(pre_commit, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert good.returncode == 0, good.stdout + good.stderr
    write(repo, {"dags/b.py": BROKEN_DAG})
    run_git("add", "-A", cwd=repo)
    bad = subprocess.run(pre_commit, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "dags/b.py:1: error [syntax-error]" in bad.stdout
