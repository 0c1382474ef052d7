"""The suite's root: pins the session's Airflow home before anything imports Airflow, picks the validation
sandbox, and registers the shared fixtures of tests/helpers/ (real git remotes, a state DB per test on
SQLite and, when DAGOPS_TEST_POSTGRES_URL is set, on PostgreSQL too, the web app, servers, real Airflow).
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.helpers.airflow import SESSION_AIRFLOW_HOME

# Airflow reads AIRFLOW_HOME once, when first imported in this process. Pin it to a throwaway folder
# before any test imports Airflow, so nothing lands in ~/airflow and the in-process Airflow (used by
# the web tests) has one known metadata DB. Tests that need their own home set it for subprocesses.
os.environ["AIRFLOW_HOME"] = str(SESSION_AIRFLOW_HOME)
# Import it now: a later first import inside a test that points AIRFLOW_HOME elsewhere would bind
# Airflow's metadata DB to that test's folder for the rest of the session.
import airflow  # noqa: E402, F401

from airflow_dagops.validate.sandbox_host import sandbox_support  # noqa: E402

# Names other test modules imported from here before tests/helpers/ existed; import them from tests.helpers.
from tests.helpers.db import BACKENDS, POSTGRES_URL, DagOpsEnv  # noqa: E402, F401
from tests.helpers.repos import GIT_IDENTITY, GitRemote, dag_source, run_git, write_file  # noqa: E402, F401

pytest_plugins = [
    "tests.helpers.repos",
    "tests.helpers.db",
    "tests.helpers.servers",
    "tests.helpers.airflow",
    "tests.helpers.web",
]

# DAG files are imported only inside the bubblewrap sandbox (`[dagops] sandbox = strict`). On a machine that
# cannot run it (no bwrap, no namespaces), the suite validates in degraded mode, the explicit choice an operator
# would have to make there, and the tests of the OS boundary itself skip with the reason.
SANDBOX = sandbox_support()
if not SANDBOX.available:
    os.environ.setdefault("AIRFLOW__DAGOPS__SANDBOX", "degraded")
# Each validation starts its own sandbox and stops it (tests look for processes left behind); the warm reuse of
# a sandbox is tested on its own (tests/validate/test_sandbox.py).
os.environ.setdefault("AIRFLOW__DAGOPS__SANDBOX_KEEP_WARM", "0")


def pytest_report_header(config):
    if SANDBOX.available:
        return f"validation sandbox: bubblewrap ({SANDBOX.bwrap}, {'root' if SANDBOX.as_root else 'user namespace'})"
    return f"validation sandbox: UNAVAILABLE ({SANDBOX.reason}); tests run validation degraded"


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_AIRFLOW_HOME, ignore_errors=True)


@pytest.hookimpl(trylast=True)  # after pytest-xdist's own hook (it runs on each worker)
def pytest_collection_modifyitems(config, items):
    """Under `--dist loadgroup` (`make test`): each `xdist_group` kept on one worker, and the long tests first."""
    if config.getoption("loadgroup", default=False):
        _name_xdist_groups(items)
        _long_tests_first(items)


def _name_xdist_groups(items) -> None:
    """The scheduler reads a test's group from an `@group` suffix of its node id; pytest-xdist 3.8 writes that suffix
    to `item._nodeid`, which pytest 9.2 no longer reads (its node ids are structured, `item._id`), so every group was
    silently ignored: each worker started its own shared Airflow (pytest-xdist issue #1386). Write the suffix where
    pytest reads it."""
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pytest < 9.2: xdist's own suffix works
        return
    for item in items:
        marks = item.iter_markers("xdist_group")
        groups = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default")) for mark in marks})
        nodeid = item.nodeid
        if groups and nodeid.rfind("@") <= nodeid.rfind("]"):  # not suffixed yet (xdist's test for a suffix)
            item._id = NodeId.parse(f"{nodeid}@{'_'.join(groups)}")


def _long_tests_first(items) -> None:
    """The tests that start real Airflow processes (`e2e`) or take minutes (`slow`) first, the rest in their order.
    A worker hands out the tests in this order (after the groups, largest first): a long test started last would
    keep one worker busy while the other has nothing left to do. The sort is stable, so a module whose tests are all
    marked alike stays together (its module-scoped fixtures are set up once)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None and item.get_closest_marker("e2e") is None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the test item, so fixtures can print process logs on failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def cli(dagops_env):
    """Run `dagops ...` in process against the test's installation; returns typer's result."""
    from typer.testing import CliRunner

    from airflow_dagops.cli.main import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke
