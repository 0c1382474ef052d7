"""`make run`'s steps (scripts/run.sh), in as few Python start-ups as possible: each `airflow` or `dagops` command
spends 2-4 s importing Airflow before it does anything, and the first minute of `make run` used to be mostly that.

    make_run.py prepare            before Airflow starts: Airflow's metadata DB (what `airflow standalone` would do
                                   first anyway), `dagops init` (system DAG bundle, state DB, the API connection the
                                   system DAGs read Airflow through), the demo repository and the `community`
                                   catalog registered, the catalog indexed. All of it is there before the
                                   scheduler's first runs (the marketplace check's first run finds the catalog).
    make_run.py airflow            become `airflow standalone` in a session of its own (run.sh starts it in the
                                   background and records the session).
    make_run.py publish            while Airflow starts: sync the demo repository (validate, publish), then say
                                   where to log in once the api-server answers.
    make_run.py stop RUN_HOME      `make stop`: stop the `make run` of RUN_HOME and everything it started.
    make_run.py sweep MARK [SID]   run.sh's own exit (Ctrl-C, `make stop`, Airflow ending): end every process
                                   carrying MARK or in Airflow's session SID.

How stopping finds every process: Airflow's (`airflow standalone`, its scheduler, dag-processor, api-server and
triggerer, the LocalExecutor workers and log servers, task processes in process groups of their own, processes
whose parent died) are in the session `airflow` opened; run.sh's own helpers carry `DAGOPS_RUN_MARK=<mark>` in
their environment (run.sh exports it). A shell that sourced env.sh has neither and is never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK_VAR = "DAGOPS_RUN_MARK"
DEMO_SOURCE = ROOT / "examples" / "demo-repo"
CATALOG_SOURCE = ROOT / "examples" / "catalog"


def _home() -> Path:
    return Path(os.environ["AIRFLOW_HOME"])


def _say(line: str) -> None:
    print(line, flush=True)


# -- before Airflow starts ------------------------------------------------------------------------------------------
def prepare() -> None:
    from airflow.configuration import write_default_airflow_configuration_if_needed
    from airflow.utils import db as airflow_db

    from airflow_dagops.airflow import install
    from airflow_dagops.validate.sandbox_host import describe_support

    write_default_airflow_configuration_if_needed()  # what every `airflow` command does first
    airflow_db.initdb()  # what `airflow db migrate` and standalone do; at head it only checks
    for line in [*install.init(), describe_support()]:
        warning = line.startswith("Validation sandbox: ") and ("UNAVAILABLE" in line or "DEGRADED" in line)
        _say(f"✗ {line}" if warning else f"✓ {line}")
    _register_demo()
    _register_catalog()


def _register_demo() -> None:
    """examples/demo-repo as a real local git repository (edits to the example committed once), registered as
    repository `demo` in namespace `demo`."""
    from airflow_dagops.repositories.info import list_repositories
    from airflow_dagops.repositories.registry import add_repository

    demo = _home() / "demo-remote"
    if not (demo / ".git").is_dir():
        demo.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-R", f"{DEMO_SOURCE}/.", str(demo)], check=True)
        git = ["git", "-C", str(demo)]
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        identity = ["-c", "user.name=dagops-demo", "-c", "user.email=demo@localhost"]
        subprocess.run([*git, *identity, "commit", "-q", "-m", "Demo DAGs"], check=True)
    if "demo" not in {r.name for r in list_repositories()}:
        add_repository("demo", f"file://{demo}", namespace="demo")
        _say(f"✓ registered repository demo (file://{demo}) in namespace demo")


def _register_catalog() -> None:
    """examples/catalog as a local catalog repository (one tag per package version), registered as the
    marketplace's `community` catalog and indexed."""
    from airflow_dagops.marketplace import catalogs as market

    catalog = _home() / "catalog-remote"
    if not (catalog / ".git").is_dir():
        market.catalog_repo_from_folder(CATALOG_SOURCE, catalog)
    if "community" not in {c["name"] for c in market.list_catalogs()}:
        market.add_catalog("community", f"file://{catalog}")
    _say(f"✓ marketplace catalog {market.refresh_catalogs(['community'])[0]['message']}")


