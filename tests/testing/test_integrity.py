"""`pytest --dagops-integrity PATH` over the validation corpus (tests/fixtures, the one tests/validate uses):
every good DAG file is a passing test, every bad one a failing test that names its rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOOD = sorted((FIXTURES / "good").glob("*.py"))
BAD = sorted(p for p in (FIXTURES / "bad").iterdir() if p.name != "__pycache__")


@pytest.fixture
def repo(pytester, monkeypatch, tmp_path):
    # Its own validation cache, and the corpus's hang and memory hog stopped within short limits.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("AIRFLOW__DAGOPS__IMPORT_TIMEOUT", "5")
    monkeypatch.setenv("AIRFLOW__DAGOPS__IMPORT_MEMORY_LIMIT", str(512 * 2**20))
    monkeypatch.delenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", raising=False)
    (pytester.path / "dags").mkdir()
    return pytester


def expectation(case: Path) -> tuple[str, str]:
    first = (case / "EXPECT" if case.is_dir() else case).read_bytes().split(b"\n", 1)[0].decode()
    severity, rule = first.removeprefix("# expect: ").split()
    return severity, rule


def case_files(case: Path) -> list[str]:
    """The DAG files a corpus case puts under dags/ (a folder case keeps its folder)."""
    if case.is_dir():
        return [f"{case.name}/{p.name}" for p in sorted(case.glob("*.py"))]
    return [case.name]


def stage(pytester: pytest.Pytester, cases: list[Path]) -> None:
    for case in cases:
        if case.is_dir():
            shutil.copytree(case, pytester.path / "dags" / case.name, ignore=shutil.ignore_patterns("EXPECT"))
        else:
            shutil.copy(case, pytester.path / "dags" / case.name)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", *args, timeout=240)


def test_good_corpus_passes_one_test_per_dag_file_and_runs_nothing_else(repo):
    stage(repo, GOOD)
    repo.makepyfile(test_repo="def test_repo_test():\n    pass\n")  # not run: no test paths were given
    result = run(repo, "--dagops-integrity", "dags")
    result.assert_outcomes(passed=len(GOOD))
    result.stdout.fnmatch_lines([f"PASSED dags/{p.name}::integrity" for p in GOOD], consecutive=False)
    result.stdout.no_fnmatch_line("*test_repo_test*")


def test_integrity_and_repository_tests_together(repo):
    stage(repo, GOOD[:1])
    repo.makepyfile(test_repo="def test_repo_test():\n    pass\n")
    result = run(repo, "--dagops-integrity", "dags", "test_repo.py")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*collected 2 items*"])


def test_bad_corpus_fails_each_file_naming_its_rule(repo):
    stage(repo, BAD)
    result = run(repo, "--dagops-integrity", "dags")
    outcomes = {"passed": [], "failed": []}
    for line in result.outlines:
        verdict, _, rest = line.partition(" ")
        if verdict in ("PASSED", "FAILED") and rest.startswith("dags/"):
            outcomes[verdict.lower()].append(rest.split("::integrity")[0].removeprefix("dags/"))
    for case in BAD:
        severity, rule = expectation(case)
        for file in case_files(case):
            if severity == "error":
                assert file in outcomes["failed"], f"{file} should fail with {rule}"
                # the failure names the file and its rule, as `dagops validate` would
                assert any(line.startswith(f"FAILED dags/{file}::integrity") for line in result.outlines)
                result.stdout.fnmatch_lines([f"{file}:* [[]{rule}[]] error: *"], consecutive=False)
            else:  # a warning does not fail the test; it is shown in the test's report section
                assert file in outcomes["passed"], f"{file} has only a {rule} warning and should pass"
                result.stdout.fnmatch_lines([f"{file}* [[]{rule}[]] warning: *"], consecutive=False)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_broken_repository_config_is_its_own_failing_test(repo):
    stage(repo, GOOD[:1])
    (repo.path / "dags" / ".dagops.yaml").write_text("policy: [not, a, mapping\n")
    result = run(repo, "--dagops-integrity", "dags")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([".dagops.yaml [[]config-invalid[]] error: *", "FAILED dags/.dagops.yaml::integrity*"])


def test_an_unusable_operator_rules_file_is_a_file_less_failing_test(repo, monkeypatch, tmp_path):
    stage(repo, GOOD[:1])
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_RULES_FILE", str(tmp_path / "missing-rules.yaml"))
    result = run(repo, "--dagops-integrity", "dags")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["[[]config-invalid[]] error: cannot use the validation rules file*", "FAILED dags::integrity*"]
    )


def test_a_missing_folder_is_a_usage_error(repo):
    result = run(repo, "--dagops-integrity", "nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dagops-integrity: *nowhere is not a folder*"])
