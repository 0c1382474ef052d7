"""A sync SIGKILLed during its fetch leaves an orphaned git that may still hold a lock file in the mirror
(tests/reliability/test_kill.py found it). The next fetch treats the lock as transient and retries; a lock
older than any of our git commands can run is a leftover of a dead git and is removed."""

from __future__ import annotations

import os
import time

import pytest

from airflow_dagops.errors import GitError
from airflow_dagops.git.mirror import RETRY_DELAYS, TRACKED_REF, Mirror


def _lock(mirror: Mirror, age: float):
    mirror.ensure()
    lock = mirror.path / (TRACKED_REF + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")
    then = time.time() - age
    os.utime(lock, (then, then))
    return lock


def test_a_lock_left_by_a_dead_git_is_removed_and_the_fetch_succeeds(git_remote, tmp_path, caplog):
    remote = git_remote()
    mirror = Mirror(path=tmp_path / "mirror.git", url=remote.url, timeout=30)
    lock = _lock(mirror, age=3600)

    info = mirror.fetch("refs/heads/main")

    assert info.sha == remote.head()
    assert not lock.exists()
    assert "left 3600s ago by a git process that did not finish" in caplog.text


def test_a_fresh_lock_is_waited_for_then_reported_clearly_and_left_alone(git_remote, tmp_path):
    remote = git_remote()
    mirror = Mirror(path=tmp_path / "mirror.git", url=remote.url, timeout=30)
    lock = _lock(mirror, age=0)

    with pytest.raises(GitError, match="is locked by another git process") as raised:
        mirror.fetch("refs/heads/main")

    assert f"gave up after {len(RETRY_DELAYS) + 1} attempts" in str(raised.value)
    assert lock.exists()  # its git may still be running: not ours to remove
