"""A repository's own tests gate its releases (`tests: required|optional` in .dagops.yaml): run in place by
`dagops sync`, or handed to the dagops_test system DAG (plan → one run per module → finish)."""

from __future__ import annotations

import pytest

from airflow_dagops.releases import tests as tests_service
from airflow_dagops.releases import tests_runner as release_tests
from airflow_dagops.releases.rollback import get_release
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source

PASSING = "def test_adds():\n    assert 1 + 1 == 2\n"
FAILING = "def test_total():\n    total = 41\n    assert total == 42, 'the total is off by one'\n"
HANGING = "import time\n\n\ndef test_waits():\n    time.sleep(600)\n"
# A test that writes into its working folder: it must not reach the published (hard-linked) files.
SCRIBBLER = (
    "from pathlib import Path\n\n\ndef test_scribbles():\n"
    "    Path('dags/a.py').write_text('broken(')\n    Path('new.txt').write_text('x')\n"
)


def _repo(git_remote, mode: str, tests: dict[str, str]):
    files = {"dags/a.py": dag_source("a"), ".dagops.yaml": f"tests: {mode}\n"}
    files.update({f"tests/{name}": body for name, body in tests.items()})
    return git_remote(files)


def _live_commit(name: str) -> str | None:
    return get_repository(name).live_commit


def test_a_failing_test_blocks_the_release_and_says_which(dagops_env, git_remote):
    remote = _repo(git_remote, "required", {"test_ok.py": PASSING, "test_total.py": FAILING})
    add_repository("team", remote.url)
    outcome = sync_repository("team")
    assert outcome.status == "failed"
    assert "tests failed (1 passed, 1 failed, 0 errors)" in outcome.message
    failed = [f for f in outcome.findings if f["rule"] == "test-failed"]
    assert len(failed) == 1 and failed[0]["severity"] == "error" and failed[0]["file"] == "tests/test_total.py"
    assert "test_total" in failed[0]["message"] and "the total is off by one" in failed[0]["message"]
    release = get_release(outcome.release_id)
    assert release["status"] == "failed" and release["tests"]["outcome"] == "failed"
    assert _live_commit("team") is None

    # The fix goes live, with its results (and JUnit XML) stored.
    remote.commit("fix", {"tests/test_total.py": PASSING.replace("test_adds", "test_total")})
    outcome = sync_repository("team")
    assert outcome.status == "published", outcome.message
    tests = get_release(outcome.release_id)["tests"]
    assert tests["outcome"] == "passed" and tests["passed"] == 2
    assert [m["module"] for m in tests["modules"]] == ["tests/test_ok.py", "tests/test_total.py"]
    assert "<testsuite" in tests_service.junit_xml(outcome.release_id)["tests/test_ok.py"]


def test_optional_tests_report_without_blocking(dagops_env, git_remote):
    add_repository("team", _repo(git_remote, "optional", {"test_total.py": FAILING}).url)
    outcome = sync_repository("team")
    assert outcome.status == "published"
    assert [f["severity"] for f in outcome.findings if f["rule"] == "test-failed"] == ["warning"]


def test_tests_off_or_absent_change_nothing(dagops_env, git_remote):
    add_repository("off", _repo(git_remote, "off", {"test_total.py": FAILING}).url)
    assert sync_repository("off").status == "published"
    add_repository("none", _repo(git_remote, "required", {}).url, namespace="none")
    assert sync_repository("none").status == "published"