# -- while Airflow starts -------------------------------------------------------------------------------------------
def publish() -> None:
    from airflow_dagops.errors import DagOpsError
    from airflow_dagops.sync.sync import sync_repository

    try:
        outcome = sync_repository("demo", trigger="cli")
        _say(f"✓ demo: {outcome.status}: {outcome.message}" if outcome.ok else f"✗ demo: {outcome.message}")
    except DagOpsError as err:  # Airflow runs on; dagops_sync tries again within the minute
        _say(f"✗ demo: {err}")
    port = os.environ.get("AIRFLOW__API__PORT", "8080")
    if _wait_for_api(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=600):
        home = _home()
        _say(
            f"\n  Airflow with dagops is up at http://localhost:{port}  (login: admin / admin)\n"
            f"  Demo repository: {home / 'demo-remote'} (commit there; dagops_sync publishes it).\n"
            f"  Marketplace catalog `community`: {home / 'catalog-remote'} (try: dagops marketplace search backup).\n"
            f"  CLI against this instance:  source {home / 'env.sh'} && dagops status\n"
            "  Stop it: Ctrl-C here, or `make stop`.\n"
        )


def _wait_for_api(url: str, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
                if response.status == 200:
                    return True
        except OSError:  # not listening yet
            pass
        time.sleep(0.5)
    return False


# -- Airflow in a session of its own ---------------------------------------------------------------------------------
def airflow_standalone() -> None:
    """Become `airflow standalone`, as the leader of a new session. Its processes stay in that session whatever
    they do to their process group (task processes get one each) or to their command line and environment
    (the api-server, LocalExecutor workers and log servers rename themselves with setproctitle, which blanks
    /proc/<pid>/environ, mark included), so the session is how stopping finds them. The terminal's Ctrl-C
    reaches run.sh, which stops the session."""
    os.setsid()  # run.sh starts this in the background without job control: never a group leader, so allowed
    airflow = Path(sys.executable).parent / "airflow"
    os.execv(airflow, [str(airflow), "standalone"])  # noqa: S606 - our own venv's airflow, fixed arguments


# -- stopping -------------------------------------------------------------------------------------------------------
def members(mark: str, session: int | None) -> list[int]:
    """Live processes of a `make run`: in its Airflow session, or carrying its mark (not this process)."""
    wanted = f"{MARK_VAR}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            # After the command name (which may hold spaces and parentheses): state ppid pgrp session ...
            state, _ppid, _pgrp, sid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:4]
            if state == "Z":
                continue  # exited; its parent (or init) reaps it
            if int(sid) == session or wanted in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except (OSError, ValueError):  # gone meanwhile, or not ours to read
            continue
    return found


def sweep(mark: str, session: int | None, *, grace: float = 30.0) -> list[int]:
    """End every process of a `make run`: SIGTERM (each Airflow component shuts down cleanly on it), a second
    SIGTERM halfway through `grace` (the api-server's uvicorn waits up to 120 s for open connections on the
    first, and exits on the second), then SIGKILL. Returns the pids that had to be killed."""
    for pid in members(mark, session):
        _signal(pid, signal.SIGTERM)
    for last in (False, True):
        deadline = time.monotonic() + grace / 2
        while members(mark, session) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = members(mark, session)
        for pid in left:
            _signal(pid, signal.SIGKILL if last else signal.SIGTERM)
    return left


def read_pid_file(run_home: Path) -> tuple[int, str, int | None] | None:
    """(run.sh's pid, the mark, Airflow's session id) of the `make run` of `run_home`, or None."""
    try:
        lines = (run_home / "run.pid").read_text().split("\n")
        return int(lines[0]), lines[1], int(lines[2]) if len(lines) > 2 and lines[2].strip() else None
    except (OSError, ValueError, IndexError):
        return None


def stop(run_home: Path) -> int:
    """Stop the `make run` of `run_home`: its run.sh (whose exit sweeps what it started), then anything left."""
    recorded = read_pid_file(run_home)
    if recorded is None:
        _say(f"no `make run` recorded in {run_home / 'run.pid'}")
        return 0
    pid, mark, session = recorded
    if _is_run_sh(pid):
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _is_run_sh(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    killed = sweep(mark, session)
    if killed:
        _say(f"killed {len(killed)} process(es) that did not stop on SIGTERM: {killed}")
    (run_home / "run.pid").unlink(missing_ok=True)
    _say(f"stopped the `make run` of {run_home}")
    return 0


def _is_run_sh(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return b"run.sh" in cmdline and state != "Z"


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "prepare":
        prepare()
    elif command == "airflow":
        airflow_standalone()
    elif command == "publish":
        publish()
    elif command == "stop" and len(argv) == 2:
        return stop(Path(argv[1]))
    elif command == "sweep" and len(argv) in (2, 3):
        sweep(argv[1], int(argv[2]) if len(argv) == 3 else None)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
