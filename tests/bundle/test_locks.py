"""The repository lock, seen by every machine: a PostgreSQL advisory lock when the state DB is PostgreSQL, a file
lock on SQLite. Two processes contend for it; a SIGKILLed holder leaves no lock behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from airflow_dagops import paths
from airflow_dagops.deploy.locks import lock_key, repository_lock
from airflow_dagops.errors import LockBusy
from tests.helpers.servers import wait_for

HOLDER = """
import sys, time
from airflow_dagops import paths
from airflow_dagops.deploy.locks import repository_lock
with repository_lock(paths.locks_dir(), sys.argv[1], timeout=30):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder(dagops_env):
    """Start a process that takes the lock of a name and keeps it until it is killed."""
    started = []

    def start(name: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, name], env=dagops_env.env(), stdout=subprocess.PIPE, text=True
        )
        started.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_lock_another_process_holds_is_busy_and_a_killed_holder_leaves_none(dagops_env, holder):
    process = holder("team")
    with pytest.raises(LockBusy, match="another sync of 'team' has held its lock"):
        with repository_lock(paths.locks_dir(), "team", timeout=0.5):
            pass
    with repository_lock(paths.locks_dir(), "other", timeout=5):  # another repository is not held up
        pass

    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    def free() -> bool:
        try:
            with repository_lock(paths.locks_dir(), "team", timeout=0.5):
                return True
        except LockBusy:
            return False

    assert wait_for(free, timeout=30, what="the killed holder's lock to be released")


def test_the_lock_lives_where_every_machine_sees_it(dagops_env):
    with repository_lock(paths.locks_dir(), "team", timeout=5):
        on_file = (paths.locks_dir() / "team.lock").exists()
    assert on_file == dagops_env.db_url.startswith("sqlite")


def test_lock_keys_differ_by_name_and_by_database():
    url = "postgresql+psycopg2://u:secret@db:5432/dagops"
    assert lock_key(url, "team") == lock_key(url.replace("secret", "other"), "team")  # the password is no part
    assert lock_key(url, "team") != lock_key(url, "other")
    assert lock_key(url, "team") != lock_key(url + "?options=-csearch_path%3Dt_1", "team")
    assert -(2**63) <= lock_key(url, "team") < 2**63
