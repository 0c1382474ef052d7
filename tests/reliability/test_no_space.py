"""Reliability 4: dagops_home on a full file system (a 2 MiB tmpfs). The export fails with a "no space"
error, the partial export is removed, the old release stays live, and once the commit that did not fit is
gone the next sync publishes again."""

from __future__ import annotations

import os
import subprocess

import pytest
from sqlalchemy import select

from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source
from tests.reliability.conftest import assert_consistent, leftovers

pytestmark = pytest.mark.slow

SIZE = "2m"


@pytest.fixture
def small_dagops_home(dagops_env):
    """Mount a tmpfs of SIZE on dagops_home (mirrors, releases, caches). Needs root (CI and these
    machines run as root); skipped, saying why, where mounting is not permitted."""
    home = dagops_env.dagops_home
    home.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(home)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield dagops_env
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


def _compressible(count: int, size: int) -> dict[str, str]:
    """Files that git stores in a few KiB (so the fetch fits) but that take count * size bytes exported."""
    return {f"dags/data/f{i:04d}.py": f"# {i}\n" + "x" * size for i in range(count)}


def _release_commits() -> list[str]:
    with session_scope() as session:
        return session.scalars(select(Release.commit_sha)).all()


def test_an_export_that_does_not_fit_says_no_space_and_leaves_the_old_release_live(small_dagops_home, git_remote):
    env = small_dagops_home
    remote = git_remote({"dags/a.py": dag_source("a")})
    add_repository("team", remote.url)
    first = sync_repository("team")
    assert first.status == "published"

    big = remote.commit("too big for the disk", _compressible(300, 10_000))  # 3 MB exported
    outcome = sync_repository("team")

    assert outcome.status == "failed"
    assert "no space left on device" in outcome.message and "exporting" in outcome.message
    assert assert_consistent("team", "team", env.dags_folder) == first.commit
    assert leftovers("team") == []  # the partial export was removed, freeing its space
    assert big not in _release_commits()

    # The fix: the big files go; the next sync publishes it.
    fixed = remote.commit("drop the data", dict.fromkeys(_compressible(300, 0)))
    recovered = sync_repository("team")
    assert recovered.status == "published" and recovered.commit == fixed
    assert assert_consistent("team", "team", env.dags_folder) == fixed


def test_a_fetch_that_does_not_fit_says_no_space_and_leaves_the_old_release_live(small_dagops_home, git_remote):
    env = small_dagops_home
    remote = git_remote({"dags/a.py": dag_source("a")})
    add_repository("team", remote.url)
    first = sync_repository("team")

    remote.commit("incompressible", {"dags/blob.bin": os.urandom(3 * 2**20)})
    outcome = sync_repository("team")

    assert outcome.status == "failed"
    assert "no space left" in outcome.message.lower() and "mirror" in outcome.message
    assert assert_consistent("team", "team", env.dags_folder) == first.commit
    assert _release_commits() == [first.commit]
