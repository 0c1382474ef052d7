"""The first hour with `make run` (issue 19): its very script in a tmp folder on a free port, with every system
DAG's interval shortened by settings (`AIRFLOW__DAGOPS__*`), not by skipping DAGs.

Every scheduled system DAG reaches its second scheduled run; a commit to the demo repository is published
(dagops_sync, then dagops_test on its asset); a pin and an unpin go through dagops_deploy. Then: no failed DAG run,
no failed task, every skipped task has a reason (its log says why, or it was mapped over nothing), the demo
DAGs are listed, the API connection `dagops init` made works, the marketplace badges are checked. Ctrl-C (SIGINT
to the process group, as a terminal sends it) and `make stop` each end every process `make run` started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.helpers.airflow import BIN
from tests.helpers.servers import free_port, wait_for

# Four system DAGs reach their second scheduled run (the marketplace check every 2 min): ~6 min on 2 quiet cores.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(2400)]
ROOT = Path(__file__).resolve().parents[2]
DEMO_DAGS = {"demo_etl", "demo_fanout", "demo_report"}
# The settings that shorten every scheduled system DAG's interval (defaults: 1 min, 120 s, 300 s, daily, hourly).
# Which system DAGs are scheduled is read from Airflow (tag `system`, a schedule): a new one joins the test, and
# one whose interval no setting here shortens makes the test time out, not pass.
SHORT_INTERVALS = {
    "AIRFLOW__DAGOPS__SYNC_SCHEDULE": "* * * * *",
    "AIRFLOW__DAGOPS__PROMOTION_CHECK_INTERVAL": "30",
    "AIRFLOW__DAGOPS__EVENTS_INTERVAL": "60",
    "AIRFLOW__DAGOPS__MARKETPLACE_CHECK_SCHEDULE": "*/2 * * * *",
    "AIRFLOW__DAGOPS__DISCOVERY_SCHEDULE": "*/2 * * * *",
}
AT_LEAST_SCHEDULED = {"dagops_sync", "dagops_promote", "dagops_events", "dagops_marketplace_check"}
FINISHED = ("success", "failed")


@dataclass
class MakeRun:
    home: Path
    port: int
    process: subprocess.Popen
    log: Path
    token: str | None = None
    airflow_session: int | None = None

    def sessions(self) -> set[int]:
        """run.sh's session (the test starts it in a new one) and Airflow's (run.pid, line 3, while it runs)."""
        if self.airflow_session is None:
            lines = (self.home / "run.pid").read_text().split() if (self.home / "run.pid").exists() else []
            self.airflow_session = int(lines[2]) if len(lines) > 2 else None
        return {self.process.pid} | ({self.airflow_session} if self.airflow_session else set())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def login(self) -> None:
        self.token = requests.post(
            f"{self.url}/auth/token", json={"username": "admin", "password": "admin"}, timeout=10
        ).json()["access_token"]

    def get(self, path: str, **params) -> requests.Response:
        """A read, asked again when it times out: on CI's busy cores (three test workers beside this Airflow), the
        SQLite-backed api-server once answered a list of runs after more than 30 s. A read changes nothing, so
        asking again is safe; a third timeout is a failure."""
        for attempt in range(3):
            try:
                return requests.get(f"{self.url}{path}", headers=self._auth(), params=params, timeout=30)
            except requests.Timeout:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def post(self, path: str, body: dict) -> requests.Response:
        """A write is never asked twice (it could trigger a second run): it gets as long as the api-server may take
        to answer it. `make run` lets a write wait up to 60 s for SQLite's one writer (airflow/sqlite_wait.py), and
        on CI's busy cores a DAG run trigger once waited longer than 30 s for it."""
        return requests.post(f"{self.url}{path}", headers=self._auth(), json=body, timeout=(10, 180))

    def _auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def dag_ids(self) -> set[str]:
        try:
            self.login()
            return {dag["dag_id"] for dag in self.get("/api/v2/dags", limit=100).json()["dags"]}
        except (requests.RequestException, KeyError, ValueError):
            return set()

    def scheduled_system_dags(self) -> set[str]:
        dags = self.get("/api/v2/dags", tags="system", limit=100).json()["dags"]
        # Scheduled by time; dagops_test follows an asset (its run is asked for separately)
        return {dag["dag_id"] for dag in dags if dag.get("timetable_summary") not in (None, "Asset")}

    def runs(self) -> list[dict]:
        return self.get("/api/v2/dags/~/dagRuns", limit=500, order_by="start_date").json()["dag_runs"]

    def task_instances(self) -> list[dict]:
        return self.get("/api/v2/dags/~/dagRuns/~/taskInstances", limit=1000).json()["task_instances"]

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_make_run(tmp_path: Path, extra_env: dict[str, str] | None = None) -> MakeRun:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.pop("DAGOPS_RUN_MARK", None)
    env.update(
        {
            "DAGOPS_RUN_HOME": str(tmp_path / "run"),
            "AIRFLOW__API__PORT": str(port),
            "PATH": f"{BIN}:{env['PATH']}",
            # Standalone's log servers listen on fixed ports: free ones, so other Airflows on this machine do not
            # clash with this one.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            **(extra_env or {}),
        }
    )
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "run.sh")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
            preexec_fn=_as_from_a_terminal,
        )
    return MakeRun(home=tmp_path / "run", port=port, process=process, log=log)


def _as_from_a_terminal() -> None:
    """Ctrl-C and Ctrl-\\ as a terminal's job gets them. A test run started in the background of a script (`.ci/run
    &`) ignores SIGINT and SIGQUIT, and an ignored signal is inherited through exec: run.sh could not trap Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def processes_of(run: MakeRun) -> list[str]:
    """Live processes that belong to `run`: in its sessions (run.sh's, Airflow's), with its AIRFLOW_HOME or run
    mark in their environment, or its folder or api-server port on their command line (processes that rename
    themselves with setproctitle, like the api-server, have a blank environment)."""
    found = []
    markers = (f"AIRFLOW_HOME={run.home}".encode(), f"DAGOPS_RUN_MARK={run.home}#".encode())
    sessions = run.sessions()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            state, _ppid, _pgrp, session = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:4]
        except (OSError, ValueError):
            continue
        if state == "Z":
            continue  # exited, waiting for its parent to reap it
        if (
            int(session) in sessions
            or any(var.startswith(marker) for var in environ for marker in markers)
            or str(run.home).encode() in cmdline
            or f"port:{run.port}".encode() in cmdline
        ):
            found.append(f"{entry.name}: {cmdline[:160].decode(errors='replace')}")
    return found


def stop_with_ctrl_c(run: MakeRun) -> None:
    os.killpg(run.process.pid, signal.SIGINT)
    try:
        run.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        # Say what run.sh was doing (its state, signal masks and children), for the next one to read.
        raise AssertionError(f"run.sh still runs 120 s after Ctrl-C:\n{_state_of(run.process.pid)}") from None


def _state_of(pid: int) -> str:
    """run.sh's state, signal masks and children, from /proc."""
    lines = []
    children = [entry for entry in Path("/proc").glob("[0-9]*") if entry.name != str(pid)]
    for entry in [Path(f"/proc/{pid}"), *children]:
        try:
            status = (entry / "status").read_text()
            if entry in children and f"PPid:\t{pid}\n" not in status:
                continue
            wanted = ("Name", "State", "PPid", "SigBlk", "SigIgn", "SigCgt")
            fields = [line for line in status.splitlines() if line.split(":")[0] in wanted]
            wchan = (entry / "wchan").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")[:200].decode(errors="replace")
            lines.append(f"{entry.name} wchan={wchan} {' '.join(fields)} {cmdline}")
        except OSError:
            continue
    return "\n".join(lines)


