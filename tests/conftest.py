"""Shared fixtures: real git remotes in tmp dirs, a tmp AIRFLOW_HOME, and a state DB per test.

Every test that uses `dagops_env` runs on SQLite and, when DAGOPS_TEST_POSTGRES_URL is set, on
PostgreSQL too (each test gets its own PostgreSQL schema, dropped afterwards).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

# Airflow reads AIRFLOW_HOME once, when first imported in this process. Pin it to a throwaway folder
# before any test imports Airflow, so nothing lands in ~/airflow and the in-process Airflow (used by
# the web tests) has one known metadata DB. Tests that need their own home set it for subprocesses.
SESSION_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="dagops-tests-airflow-"))
os.environ["AIRFLOW_HOME"] = str(SESSION_AIRFLOW_HOME)
# Import it now: a later first import inside a test that points AIRFLOW_HOME elsewhere would bind
# Airflow's metadata DB to that test's folder for the rest of the session.
import airflow  # noqa: E402, F401

from airflow_dagops.validate.sandbox_host import sandbox_support  # noqa: E402

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


POSTGRES_URL = os.environ.get("DAGOPS_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Dana Author",
    "GIT_AUTHOR_EMAIL": "dana@example.com",
    "GIT_COMMITTER_NAME": "Dana Author",
    "GIT_COMMITTER_EMAIL": "dana@example.com",
}

DAG_TEMPLATE = """from airflow.sdk import dag, task
import pendulum


@dag(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["test"])
def {func}():
    @task
    def hello():
        return "{dag_id}"

    hello()


{func}()
"""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the test item, so fixtures can print process logs on failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def dag_source(dag_id: str) -> str:
    return DAG_TEMPLATE.format(dag_id=dag_id, func=dag_id.replace("-", "_"))


def write_file(root: Path, relative: str, content: str | bytes) -> str:
    """Write one file under `root` (creating folders); returns `relative` for use in file lists."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return relative


def run_git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class GitRemote:
    """A real repository used as a remote through file://."""

    path: Path

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def write(self, relative: str, content: str | bytes) -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)

    def delete(self, relative: str) -> None:
        (self.path / relative).unlink()

    def symlink(self, relative: str, target: str) -> None:
        link = self.path / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)

    def commit(self, message: str = "change", files: dict[str, str | bytes | None] | None = None) -> str:
        for relative, content in (files or {}).items():
            if content is None:
                self.delete(relative)
            else:
                self.write(relative, content)
        run_git("add", "-A", cwd=self.path)
        run_git("commit", "-q", "--allow-empty", "-m", message, cwd=self.path)
        return self.head()

    def head(self, ref: str = "HEAD") -> str:
        return run_git("rev-parse", ref, cwd=self.path)

    def git(self, *args: str) -> str:
        return run_git(*args, cwd=self.path)


@pytest.fixture
def git_remote(tmp_path_factory):
    """Factory: `git_remote(files={...})` makes a repository with one commit on `main`."""

    def make(files: dict[str, str | bytes] | None = None, name: str = "remote") -> GitRemote:
        path = tmp_path_factory.mktemp(name) / "repo"
        path.mkdir()
        run_git("init", "-q", "-b", "main", cwd=path)
        remote = GitRemote(path)
        remote.commit("initial commit", files or {"dags/hello.py": dag_source("hello")})
        return remote

    return make


def _postgres_schema_url(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def state_db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield _postgres_schema_url(schema)
    finally:
        from airflow_dagops.store import db

        db.dispose_engines()
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@dataclass
class DagOpsEnv:
    airflow_home: Path
    dags_folder: Path
    dagops_home: Path
    db_url: str

    def env(self) -> dict[str, str]:
        """Environment for a `dagops` subprocess pointing at this test's installation."""
        return {**os.environ, **_env_vars(self)}


def _env_vars(env: DagOpsEnv) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(env.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(env.dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DAGOPS__DAGOPS_HOME": str(env.dagops_home),
        "AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN": env.db_url,
        "AIRFLOW__DAGOPS__LOCK_TIMEOUT": "60",
        # The engine's tests need the gate, not every check: syntax and file checks run, the slower steps
        # (sandboxed imports, bandit, ruff) are covered by tests/validate and the tests that switch them on.
        "AIRFLOW__DAGOPS__VALIDATION_SKIP": "security,compat,imports,structure,policy",
        "AIRFLOW__DAGOPS__VALIDATION_CACHE": str(env.dagops_home / "cache" / "validation.db"),
    }


@pytest.fixture
def dagops_env(tmp_path, state_db_url, monkeypatch) -> DagOpsEnv:
    """A throwaway installation: AIRFLOW_HOME, dags folder, dagops home and a migrated state DB."""
    from airflow_dagops.store import db

    home = tmp_path / "airflow"
    env = DagOpsEnv(home, home / "dags", home / "dagops", state_db_url)
    env.dags_folder.mkdir(parents=True)
    for key, value in _env_vars(env).items():
        monkeypatch.setenv(key, value)
    db.dispose_engines()
    db.migrate(state_db_url)
    yield env
    db.dispose_engines()


@pytest.fixture
def cli(dagops_env):
    """Run `dagops ...` in process against the test's installation; returns typer's result."""
    from typer.testing import CliRunner

    from airflow_dagops.cli.main import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke
