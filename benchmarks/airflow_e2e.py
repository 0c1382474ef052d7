"""Measurement (d): from a commit adding a new DAG to that DAG being listed by a running Airflow.

Real api-server, scheduler and dag-processor processes (started with tests/helpers/airflow.py) run with the
settings `make run` uses, read from scripts/run.sh so the two cannot drift apart, in the default publish mode
(`bundle`, set explicitly so a changed default cannot change what is measured): Airflow parses the releases
through the versioned dagops-releases bundle. The periodic dagops_sync schedule is switched off: only the
benchmark's own REST triggers cause syncs.

Where the time goes is read from the instance's dagops state DB while the timer runs (`StateDB`): when the live
set names the new commit (the release is live) and when the dag-processor's bundle version holds it.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.repos import SourceRepo, dag_source, make_dag_repo
from benchmarks.timing import Measurement, Samples, Stated, limit_goal

REPO_NAME = "e2e"
RUN_SH = Path(__file__).resolve().parent.parent / "scripts" / "run.sh"
DEFAULT_REFRESH_INTERVAL_S = 300  # Airflow's [dag_processor] refresh_interval default
LISTED_TIMEOUT_S = 120
# What the measured instances publish with: the default, said out loud (benchmarks/bundle_mode.py times its parts).
BUNDLE_MODE = {"AIRFLOW__DAGOPS__PUBLISH_MODE": "bundle"}
# `export AIRFLOW__X__Y=literal` lines at the start of a line (what run.sh always sets: an indented one is inside a
# condition, such as the degraded sandbox where this machine has none); values with `$` (home, port, URLs) are
# per-instance (tests/helpers/airflow.py).
_EXPORT = re.compile(r"^export (AIRFLOW__[A-Z_]+)=([^\s$\"']+)$")


def make_run_settings() -> dict[str, str]:
    """The Airflow settings `make run` exports (dag-processor intervals, parallelism), plus the default heartbeat.

    tests/helpers/airflow.py speeds the scheduler heartbeat up to 1 s for tests; `make run` keeps the default 5 s, so
    that is what is benchmarked.
    """
    found = dict(m.groups() for line in RUN_SH.read_text().splitlines() if (m := _EXPORT.match(line.rstrip())))
    if not found:
        raise RuntimeError(f"no AIRFLOW__ settings with literal values found in {RUN_SH}")
    return {"AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "5", **found}


def settings_text(settings: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def bundle_mode_text() -> str:
    """How the measured instances publish, in words for the method text."""
    from airflow_dagops.airflow.setup import releases_bundle  # lazy: imports Airflow (benchmarks/env.py first)

    interval = releases_bundle()["kwargs"]["refresh_interval"]
    return (
        "in the default publish mode, `bundle` (the dagops-releases bundle as `dagops init` adds it: "
        f"refresh_interval {interval} s)"
    )


class StateDB:
    """The instance's dagops state DB (SQLite in WAL mode: this reader never holds up a writer), read with sqlite3
    so the benchmark's own dagops settings stay untouched."""

    def __init__(self, instance) -> None:
        self.path = instance.home / "dagops" / "dagops.db"

    def _one(self, query: str, *args) -> tuple | None:
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5) as connection:
            return connection.execute(query, args).fetchone()

    def live_commit(self, namespace: str) -> str | None:
        """The commit the live set serves in `namespace`: written in the transaction that makes a release live."""
        row = self._one("SELECT commit_sha FROM dagops_live_namespace WHERE namespace = ?", namespace)
        return row[0] if row else None

    def bundle_commit(self, namespace: str) -> str | None:
        """The commit of `namespace` in the version the dag-processor's dagops-releases bundle made current last."""
        row = self._one("SELECT manifest FROM dagops_bundle_version ORDER BY current_since DESC LIMIT 1")
        entry = (json.loads(row[0]).get("namespaces") or {}).get(namespace) if row else None
        return entry.get("commit") if entry else None


def load_note(before: float) -> str:
    return (
        f"Load average (1 min) when the measurement started: {before:.1f}; when it ended: {os.getloadavg()[0]:.1f} "
        f"(on {os.cpu_count()} CPUs). Every Airflow process and task start competes for the CPUs with other work "
        "on the machine, so a busy machine stretches every row."
    )


def wait_milestones(
    checks: dict[str, Callable[[], bool]], *, start: float, timeout: float, interval: float = 0.1
) -> dict[str, float]:
    """Poll every check, in order, until the last one holds; returns the ms from `start` at which each was first
    seen to hold. One not seen by then (it held only between two polls) gets the last one's time."""
    seen: dict[str, float] = {}
    deadline = time.perf_counter() + timeout
    final = list(checks)[-1]
    while final not in seen:
        for name, check in checks.items():
            if name not in seen and check():
                seen[name] = (time.perf_counter() - start) * 1000
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s; reached: {', '.join(seen) or 'nothing'}")
        time.sleep(interval)
    return {name: seen.get(name, seen[final]) for name in checks}


