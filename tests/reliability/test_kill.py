"""Reliability 1: `dagops sync` SIGKILLed at random points, 20 times. After every kill the namespace link
resolves to a complete release, no lock is left (flock dies with its holder), no release row claims a
folder that is not on disk, and the next sync publishes the newest commit.

The child is a fork of this test process that calls `sync_repository`, exactly what `dagops sync`
runs once its imports are done: a fresh `dagops` process spends seconds importing Airflow, and kills during
imports test nothing. (tests/test_faults.py SIGKILLs a real `dagops sync` process mid-export.) A calibration
run measures how long a sync takes; the kills fall uniformly within that duration.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter

import pytest
from filelock import FileLock
from sqlalchemy import func, select

from airflow_dagops import paths
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store import db
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release, SyncRun
from airflow_dagops.sync.sync import sync_repository
from tests.reliability.conftest import assert_consistent, leftovers

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # a loaded 2-core CI machine

KILLS = 20
FILES_PER_COMMIT = 1000  # export, the longest step, takes about half the sync
SEED = 20260901


def _files(revision: int) -> dict[str, str]:
    return {f"dags/gen/f{i:05d}.py": f"VALUE = {i}  # revision {revision}\n" for i in range(FILES_PER_COMMIT)}


def _sync_child() -> int:
    """Fork a process that runs one sync and exits; returns its pid."""
    pid = os.fork()
    if pid == 0:  # the child: its own DB connections, then the sync, then out without running pytest's exit
        code = 1
        try:
            db.dispose_engines()
            code = 0 if sync_repository("team").status in ("published", "unchanged") else 1
        finally:
            os._exit(code)
    return pid


def _runs() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(SyncRun))


def _calibrate() -> float:
    """Seconds one sync of a fresh commit takes in a child."""
    started = time.monotonic()
    _pid, status = os.waitpid(_sync_child(), 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return time.monotonic() - started


def _what_the_kill_interrupted(runs_before: int, old_live: str | None, new_commit: str, link_commit) -> str:
    with session_scope() as session:
        rows = session.scalars(select(SyncRun.status).order_by(SyncRun.id).offset(runs_before)).all()
    if not rows:
        return "before the run was recorded"
    if rows[-1] == "running":
        if link_commit == new_commit:
            return "after the link swap, before the DB commit"
        return "during fetch/export/validate"
    return "after the sync had finished"


def test_twenty_sigkills_at_random_points_never_break_the_live_release(dagops_env, git_remote):
    if dagops_env.db_url.startswith("postgresql"):
        pytest.skip("20 kills take minutes; run once, on SQLite (PostgreSQL faults: test_postgres_faults.py)")
    remote = git_remote(_files(0))
    add_repository("team", remote.url)
    assert sync_repository("team").status == "published"
    remote.commit("calibration", _files(-1))
    window = (0.0, _calibrate())
    rng = random.Random(SEED)
    interrupted: Counter[str] = Counter()
    link = dagops_env.dags_folder / "team"

    for kill in range(1, KILLS + 1):
        old_live = get_repository("team").live_commit
        new_commit = remote.commit(f"revision {kill}", _files(kill))
        runs_before = _runs()
        child = _sync_child()
        time.sleep(rng.uniform(*window))
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)

        # Straight after the kill, before anything repairs it.
        link_commit = assert_consistent("team", "team", dagops_env.dags_folder)
        assert link_commit in (old_live, new_commit), f"kill {kill}: the link points at {link_commit}"
        interrupted[_what_the_kill_interrupted(runs_before, old_live, new_commit, link_commit)] += 1
        lock = FileLock(str(paths.locks_dir() / "team.lock"))
        lock.acquire(timeout=0)  # raises if the dead child still held it
        lock.release()

        # The next sync succeeds, cleans up and ends with the newest commit live.
        outcome = sync_repository("team")
        assert outcome.status in ("published", "unchanged"), f"kill {kill}: {outcome.message}"
        assert get_repository("team").live_commit == new_commit
        assert assert_consistent("team", "team", dagops_env.dags_folder) == new_commit
        assert leftovers("team") == []
        assert link.resolve() == paths.release_dir("team", new_commit)
        with session_scope() as session:  # the killed run is closed, not 'running' forever
            assert session.scalars(select(SyncRun.status).where(SyncRun.status == "running")).all() == []

    with session_scope() as session:
        per_commit = session.execute(select(Release.commit_sha, func.count()).group_by(Release.commit_sha)).all()
        interrupted_rows = session.scalar(select(func.count()).where(SyncRun.error_code == "interrupted"))
    assert all(count == 1 for _sha, count in per_commit), per_commit  # never two rows for one commit
    print(f"\nkill window {window[0]:.2f}-{window[1]:.2f}s; kills landed: {dict(interrupted)}")
    assert sum(interrupted.values()) == KILLS
    assert (
        interrupted_rows
        == interrupted["during fetch/export/validate"] + interrupted["after the link swap, before the DB commit"]
    )
    assert interrupted["during fetch/export/validate"] + interrupted["after the link swap, before the DB commit"] > 0