@pytest.fixture
def make_run(tmp_path) -> Iterator[MakeRun]:
    run = start_make_run(tmp_path, SHORT_INTERVALS)
    yield run
    if run.process.poll() is None:
        subprocess.run([str(BIN / "python"), "scripts/make_run.py", "stop", str(run.home)], cwd=ROOT, timeout=120)
    for line in processes_of(run):  # leave nothing behind, whatever failed
        os.kill(int(line.split(":")[0]), signal.SIGKILL)


# -- what a finished first hour must look like ---------------------------------------------------------------------
def _finished_scheduled(runs: list[dict], dag_id: str) -> int:
    return sum(1 for r in runs if r["dag_id"] == dag_id and r["run_type"] == "scheduled" and r["state"] in FINISHED)


def _settled(run: MakeRun, scheduled: set[str], triggered: set[str]) -> bool:
    runs = run.runs()
    if any(r["state"] == "failed" for r in runs):
        return True  # no use waiting: the assertions say which
    busy = any(r["state"] not in FINISHED for r in runs if r["dag_id"] in triggered | {"dagops_test"})
    return (
        all(_finished_scheduled(runs, dag_id) >= 2 for dag_id in scheduled)
        and any(r["dag_id"] == "dagops_test" and r["state"] in FINISHED for r in runs)
        and not busy
    )


def _task_log(home: Path, ti: dict) -> str:
    folder = home / "logs" / f"dag_id={ti['dag_id']}" / f"run_id={ti['dag_run_id']}" / f"task_id={ti['task_id']}"
    if ti["map_index"] >= 0:
        folder = folder / f"map_index={ti['map_index']}"
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob("attempt=*.log")))


def _unjustified_skips(run: MakeRun, tis: list[dict]) -> list[str]:
    """Skipped tasks without a reason. A task that ran must have said why in its log (AirflowSkipException with
    a message); one that never ran must be downstream only of tasks that returned nothing to map over, or that
    were skipped themselves (dagops_sync's `sync` when no repository changed)."""
    by_key = {(ti["dag_id"], ti["dag_run_id"], ti["task_id"]): ti for ti in tis}
    upstream: dict[str, dict[str, set[str]]] = {}
    problems = []
    for ti in tis:
        if ti["state"] != "skipped":
            continue
        if ti["try_number"] >= 1:
            log = _task_log(run.home, ti)
            if '"Skipping task."' not in log or '"reason"' not in log:
                problems.append(f"{ti['dag_id']}.{ti['task_id']} ({ti['dag_run_id']}) skipped without a reason")
            continue
        if ti["dag_id"] not in upstream:
            tasks = run.get(f"/api/v2/dags/{ti['dag_id']}/tasks").json()["tasks"]
            upstream[ti["dag_id"]] = {t["task_id"]: set() for t in tasks}
            for t in tasks:
                for down in t["downstream_task_ids"]:
                    upstream[ti["dag_id"]][down].add(t["task_id"])
        for parent in upstream[ti["dag_id"]][ti["task_id"]]:
            before = by_key.get((ti["dag_id"], ti["dag_run_id"], parent))
            if before is not None and before["state"] == "skipped":
                continue
            returned = run.get(
                f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{parent}/xcomEntries/return_value"
            )
            if returned.status_code != 200 or returned.json().get("value") not in ([], "[]"):
                problems.append(f"{ti['dag_id']}.{ti['task_id']} ({ti['dag_run_id']}) skipped, but {parent} gave work")
    return problems


def _commit_to_demo(home: Path) -> None:
    remote = home / "demo-remote"
    readme = remote / "README.md"
    readme.write_text(readme.read_text() + "\nEdited in the first hour.\n")
    identity = ["-c", "user.name=first-hour", "-c", "user.email=first-hour@localhost"]
    subprocess.run(["git", "-C", str(remote), *identity, "commit", "-qam", "First-hour edit"], check=True)


def test_the_first_hour_of_make_run_has_no_failed_runs(make_run):
    try:
        _first_hour(make_run)
    except BaseException:
        print(make_run.output()[-8000:])
        raise


def _first_hour(run: MakeRun) -> None:
    wait_for(lambda: DEMO_DAGS <= run.dag_ids(), timeout=600, interval=1, what="the demo DAGs")
    output = run.output()
    assert "restart the dag-processor" not in output  # init runs before Airflow: nothing to restart
    assert "created connection 'dagops_airflow_api'" in output

    # What a user does in the first hour: commit to the demo repository (dagops_sync publishes it, and its
    # asset schedules dagops_test), pin and unpin it (dagops_deploy).
    _commit_to_demo(run.home)
    wait_for(lambda: any(r["dag_id"] == "dagops_test" for r in run.runs()), timeout=300, interval=2, what="a test run")
    for action in ("pin", "unpin"):
        conf = {"repository": "demo", "action": action}
        triggered = run.post("/api/v2/dags/dagops_deploy/dagRuns", {"logical_date": None, "conf": conf})
        assert triggered.status_code == 200, triggered.text
        wait_for(
            lambda: all(r["state"] in FINISHED for r in run.runs() if r["dag_id"] == "dagops_deploy"),
            timeout=300,
            interval=2,
            what=f"dagops_deploy {action}",
        )
    scheduled = run.scheduled_system_dags()
    assert scheduled >= AT_LEAST_SCHEDULED, scheduled
    wait_for(
        lambda: _settled(run, scheduled, {"dagops_deploy"}), timeout=900, interval=5, what="two scheduled runs of each"
    )

    runs, tis = run.runs(), run.task_instances()
    failed_runs = [f"{r['dag_id']} {r['dag_run_id']}" for r in runs if r["state"] == "failed"]
    failed_tis = [
        f"{t['dag_id']}.{t['task_id']} {t['dag_run_id']}" for t in tis if t["state"] in ("failed", "upstream_failed")
    ]
    retried = [f"{t['dag_id']}.{t['task_id']} {t['dag_run_id']}" for t in tis if t["try_number"] > 1]
    print(f"{len(runs)} runs, {len(tis)} task instances; tasks that needed a retry: {retried or 'none'}")
    assert not failed_runs and not failed_tis, (failed_runs, failed_tis)
    assert {r["dag_id"] for r in runs} >= scheduled | {"dagops_test", "dagops_deploy"}
    assert not _unjustified_skips(run, tis)
    assert [r["state"] for r in runs if r["dag_id"] == "dagops_deploy"] == ["success", "success"]

    assert DEMO_DAGS <= run.dag_ids()
    connection = run.get("/api/v2/connections/dagops_airflow_api").json()
    # make run's api-server listens on loopback only, and localhost may resolve to ::1 first
    assert connection["conn_type"] == "http" and connection["host"] == f"http://127.0.0.1:{run.port}"
    found = run.get("/pluginsv2/dagops/api/v1/marketplace/search", q="").json()
    packages = found["items"]
    assert packages and all(p["badge"]["status"] in ("passing", "failing") for p in packages), json.dumps(found)[:2000]

    assert run.sessions() - {run.process.pid}, "run.pid names Airflow's session"
    stop_with_ctrl_c(run)
    leftover = processes_of(run)
    assert not leftover, leftover
    assert not (run.home / "run.pid").exists()


def test_make_stop_ends_every_process_of_make_run(tmp_path):
    run = start_make_run(tmp_path)
    try:
        # Stop it while it is busy: Airflow up, first tasks running or queued.
        wait_for(lambda: "dagops_sync" in run.dag_ids(), timeout=600, interval=1, what="the system DAGs")
        assert run.sessions() - {run.process.pid}, "run.pid names Airflow's session"
        assert processes_of(run)
        env = {**os.environ, "DAGOPS_RUN_HOME": str(run.home)}
        stopped = subprocess.run(["make", "stop"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert f"stopped the `make run` of {run.home}" in stopped.stdout
        run.process.wait(timeout=30)
        leftover = processes_of(run)
        assert not leftover, leftover
    except BaseException:
        print(run.output()[-8000:])
        raise
    finally:
        for line in processes_of(run):
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
        if run.process.poll() is None:
            run.process.kill()
