"""One check for the one rule for pins (airflow_dagops/releases/pins.py): every read of a pinned repository tells
the same story. Used by the pin tests of each face."""

from __future__ import annotations

import os
from pathlib import Path

from airflow_dagops import paths
from airflow_dagops.releases.rollback import get_release, list_releases
from airflow_dagops.repositories.info import get_repository, repository_history


def assert_live_and_pinned(name: str, release_id: int) -> None:
    """`release_id` is live and pinned in the repository read (the page header, REST, `dagops repos show`), in the
    releases list (the page's table, REST, `dagops versions`), in the history (`dagops repos show`), and the
    namespace link Airflow reads points at its folder."""
    info = get_repository(name)
    assert (info.live_release_id, info.pinned_release_id, info.status) == (release_id, release_id, "pinned")
    releases, _total = list_releases(name)
    assert [r["id"] for r in releases if r["status"] == "live"] == [release_id]
    assert [r["id"] for r in releases if r["pinned"]] == [release_id]
    history = repository_history(name)["releases"]
    assert [r["id"] for r in history if r["pinned"]] == [release_id]
    release = get_release(release_id)
    assert release["status"] == "live" and release["pinned"] is True
    link = paths.namespace_link(info.namespace)
    assert Path(os.path.realpath(link)).name == release["commit"]