def test_a_hanging_test_is_killed_and_a_scribbling_one_cannot_touch_the_release(dagops_env, git_remote, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__TEST_TIMEOUT", "5")
    remote = _repo(git_remote, "required", {"test_waits.py": HANGING, "test_scribbles.py": SCRIBBLER})
    add_repository("team", remote.url)
    outcome = sync_repository("team")
    assert outcome.status == "failed"
    messages = " ".join(f["message"] for f in outcome.findings if f["rule"] == "test-failed")
    assert "did not finish within 5 s" in messages
    folder = dagops_env.dagops_home / "releases" / "team" / remote.head()
    assert "broken(" not in (folder / "dags" / "a.py").read_text() and not (folder / "new.txt").exists()


def test_the_dagops_test_flow_plan_run_finish(dagops_env, git_remote):
    remote = _repo(git_remote, "required", {"test_ok.py": PASSING, "test_more.py": PASSING})
    add_repository("team", remote.url)
    outcome = sync_repository("team", defer_tests=True)
    assert outcome.status == "testing" and "waits for its 2 test modules" in outcome.message
    assert _live_commit("team") is None
    assert get_release(outcome.release_id)["status"] == "testing"
    # A sync meanwhile does not validate the commit again.
    assert sync_repository("team", defer_tests=True).status == "unchanged"

    plan = tests_service.test_plan()
    assert [(p["repository"], p["module"]) for p in plan] == [
        ("team", "tests/test_more.py"),
        ("team", "tests/test_ok.py"),
    ]
    results = [tests_service.run_test_module(p["release_id"], p["module"]) for p in plan]
    said = tests_service.finish_release_tests(outcome.release_id, results)
    assert "published" in said and _live_commit("team") == remote.head()
    assert tests_service.test_plan() == []  # nothing waits any more

    # A failing module: finish keeps the release out and says why.
    remote.commit("break", {"tests/test_more.py": FAILING})
    outcome = sync_repository("team", defer_tests=True)
    results = [tests_service.run_test_module(p["release_id"], p["module"]) for p in tests_service.test_plan()]
    said = tests_service.finish_release_tests(outcome.release_id, results)
    assert "tests failed" in said and "the total is off by one" in said
    assert _live_commit("team") != remote.head()
    assert get_release(outcome.release_id)["status"] == "failed"


def test_any_release_can_be_tested_on_demand(dagops_env, git_remote):
    remote = _repo(git_remote, "off", {"test_ok.py": PASSING})
    add_repository("team", remote.url)
    sync_repository("team")
    plan = tests_service.test_plan("team", remote.head()[:12])
    results = [tests_service.run_test_module(p["release_id"], p["module"]) for p in plan]
    said = tests_service.finish_release_tests(plan[0]["release_id"], results)
    assert "tests passed" in said
    with pytest.raises(Exception, match="give the repository"):
        tests_service.test_plan(None, "1")


def test_junit_parsing_counts_and_refuses_entity_tricks():
    xml = (
        '<testsuites><testsuite><testcase classname="tests.test_a" name="test_one"/>'
        '<testcase classname="tests.test_a" name="test_two"><failure message="boom">trace</failure></testcase>'
        '<testcase classname="tests.test_a" name="test_three"><skipped/></testcase></testsuite></testsuites>'
    )
    result = release_tests.parse_junit("tests/test_a.py", xml)
    assert (result.passed, result.failed, result.skipped, result.outcome) == (1, 1, 1, "failed")
    assert result.failures[0].test == "tests/test_a::test_two" and result.failures[0].message == "boom"
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><testsuite>&b;</testsuite>'
    assert release_tests.parse_junit("tests/test_a.py", bomb).outcome == "error"


def test_cli_runs_and_shows_the_results(dagops_env, git_remote, tmp_path):
    from typer.testing import CliRunner

    from airflow_dagops.cli.main import app

    remote = _repo(git_remote, "optional", {"test_ok.py": PASSING, "test_total.py": FAILING})
    add_repository("team", remote.url)
    sync_repository("team")
    runner = CliRunner()
    ran = runner.invoke(app, ["test", "team"])
    assert ran.exit_code == 1 and "tests failed (1 passed, 1 failed, 0 errors)" in ran.output
    shown = runner.invoke(app, ["tests", "team", "--junit-dir", str(tmp_path / "junit")])
    assert shown.exit_code == 0, shown.output
    assert "1 passed, 1 failed" in shown.output and "the total is off by one" in shown.output
    assert (tmp_path / "junit" / "tests__test_total.xml").read_text().startswith("<?xml")
    missing = runner.invoke(app, ["tests", "team", "--release", "deadbeef0"])
    assert missing.exit_code != 0 and "no release" in missing.output


@pytest.mark.skipif(not __import__("tests.conftest").conftest.SANDBOX.available, reason="no OS sandbox here")
def test_a_repositorys_own_tests_run_inside_the_os_sandbox(tmp_path, monkeypatch):
    """The repository's tests are its own code too: they see neither the host's files nor its network."""
    import socket

    monkeypatch.setenv("WAREHOUSE_PASSWORD", "pw-" + "x" * 12)
    host_file = tmp_path / "host.txt"
    host_file.write_text("host")
    listener = socket.create_server(("127.0.0.1", 0))
    release = tmp_path / "release"
    (release / "tests").mkdir(parents=True)
    (release / "tests" / "test_escape.py").write_text(
        "import os, socket, pytest\n\n"
        "def test_no_host_file():\n"
        f"    assert not os.path.exists({str(host_file)!r})\n\n"
        "def test_no_network():\n"
        "    with pytest.raises(OSError):\n"
        f"        socket.create_connection(('127.0.0.1', {listener.getsockname()[1]}), timeout=2)\n\n"
        "def test_no_secret_and_no_privilege():\n"
        "    assert 'WAREHOUSE_PASSWORD' not in os.environ\n"
        "    assert [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')] == ['0' * 16]\n"
        "    with pytest.raises(OSError):\n"
        "        open(os.path.join(os.path.dirname(__file__), 'scribble.txt'), 'w')\n"
    )
    try:
        result = release_tests.run_module(release, "tests/test_escape.py", timeout=60)
    finally:
        listener.close()
    assert (result.outcome, result.passed, result.failed) == ("passed", 3, 0), result.output_tail
    assert not (release / "tests" / "scribble.txt").exists()
