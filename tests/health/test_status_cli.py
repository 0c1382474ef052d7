"""`dagops status` shows each repository's health and exits 0 (ok), 1 (degraded) or 2 (failing), for monitors and
Kubernetes exec probes."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import update

from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Repository, SyncRun, utcnow
from airflow_dagops.sync.sync import sync_repository
from tests.health.test_health import BROKEN


def test_status_exit_codes_follow_the_overall_health(cli, git_remote, dagops_env):
    remote = git_remote()
    add_repository("team", str(remote.path))
    add_repository("other", str(git_remote(name="other").path), enabled=False)
    sync_repository("team", trigger="schedule")

    ok = cli("status")
    assert ok.exit_code == 0, ok.output
    assert "health:       ok" in ok.output and "team: ok" in ok.output
    assert "other: paused (disabled)" in ok.output

    with session_scope() as session:  # nobody has checked for a while
        long_ago = utcnow() - timedelta(hours=1)
        session.execute(update(Repository).values(last_checked_at=long_ago, created_at=long_ago))
        session.execute(update(SyncRun).values(started_at=long_ago, ended_at=long_ago))
    stale = cli("status")
    assert stale.exit_code == 1, stale.output
    assert "health:       degraded" in stale.output and "team: stale since" in stale.output

    for number in range(3):
        remote.commit(f"broken {number}", {"dags/broken.py": BROKEN + f"# {number}\n"})
        sync_repository("team", trigger="schedule")
    failing = cli("status")
    assert failing.exit_code == 2, failing.output
    assert "team: failing (validation) since" in failing.output
    assert "3 syncs in a row failed (validation)" in failing.output

    as_json = cli("status", "--json")
    assert as_json.exit_code == 2
    health = json.loads(as_json.output)["health"]
    assert health["overall"] == "failing"
    assert {h["repository"]: h["state"] for h in health["repositories"]} == {"team": "failing", "other": "paused"}
