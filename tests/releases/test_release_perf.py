"""A release whose measured parse or task run time regressed against the live release's is reported (and blocked
with `tests: required`), in place by `dagops sync` and through the dagops_test flow. The DAG sleeps at parse time
only in the commit the test makes slow, and the limits are the test's own."""

from __future__ import annotations

import pytest

from airflow_dagops.errors import InvalidInput
from airflow_dagops.releases import perf as release_perf
from airflow_dagops.releases import tests as tests_service
from airflow_dagops.releases.gate import judge_tests
from airflow_dagops.releases.rollback import get_release
from airflow_dagops.releases.tests_runner import ModuleResult
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source

MEASURING_TESTS = """
def test_parse_and_run_times(dag_parse_time, task_run_time):
    assert dag_parse_time("a") > 0
    assert task_run_time("a", "hello") > 0
"""
SLOW_PARSE = "import time\n\ntime.sleep(2)\n" + dag_source("a")


def _files(dag: str, config: str = "tests: required\n") -> dict[str, str]:
    return {"dags/a.py": dag, ".dagops.yaml": config, "tests/test_perf.py": MEASURING_TESTS}


# Three sandboxed pytest runs (minutes); the comparison reads nothing backend-specific, so SQLite only.
@pytest.mark.parametrize("state_db_url", ["sqlite"], indirect=True)
def test_a_slower_parse_than_live_blocks_the_release_with_the_numbers(dagops_env, git_remote, monkeypatch):
    # A floor of 1 s: the 2 s sleep counts, the noise of a loaded machine on the quick task does not.
    monkeypatch.setenv("AIRFLOW__DAGOPS__PERF_REGRESSION_FLOOR", "1.0")
    remote = git_remote(_files(dag_source("a")))
    add_repository("team", remote.url)
    first = sync_repository("team")
    assert first.status == "published", first.message
    measured = get_release(first.release_id)["tests"]["perf"]
    assert set(measured["parse"]) == {"dags/a.py"} and set(measured["tasks"]) == {"a.hello"}
    assert "regressions" not in measured  # nothing live to compare with

    # The same DAG, now sleeping 2 s whenever it is parsed: dagops_test's finish keeps it out.
    remote.commit("slow", {"dags/a.py": SLOW_PARSE})
    outcome = sync_repository("team", defer_tests=True)
    assert outcome.status == "testing"
    results = [tests_service.run_test_module(p["release_id"], p["module"]) for p in tests_service.test_plan()]
    said = tests_service.finish_release_tests(outcome.release_id, results)
    assert "tests failed (1 passed, 0 failed, 0 errors): performance regressed: dags/a.py parses in 2." in said
    assert f"of live release {first.release_id}" in said
    release = get_release(outcome.release_id)
    assert release["status"] == "failed"
    regressions = release["tests"]["perf"]["regressions"]
    assert [(r["kind"], r["name"]) for r in regressions] == [("parse", "dags/a.py")]
    assert regressions[0]["seconds"] >= 2.0 and regressions[0]["baseline_release"] == first.release_id
    finding = next(f for f in release["findings"] if f["rule"] == "perf-regression")
    assert finding["severity"] == "error" and finding["file"] == "dags/a.py"
    assert get_repository("team").live_commit != remote.head()

    # The repository accepts it in its own .dagops.yaml: in place, `dagops sync` publishes it.
    remote.commit("accept", {".dagops.yaml": "tests: required\nperf: {threshold: 10000}\n"})
    outcome = sync_repository("team")
    assert outcome.status == "published", outcome.message
    measured = get_release(outcome.release_id)["tests"]["perf"]
    assert measured["regressions"] == [] and measured["limits"] == {"threshold": 10000.0, "floor": 1.0}
    assert measured["baseline_release"] == first.release_id


def _result(parse: dict, tasks: dict | None = None) -> ModuleResult:
    return ModuleResult("tests/test_perf.py", "passed", passed=1, perf={"parse": parse, "tasks": tasks or {}})


BASELINE = release_perf.Baseline(7, {"parse": {"dags/a.py": 0.3, "dags/b.py": 0.05}, "tasks": {"a.load": 1.0}})
LIMITS = release_perf.PerfLimits(threshold=1.5, floor=0.2)


def test_only_slower_beyond_the_threshold_and_the_floor_counts():
    verdict = judge_tests(
        [_result({"dags/a.py": 0.5, "dags/b.py": 0.2, "dags/new.py": 9.0}, {"a.load": 1.6})],
        "required",
        BASELINE,
        LIMITS,
    )
    # a.py: 1.7x but +0.2 s (the floor); b.py: 4x but +0.15 s; new.py: nothing to compare; a.load: 1.6x and +0.6 s.
    assert [f.message for f in verdict.findings] == [
        "task a.load runs in 1.60 s, 1.6x the 1.00 s of live release 7 (+0.60 s)"
    ]
    assert verdict.blocked and verdict.summary["outcome"] == "failed"
    assert verdict.summary["failures"][-1]["kind"] == "perf-regression"


def test_with_optional_tests_a_regression_is_a_warning():
    verdict = judge_tests([_result({"dags/a.py": 3.0})], "optional", BASELINE, LIMITS)
    assert not verdict.blocked and [f.severity for f in verdict.findings] == ["warning"]
    assert verdict.message.startswith("tests passed (1 passed, 0 failed, 0 errors); performance regressed: dags/a.py")


def test_without_a_baseline_nothing_is_compared():
    verdict = judge_tests([_result({"dags/a.py": 3.0})], "required", None, LIMITS)
    assert not verdict.blocked and verdict.findings == []
    assert verdict.summary["perf"] == {"parse": {"dags/a.py": 3.0}, "tasks": {}}


@pytest.mark.parametrize(
    ("name", "value", "wanted"),
    [("THRESHOLD", "0.9", "at least|>= 1"), ("THRESHOLD", "fast", ">= 1"), ("FLOOR", "-1", ">= 0")],
)
def test_limits_that_make_no_sense_are_refused(monkeypatch, name, value, wanted):
    monkeypatch.setenv(f"AIRFLOW__DAGOPS__PERF_REGRESSION_{name}", value)
    with pytest.raises(InvalidInput, match=wanted):
        release_perf.limits()


def test_a_repository_override_is_checked_like_the_settings():
    assert release_perf.limits({"threshold": 3}).threshold == 3.0
    with pytest.raises(InvalidInput, match=r"perf.floor must be a number >= 0"):
        release_perf.limits({"floor": "soon"})


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("perf: {threshold: 0.5}\n", "'perf'.threshold must be a number of at least 1"),
        ("perf: {floor: fast}\n", "'perf'.floor must be a number of at least 0"),
        ("perf: {budget: 1}\n", "'perf' must be a mapping with `threshold`"),
        ("perf: 2\n", "'perf' must be a mapping with `threshold`"),
    ],
)
def test_a_dagops_yaml_perf_that_makes_no_sense_is_a_config_error(text, wanted):
    from airflow_dagops.validate.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=wanted):
        parse_config(text, source=".dagops.yaml", operator=False)
