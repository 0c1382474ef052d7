"""Airflow for the tests: the session's in-process Airflow home, and real Airflow processes (api-server,
scheduler, dag-processor) in a tmp AIRFLOW_HOME.

Starting a real Airflow (`airflow db migrate`, `dagops init`, three processes, the api-server answering) takes
the better part of a minute on a 2-core machine. The e2e tests that only need *an* Airflow with dagops share one
per worker: the session fixture `real_airflow`. The tests that use it are put in one xdist group (`make test`
runs `--dist loadgroup`), so one worker starts it once. Such tests must use their own repository names. A test
that needs its own configuration (the docker-compose topology with Celery) still calls `make_instance`.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.helpers.servers import free_port, wait_for

BIN = Path(sys.executable).parent

# Airflow reads AIRFLOW_HOME once, when first imported in a process. tests/conftest.py points it at this
# throwaway folder before any test imports Airflow, so nothing lands in ~/airflow and the in-process Airflow
# (the web tests, tests/helpers/web.py) has one known metadata DB per session (per xdist worker).
SESSION_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="dagops-tests-airflow-"))


@dataclass
class AirflowInstance:
    home: Path
    port: int
    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)
    token: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, *args: str, timeout: float = 180, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """A command in this instance's environment (plus `env`: a test's own additions, e.g. a git config)."""
        full_env = {**self.env, **(env or {})}
        result = subprocess.run(list(args), env=full_env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def start(self, *components: str) -> None:
        logs = self.home / "process-logs"
        logs.mkdir(exist_ok=True)
        for component in components:
            # A component may carry words and options: "celery worker --queues q" runs `airflow celery worker ...`.
            words = shlex.split(component)
            args = [str(BIN / "airflow"), *words]
            if component == "api-server":
                args += ["--port", str(self.port), "--host", "127.0.0.1"]
            name = "-".join(word for word in words[:2] if not word.startswith("-"))
            log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
            self.processes.append(
                subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            )
        wait_for(self._api_up, timeout=120, what="the api-server")
        login = {"username": "admin", "password": "admin"}
        self.token = request_with_retries("POST", f"{self.url}/auth/token", json=login).json()["access_token"]

    def _api_up(self) -> bool:
        try:
            return requests.get(f"{self.url}/api/v2/monitor/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """A call to Airflow's REST API as admin. An answer 5xx is retried a few times with a short backoff: on
        SQLite, under the load of a whole test run, Airflow answers `500 Database error` when its metadata DB stays
        locked longer than the busy timeout, and that request changed nothing (its transaction was rolled back)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return request_with_retries(method, f"{self.url}/api/v2/{path}", headers=headers, **kwargs)

    def dag_ids(self) -> set[str]:
        response = self.api("GET", "dags", params={"limit": 1000})
        return {dag["dag_id"] for dag in response.json().get("dags", [])} if response.ok else set()

    def stop(self) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, 15)
            except ProcessLookupError:
                pass
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)

    def logs(self) -> str:
        parts = []
        for log in sorted((self.home / "process-logs").glob("*.log")):
            parts.append(f"==== {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-60:]))
        return "\n".join(parts)


RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)  # seconds before each retry of an answer 5xx: 7.5 s at most in all


def request_with_retries(method: str, url: str, *, timeout: float = 90, **kwargs) -> requests.Response:
    """`requests.request`, retried while the answer is 5xx (the last answer is returned as it is)."""
    response = requests.request(method, url, timeout=timeout, **kwargs)
    for delay in RETRY_DELAYS:
        if response.status_code < 500:
            break
        time.sleep(delay)  # a locked SQLite DB frees up when the writer commits: nothing to poll for
        response = requests.request(method, url, timeout=timeout, **kwargs)
    return response


# A real Airflow on SQLite: every process waits up to 60 s for a lock (sqlite3's default is 5 s) before
# answering "database is locked" (the api-server's `500 Database error`). Airflow already puts the DB in WAL
# mode (readers never wait for the writer); two writers still take turns, and on a 2-core machine running the
# whole suite a scheduler's transaction can hold the lock for seconds. Airflow imports connect args by dotted
# path, and puts $AIRFLOW_HOME/config on sys.path, so `make_instance` writes this module there.
SQLITE_CONNECT_ARGS_MODULE = "dagops_test_sqlite"
SQLITE_CONNECT_ARGS = """\
\"""Connect args of a test instance's SQLite metadata DB: see tests/helpers/airflow.py.\"""

SYNC = {"timeout": 60}
ASYNC = {"timeout": 60}
"""


def airflow_env(home: Path, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "PATH": f"{BIN}:{env.get('PATH', '')}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-test-secret-not-for-production",
            "AIRFLOW__DAGOPS__DAGOPS_HOME": str(home / "dagops"),
            # Bundle folders of this instance's own, not Airflow's default under /tmp that every instance shares.
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "bundles"),
        }
    )
    # Where this machine cannot run the validation sandbox, tests/conftest.py chose degraded for the suite: the
    # real Airflow's tasks validate the same way (as `make run` does there), instead of failing every sync.
    if os.environ.get("AIRFLOW__DAGOPS__SANDBOX"):
        env["AIRFLOW__DAGOPS__SANDBOX"] = os.environ["AIRFLOW__DAGOPS__SANDBOX"]
    env.update(extra or {})
    if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite").startswith("sqlite"):
        env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS", f"{SQLITE_CONNECT_ARGS_MODULE}.SYNC")
        env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC", f"{SQLITE_CONNECT_ARGS_MODULE}.ASYNC")
    return env


