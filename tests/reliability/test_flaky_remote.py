"""Reliability 2: a remote that stalls or drops connections, through a TCP proxy in front of `git daemon`.
Transient failures (a timeout, a reset connection) are retried with growing pauses (git/mirror.py
RETRY_DELAYS); a stall ends in a clear timeout error; a missing ref is not retried; no retry ever creates
a second release for one commit."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from airflow_dagops.errors import RefNotFound
from airflow_dagops.git.mirror import RETRY_DELAYS, Mirror
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release, SyncRun
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source
from tests.reliability.conftest import FORWARD, RESET, STALL, assert_consistent

pytestmark = pytest.mark.slow

ATTEMPTS = len(RETRY_DELAYS) + 1
GIT_TIMEOUT = 2


@pytest.fixture
def served(git_daemon, git_remote, flaky_proxy, monkeypatch):
    """A repository behind git daemon behind a proxy; `modes` is the proxy's script (popped per connection,
    forwarding once it is empty). Yields (remote, url through the proxy, proxy, modes)."""
    monkeypatch.setenv("AIRFLOW__DAGOPS__GIT_TIMEOUT", str(GIT_TIMEOUT))
    remote = git_remote({"dags/a.py": dag_source("a")})
    base, port = git_daemon
    (base / "team.git").symlink_to(remote.path / ".git")
    modes: list[str] = []
    proxy = flaky_proxy(port, lambda _n: modes.pop(0) if modes else FORWARD)
    return remote, f"git://127.0.0.1:{proxy.port}/team.git", proxy, modes


def _release_rows() -> dict[str, int]:
    with session_scope() as session:
        return dict(session.execute(select(Release.commit_sha, func.count()).group_by(Release.commit_sha)).all())


def test_a_stalled_remote_times_out_clearly_after_retries_and_the_next_sync_publishes_once(dagops_env, served, caplog):
    remote, url, proxy, modes = served
    add_repository("team", url)
    first = sync_repository("team")
    assert first.status == "published"

    new = remote.commit("next", {"dags/b.py": dag_source("b")})
    modes[:] = [STALL] * ATTEMPTS
    caplog.set_level(logging.WARNING, logger="airflow_dagops.git.mirror")
    stalled = sync_repository("team")

    assert stalled.status == "failed"
    assert f"timed out after {GIT_TIMEOUT}s (see [dagops] git_timeout)" in stalled.message
    assert f"gave up after {ATTEMPTS} attempts" in stalled.message
    assert proxy.connections[-ATTEMPTS:] == [STALL] * ATTEMPTS
    pauses = [r.getMessage() for r in caplog.records if "trying again in" in r.getMessage()]
    assert [p.rsplit("trying again in ", 1)[1] for p in pauses] == [f"{d:.0f}s" for d in RETRY_DELAYS]
    # Nothing changed: the first release stays live, no row for the new commit.
    assert assert_consistent("team", "team", dagops_env.dags_folder) == first.commit
    assert new not in _release_rows()

    recovered = sync_repository("team")
    assert recovered.status == "published" and recovered.commit == new
    assert _release_rows() == {first.commit: 1, new: 1}
    assert assert_consistent("team", "team", dagops_env.dags_folder) == new


def test_dropped_connections_are_retried_within_one_sync_without_a_duplicate_release(dagops_env, served):
    remote, url, proxy, modes = served
    add_repository("team", url)
    # ls-remote: dropped twice, then through; the fetch: dropped once, then through.
    modes[:] = [RESET, RESET, FORWARD, RESET]
    outcome = sync_repository("team")

    assert outcome.status == "published", outcome.message
    assert proxy.connections[1:] == [RESET, RESET, FORWARD, RESET, FORWARD]  # [0]: add's check
    assert _release_rows() == {remote.head(): 1}
    with session_scope() as session:
        assert session.scalars(select(SyncRun.status)).all() == ["success"]
    assert assert_consistent("team", "team", dagops_env.dags_folder) == remote.head()


def test_a_remote_that_always_drops_fails_with_a_clear_error_and_records_nothing(dagops_env, served):
    remote, url, proxy, modes = served
    add_repository("team", url)
    modes[:] = [RESET] * ATTEMPTS
    outcome = sync_repository("team")

    assert outcome.status == "failed"
    assert "connection to git://127.0.0.1" in outcome.message and "was dropped" in outcome.message
    assert f"gave up after {ATTEMPTS} attempts" in outcome.message
    assert proxy.connections[1:] == [RESET] * ATTEMPTS
    assert _release_rows() == {}
    assert not (dagops_env.dags_folder / "team").exists()


def test_errors_that_a_retry_cannot_fix_are_not_retried(dagops_env, served, tmp_path):
    _remote, url, proxy, _modes = served
    mirror = Mirror(path=tmp_path / "mirror", url=url)
    with pytest.raises(RefNotFound):
        mirror.ls_remote("no-such-branch")
    assert proxy.connections == [FORWARD]  # one connection: a missing ref is an answer, not a failure