def measure_end_to_end(work: Path, reps: int, progress: Callable[[str], None]) -> Measurement:
    """Start Airflow, publish a repository once, then time `reps` commits of a new DAG until it is listed."""
    from tests.helpers.airflow import make_instance

    settings, load_before = make_run_settings(), os.getloadavg()[0]
    repo = make_dag_repo(work / "remotes" / REPO_NAME, 3, prefix="e2e")
    progress("(d) migrating a fresh Airflow metadata DB")
    instance = make_instance(work / "airflow-e2e", {**settings, **BUNDLE_MODE, "AIRFLOW__DAGOPS__SYNC_SCHEDULE": ""})
    try:
        progress("(d) starting api-server, scheduler and dag-processor")
        instance.start("api-server", "scheduler", "dag-processor")
        first = _publish_first(instance, repo, progress)
        rows = _time_new_dags(instance, repo, reps, progress)
    except BaseException:
        print(instance.logs(), file=sys.stderr)
        raise
    finally:
        instance.stop()
    listed = rows[0]
    return Measurement(
        "d",
        "(d) End to end in a running Airflow: commit of a new DAG → listed by `GET /api/v2/dags`",
        f"api-server, scheduler and dag-processor (LocalExecutor, SQLite) {bundle_mode_text()}, with the `make run` "
        f"settings ({settings_text(settings)}). "
        "After each commit adding a DAG with a fresh dag_id, the timer starts, "
        '`POST /api/v2/dags/dagops_sync/dagRuns` with conf {"repository": "e2e"} is sent, and `GET /api/v2/dags` '
        "is polled every 0.1 s until the DAG is listed; meanwhile the instance's dagops state DB is read for the "
        "moment the live set names the commit and the moment the dag-processor's bundle version holds it. "
        "Validation is on (the real dagops_sync task).",
        [
            *rows,
            Stated(
                "Airflow default: a new file waits for the next dags-folder rescan "
                "(`[dag_processor] refresh_interval` = 300 s; stated, not measured)",
                DEFAULT_REFRESH_INTERVAL_S * 1000,
            ),
        ],
        [limit_goal("median ≤ 15 s", listed, 15_000, unit="s")],
        [
            f"First publish of the repository (warm-up, not counted): {first:.1f} s from trigger to listed.",
            load_note(load_before),
        ],
    )


def _publish_first(instance, repo: SourceRepo, progress: Callable[[str], None]) -> float:
    """Register the repository and publish it once, so the timed runs measure steady state."""
    from tests.helpers.airflow import BIN
    from tests.helpers.servers import wait_for

    instance.run(str(BIN / "dagops"), "repos", "add", REPO_NAME, repo.url, "--namespace", REPO_NAME)
    progress("(d) waiting for the dagops_sync system DAG")
    wait_for(lambda: "dagops_sync" in instance.dag_ids(), timeout=180, interval=0.5, what="dagops_sync")
    start = time.perf_counter()
    run_id = _trigger_sync(instance)
    wait_for(lambda: "e2e_0000" in instance.dag_ids(), timeout=180, interval=0.2, what="the first publish")
    elapsed = time.perf_counter() - start
    _wait_run_end(instance, run_id)
    return elapsed


def _time_new_dags(instance, repo: SourceRepo, reps: int, progress) -> list[Samples]:
    listed = Samples("commit → new DAG listed by `GET /api/v2/dags` (timer starts right after the commit)")
    live = Samples("commit → release live (the live set in the state DB names the commit)", role="breakdown")
    served = Samples(
        "commit → the dag-processor's dagops-releases bundle version holds the commit (its refresh)", role="breakdown"
    )
    finished = Samples("commit → dagops_sync run finished (the run's end_date)", role="breakdown")
    state = StateDB(instance)
    for i in range(1, reps + 1):
        dag_id = f"e2e_new_{i:02d}_{int(time.time())}"
        sha = repo.commit({f"dags/new/{dag_id}.py": dag_source(dag_id, i)}, f"add {dag_id}")
        start, wall_start = time.perf_counter(), datetime.now(timezone.utc)
        run_id = _trigger_sync(instance)
        seen = wait_milestones(
            {
                "live": lambda sha=sha: state.live_commit(REPO_NAME) == sha,
                "served": lambda sha=sha: state.bundle_commit(REPO_NAME) == sha,
                "listed": lambda d=dag_id: d in instance.dag_ids(),
            },
            start=start,
            timeout=LISTED_TIMEOUT_S,
        )
        listed.ms.append(seen["listed"])
        live.ms.append(seen["live"])
        served.ms.append(seen["served"])
        run_state, ended = _wait_run_end(instance, run_id)
        if run_state != "success":
            raise RuntimeError(f"dagops_sync run {run_id} ended {run_state}")
        finished.ms.append((ended - wall_start).total_seconds() * 1000)
        progress(
            f"(d) {i}/{reps}: {dag_id} live {live.ms[-1] / 1000:.1f} s, in the bundle {served.ms[-1] / 1000:.1f} s, "
            f"listed {listed.ms[-1] / 1000:.1f} s after the commit"
        )
    return [listed, live, served, finished]


def _trigger_sync(instance) -> str:
    """`instance.api` retries an answer 5xx with a backoff, each try waiting longer than SQLite's 60 s busy timeout
    (tests/helpers/airflow.py): Airflow's `500 Database error` under load changed nothing, so it is safe to retry."""
    body = {"logical_date": None, "conf": {"repository": REPO_NAME}}
    response = instance.api("POST", "dags/dagops_sync/dagRuns", json=body)
    if response.status_code != 200:
        raise RuntimeError(f"triggering dagops_sync failed: {response.status_code} {response.text}")
    return response.json()["dag_run_id"]


def _wait_run_end(instance, run_id: str) -> tuple[str, datetime]:
    """Wait for a dagops_sync run to end (outside the timer), so runs never queue behind each other."""
    from tests.helpers.servers import wait_for

    def ended():
        run = instance.api("GET", f"dags/dagops_sync/dagRuns/{run_id}").json()
        return run if run.get("state") in ("success", "failed") else None

    run = wait_for(ended, timeout=180, interval=0.2, what=f"dagops_sync run {run_id}")
    return run["state"], datetime.fromisoformat(run["end_date"].replace("Z", "+00:00"))
