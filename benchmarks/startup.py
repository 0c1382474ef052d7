"""Measurement (k): `make run` start-up, from `bash scripts/run.sh` to a usable UI with the demo DAGs listed.

The real script (what `make run` runs once the venv exists) in a fresh folder on a free port, as a user's first
`make run`; then again on the same folder (a restart: DB at head, repositories registered); and, as the baseline,
the script as it was before issue 19 (commit BEFORE: `airflow db migrate`, `dagops init`, `dagops repos add`,
`dagops sync` and the catalog one after the other, each its own Python start-up, then `exec airflow standalone`).
Each start is stopped with `make stop`'s command before the next begins.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

from benchmarks.timing import Measurement, Samples, limit_goal

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "f670c6e"  # the last commit before issue 19's start-up work
DEMO_DAGS = {"demo_etl", "demo_fanout", "demo_report"}
TIMEOUT_S = 600
REPS, QUICK_REPS = 3, 1


class Start:
    """One `run.sh` in `home` on a free port: when its output said what, and when the API answered."""

    def __init__(self, script: Path, home: Path, mark: str):
        from tests.helpers.servers import free_port

        self.port, self.home, self.mark = free_port(), home, mark
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "DAGOPS_RUN_HOME": str(home),
                "AIRFLOW__API__PORT": str(self.port),
                "PATH": f"{ROOT / '.venv' / 'bin'}:{env['PATH']}",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "DAGOPS_RUN_MARK": mark,  # the script before issue 19 does not mark its helpers: we do
            }
        )
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as `make run` (Makefile): bytecode cached in .venv
        self.started = time.perf_counter()
        self.lines: list[tuple[float, str]] = []
        self.process = subprocess.Popen(
            ["bash", str(script)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((time.perf_counter(), line))

    def said(self, text: str) -> float | None:
        """Seconds from the start to the first output line containing `text`."""
        return next((at - self.started for at, line in list(self.lines) if text in line), None)

    def wait_until_listed(self) -> tuple[float, float]:
        """(seconds until the api-server answered, seconds until the demo DAGs were listed)."""
        url, answered = f"http://127.0.0.1:{self.port}", None
        deadline = self.started + TIMEOUT_S
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"run.sh ended with {self.process.returncode}:\n{self.tail()}")
            try:
                login = requests.post(f"{url}/auth/token", json={"username": "admin", "password": "admin"}, timeout=5)
                answered = answered or time.perf_counter() - self.started
                headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
                dags = requests.get(f"{url}/api/v2/dags", headers=headers, params={"limit": 100}, timeout=10).json()
                if DEMO_DAGS <= {dag["dag_id"] for dag in dags["dags"]}:
                    return answered, time.perf_counter() - self.started
            except (requests.RequestException, KeyError, ValueError):
                pass
            time.sleep(0.25)
        raise TimeoutError(f"the demo DAGs were not listed within {TIMEOUT_S} s:\n{self.tail()}")

    def stop(self) -> float:
        """Stop everything this start began (the way `make stop` does); returns the seconds it took."""
        python = str(ROOT / ".venv" / "bin" / "python")
        start = time.perf_counter()
        if (self.home / "run.pid").exists():
            subprocess.run([python, "scripts/make_run.py", "stop", str(self.home)], cwd=ROOT, timeout=180)
        # The script before issue 19 keeps Airflow in its own session (started here as a new one): end that too.
        sweep = [python, "scripts/make_run.py", "sweep", self.mark, str(self.process.pid)]
        subprocess.run(sweep, cwd=ROOT, timeout=180)
        self.process.wait(timeout=60)
        return time.perf_counter() - start

    def tail(self) -> str:
        return "".join(line for _, line in self.lines[-40:])


def measure_startup(work: Path, quick: bool, progress: Callable[[str], None]) -> Measurement:
    reps = QUICK_REPS if quick else REPS
    before = work / "run-before-issue-19.sh"
    shown = subprocess.run(["git", "show", f"{BEFORE}:scripts/run.sh"], cwd=ROOT, capture_output=True, text=True)
    # It finds the checkout from its own path: run it from the work dir, pointed at this checkout.
    before.write_text(shown.stdout.replace('cd "$(dirname "$0")/.."', f'cd "{ROOT}"', 1))
    fresh = Samples("first `make run` (fresh folder): `bash scripts/run.sh` → demo DAGs listed by `GET /api/v2/dags`")
    answered = Samples("first `make run`: → the api-server answers `POST /auth/token`", role="breakdown")
    prepared = Samples("first `make run`: → Airflow starting (DB, init, demo and catalog registered)", role="breakdown")
    restart = Samples("`make run` again on the same folder → demo DAGs listed", role="breakdown")
    old = Samples(f"first `make run` with scripts/run.sh of {BEFORE} (before issue 19) → demo DAGs listed")
    stops = Samples("`make stop` → every process of the `make run` gone", role="breakdown")
    for i in range(1, reps + 1):
        home = work / f"startup-{i}"
        for into, label in ((fresh, "first"), (restart, "again")):
            run = Start(ROOT / "scripts" / "run.sh", home, f"{home}#bench")
            try:
                up, listed = run.wait_until_listed()
            finally:
                stopped = run.stop()
            into.ms.append(listed * 1000)
            stops.ms.append(stopped * 1000)
            if label == "first":
                answered.ms.append(up * 1000)
                prepared.ms.append((run.said("Starting Airflow at") or 0) * 1000)
            progress(f"(k) {i}/{reps} {label}: demo DAGs listed after {listed:.1f} s (api-server {up:.1f} s)")
        home = work / f"startup-before-{i}"
        run = Start(before, home, f"{home}#bench")
        try:
            _, listed = run.wait_until_listed()
        finally:
            run.stop()
        old.ms.append(listed * 1000)
        progress(f"(k) {i}/{reps} before issue 19: demo DAGs listed after {listed:.1f} s")
    return Measurement(
        "k",
        "(k) `make run` start-up: `bash scripts/run.sh` → a usable UI with the demo DAGs listed",
        "The real scripts/run.sh (what `make run` runs once the venv exists) in a fresh folder on a free port: the "
        "timer starts when bash is started and stops when `GET /api/v2/dags` (with a token from `POST /auth/token`, "
        "admin/admin, polled every 0.25 s) lists the three demo DAGs. Then the same folder again (a restart), and "
        f"the script of commit {BEFORE} in a fresh folder. Each start is stopped as `make stop` does before the next "
        "(the stop is timed too). The machine's other load is not controlled: 2 shared cores.",
        [fresh, old, answered, prepared, restart, stops],
        [limit_goal("median ≤ 60 s after the venv exists", fresh, 60_000, unit="s")],
        [
            "From a bare clone, measured by hand (not by this script) on 2026-12-02 with other jobs loading the "
            "machine (load average ~10): `git clone` 1 s, `make venv` 10.2 s (uv's cache warm: no download), then "
            "the first `make run` in that fresh venv 85.7 s to the demo DAGs (no bytecode yet: every Airflow "
            "process compiles what it imports), so ~97 s in all against the goal of 3 min.",
            "The api-server is the critical path: the demo DAGs are listed within a second of it answering. What "
            "runs before `airflow standalone` (one Python process: Airflow's DB, `dagops init`, demo and catalog "
            "registered) is the 'Airflow starting' row; the demo's validation and publish run while Airflow starts.",
            "These timings vary 2-3x with the machine's other load (two runs of this measurement beside other jobs "
            "gave medians of 29-31 s first, 38-45 s before issue 19, restarts up to 70 s). Restarts suffer most: the "
            "scheduler queues the system DAGs' overdue runs at once, and their task processes compete with the "
            "starting api-server for the 2 cores.",
        ],
    )