def make_instance(home: Path, extra_env: dict[str, str] | None = None) -> AirflowInstance:
    """A migrated Airflow home with dagops initialised; `start(...)` runs its processes."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dags").mkdir(exist_ok=True)
    (home / "config").mkdir(exist_ok=True)
    (home / "config" / f"{SQLITE_CONNECT_ARGS_MODULE}.py").write_text(SQLITE_CONNECT_ARGS)
    port = free_port()
    (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": "admin"}))
    instance = AirflowInstance(home, port, airflow_env(home, port, extra_env))
    migrate_metadata_db(instance.env, instance.run)
    instance.run(str(BIN / "dagops"), "init")
    return instance


# `airflow db migrate` of a new SQLite metadata DB costs 5-6 s of CPU; the tests make a dozen such homes. The first
# migration of a test process (an xdist worker) keeps its DB file as a template, later homes get a copy: the same
# file Airflow would have written, as long as what shapes it is the same (the auth manager decides whether the FAB
# tables exist, so it names the template). Migrations themselves are Airflow's to test.
_MIGRATED_SQLITE_TEMPLATES: dict[str, Path] = {}


def migrate_metadata_db(env: dict[str, str], run: Callable[..., object]) -> None:
    """`airflow db migrate` in the home of `env` (`run` runs a command there), or a copy of a DB it migrated."""
    target = _default_sqlite_db(env)
    key = env.get("AIRFLOW__CORE__AUTH_MANAGER", "")
    template = _MIGRATED_SQLITE_TEMPLATES.get(key)
    if target is not None and template is not None and not target.exists():
        shutil.copyfile(template, target)
        return
    run(str(BIN / "airflow"), "db", "migrate")
    if target is not None and key not in _MIGRATED_SQLITE_TEMPLATES:
        kept = Path(tempfile.mkdtemp(prefix="dagops-tests-airflow-db-")) / "airflow.db"
        shutil.copyfile(target, kept)  # the migrating process has exited: its WAL is checkpointed into the file
        _MIGRATED_SQLITE_TEMPLATES[key] = kept


def _default_sqlite_db(env: dict[str, str]) -> Path | None:
    """The SQLite file Airflow uses by default in this home, or None when the metadata DB is configured."""
    if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or env.get("AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS"):
        return None
    return Path(env["AIRFLOW_HOME"]) / "airflow.db"


# What the shared instance runs with: every user of it must be fine with these.
SHARED_AIRFLOW_ENV = {
    "AIRFLOW__DAGOPS__SYNC_SCHEDULE": "",  # dagops_sync runs only when a test triggers it: deterministic
    # Nor do the daily marketplace check and the hourly discovery, which would otherwise start with the instance,
    # together with dagops_promote and dagops_events, while the first test talks to its single api-server worker.
    "AIRFLOW__DAGOPS__MARKETPLACE_CHECK_SCHEDULE": "",
    "AIRFLOW__DAGOPS__DISCOVERY_SCHEDULE": "",
    "AIRFLOW__CORE__PARALLELISM": "4",  # a few LocalExecutor workers are plenty and start faster
    "AIRFLOW__API__WORKERS": "1",  # one api-server process: its memory is measured (tests/api/test_body_limit.py)
}


@pytest.fixture(scope="session")
def real_airflow(tmp_path_factory):
    """api-server + scheduler + dag-processor with SimpleAuthManager (admin/admin) in a tmp home, started once
    per worker and shared by the e2e tests (each uses its own repository names). `processes[0]` is the
    api-server. A test that fails should print `real_airflow.logs()`."""
    instance = make_instance(tmp_path_factory.mktemp("real-airflow") / "airflow", SHARED_AIRFLOW_ENV)
    _shared.instance = instance
    try:
        instance.start("api-server", "scheduler", "dag-processor")
        yield instance
    except BaseException:
        print(instance.logs())
        raise
    finally:
        _shared.instance = None
        instance.stop()


# An idle Airflow (api-server, scheduler, a dag-processor re-parsing its files) costs ~14 s of CPU a minute on this
# machine. Its users run first and together on one worker (the group below), then that worker runs other tests for
# the rest of the session: the instance stops once the last of its users in this process is done, not at the end.
@dataclass
class _SharedInstance:
    instance: AirflowInstance | None = None
    users_left: int = 0


_shared = _SharedInstance()


def _uses_shared_airflow(item) -> bool:
    return "real_airflow" in getattr(item, "fixturenames", ())


def pytest_collection_finish(session):
    """How many tests of this process use the shared instance (all of them, where xdist groups them)."""
    _shared.users_left = sum(_uses_shared_airflow(item) for item in session.items)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    if not _uses_shared_airflow(item):
        return
    _shared.users_left -= 1
    if _shared.users_left <= 0 and _shared.instance is not None:
        _shared.instance.stop()  # the fixture's own stop at the session's end then finds nothing left to stop


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "real_airflow_first: among the tests sharing `real_airflow`, run this one before the others"
    )


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """The tests sharing `real_airflow` go to one xdist worker (with `--dist loadgroup`), so it starts once; the
    ones marked `real_airflow_first` run first among them (they count everything in the instance)."""
    positions = [i for i, item in enumerate(items) if _uses_shared_airflow(item)]
    users = [items[i] for i in positions]
    for item in users:
        item.add_marker(pytest.mark.xdist_group("real_airflow"))
    ordered = sorted(users, key=lambda item: item.get_closest_marker("real_airflow_first") is None)
    for position, item in zip(positions, ordered, strict=True):
        items[position] = item
