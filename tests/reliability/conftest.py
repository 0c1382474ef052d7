"""Shared pieces of the fault tests: what must hold after any failure. (The `git daemon` and the TCP proxy in
front of it that can stall or drop connections are fixtures of tests/helpers/servers.py.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from airflow_dagops import paths
from airflow_dagops.deploy.publish import current_target
from airflow_dagops.deploy.releases import read_manifest
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release, Repository
from tests.helpers.servers import FORWARD, RESET, STALL, FlakyProxy  # noqa: F401 - re-exported for the tests
from tests.webhooks.conftest import hooks, webhook_app  # noqa: F401 - the webhook fixtures

APPLICATION_NAME = f"dagops-reliability-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def state_db_url(state_db_url):
    """The parent fixture's DB; on PostgreSQL tagged with an application_name of this test session, so a
    test can terminate this session's connections (and no other worker's on the shared server)."""
    if state_db_url.startswith("postgresql"):
        return f"{state_db_url}&application_name={APPLICATION_NAME}"
    return state_db_url


# -- invariants -------------------------------------------------------------------------------------------
def assert_release_complete(folder: Path) -> dict:
    """A release folder is complete: its manifest exists and every file it lists is on disk."""
    manifest = read_manifest(folder)
    assert manifest is not None, f"{folder} has no manifest"
    missing = [name for name in manifest["files"] if not (folder / name).exists() and not (folder / name).is_symlink()]
    assert not missing, f"{folder} misses {missing[:5]}"
    return manifest


def assert_consistent(name: str, namespace: str, dags_folder: Path) -> str | None:
    """What must hold whatever failed: the namespace link (if any) resolves to a complete release, and no
    release row that claims a folder (not pruned) lacks it. Returns the live commit, if any."""
    link = dags_folder / namespace
    live = None
    if link.is_symlink():
        target = current_target(link)
        assert target is not None and target.is_dir(), f"{link} dangles: {target}"
        live = assert_release_complete(target)["commit"]
    with session_scope() as session:
        repo_id = session.scalar(select(Repository.id).where(Repository.name == name))
        for release in session.scalars(
            select(Release).where(Release.repository_id == repo_id, Release.pruned_at.is_(None))
        ):
            assert_release_complete(Path(release.path))
    return live


def leftovers(namespace: str) -> list[str]:
    releases = paths.namespace_releases_dir(namespace)
    return sorted(p.name for p in releases.iterdir() if p.name.startswith(".tmp-")) if releases.is_dir() else []


def wait_for(condition: Callable[[], bool], timeout: float = 30, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
