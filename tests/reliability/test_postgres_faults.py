"""Reliability 3: the PostgreSQL state DB loses its connections during syncs. All server connections of this
test's dagops processes (tagged with an application_name) are terminated with pg_terminate_backend, which
is what a server restart does to its clients, without restarting a server other test workers share. The
sync either survives (pool_pre_ping reconnects between transactions) or fails with a clear error; either
way nothing is half written and the next sync publishes."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import create_engine, select, text

from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import SyncRun
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.db import POSTGRES_URL
from tests.reliability.conftest import APPLICATION_NAME, assert_consistent, leftovers, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not POSTGRES_URL, reason="needs DAGOPS_TEST_POSTGRES_URL (the local PostgreSQL)"),
]

ROUNDS = 6
SEED = 3


class Terminator:
    """Terminates this test's backends every `interval` seconds until stopped (a flapping server)."""

    def __init__(self, admin, interval: float):
        self.admin, self.interval = admin, interval
        self.terminated = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.terminated += terminate_backends(self.admin)
            self._stop.wait(self.interval)

    def __enter__(self) -> Terminator:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


def terminate_backends(admin) -> int:
    with admin.connect() as connection:
        return connection.execute(
            text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": APPLICATION_NAME},
        ).scalar()


def _running_rows() -> int:
    with session_scope() as session:
        return len(session.scalars(select(SyncRun.id).where(SyncRun.status == "running")).all())


def test_terminated_state_db_connections_fail_a_sync_cleanly_and_the_next_one_publishes(dagops_env, git_remote):
    if not dagops_env.db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL fault: runs on the PostgreSQL state DB only")
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    rng = random.Random(SEED)
    remote = git_remote()
    add_repository("team", remote.url)
    assert sync_repository("team").status == "published"
    outcomes: list[tuple[str, int]] = []
    try:
        for round_ in range(ROUNDS):
            files = {f"dags/gen/f{i:04d}.py": f"V = {i}  # {round_}\n" for i in range(300)}
            new = remote.commit(f"round {round_}", files)
            child = subprocess.Popen(
                [sys.executable, "-m", "airflow_dagops.cli.main", "sync", "team"],
                env=dagops_env.env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            # Wait until the child has started its sync (its run row exists), then, after a random delay:
            # even rounds, one "restart" (every connection terminated once); odd rounds, a server that keeps
            # dropping connections (every 5 ms) for the rest of the sync.
            assert wait_for(lambda child=child: child.poll() is not None or _running_rows() > 0, timeout=60)
            time.sleep(rng.uniform(0, 0.5))
            storm = round_ % 2 == 1
            if storm:
                with Terminator(admin, interval=0.005) as terminator:
                    stdout, stderr = child.communicate(timeout=120)
                assert terminator.terminated > 0
            else:
                terminate_backends(admin)
                stdout, stderr = child.communicate(timeout=120)
            outcomes.append(("storm" if storm else "once", child.returncode))
            if child.returncode != 0:
                # Handled, with a one-line reason: the sync's outcome line (stdout) or the CLI's error line
                # (stderr). An uncaught exception would print neither. (Helpers that never raise, like the
                # event feed, may log their own failure with a traceback before it.)
                reasons = [
                    line
                    for line in stdout.splitlines() + stderr.splitlines()
                    if line.startswith(("failed: team: the dagops state DB", "Error: the dagops state DB"))
                ]
                assert reasons, (stdout + stderr)[-3000:]
                assert "Nothing was half written" in reasons[0]

            # Nothing half written: the link resolves to a complete release, every row's folder is whole.
            assert assert_consistent("team", "team", dagops_env.dags_folder) is not None
            recovered = sync_repository("team")
            assert recovered.status in ("published", "unchanged"), recovered.message
            assert get_repository("team").live_commit == new
            assert assert_consistent("team", "team", dagops_env.dags_folder) == new
            assert leftovers("team") == []
    finally:
        admin.dispose()
    print(f"\n(termination, child exit code) per round: {outcomes}")
