"""Faults with real processes: concurrent syncs, SIGKILL mid-export, and secrets that must never leak."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from filelock import FileLock
from sqlalchemy import select, text

from airflow_dagops import paths
from airflow_dagops.deploy.publish import current_target
from airflow_dagops.deploy.releases import read_manifest
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.db import get_engine, session_scope
from airflow_dagops.store.models import Release, SyncRun
from airflow_dagops.sync.sync import sync_repository

DAGOPS = [sys.executable, "-m", "airflow_dagops.cli.main"]


def dagops(env, *args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [*DAGOPS, *args], env=env.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def many_files(count: int, prefix: str = "gen") -> dict[str, str]:
    return {f"dags/{prefix}/f{i:05d}.py": f"VALUE = {i}\n" for i in range(count)}


def test_two_concurrent_syncs_of_one_repository_do_not_interleave(dagops_env, git_remote):
    remote = git_remote(many_files(1500))
    add_repository("team", remote.url)
    first, second = dagops(dagops_env, "sync", "team"), dagops(dagops_env, "sync", "team")
    results = [p.communicate(timeout=120) + (p.returncode,) for p in (first, second)]
    assert [code for *_rest, code in results] == [0, 0], results
    with session_scope() as session:
        runs = sorted(run.status for run in session.scalars(select(SyncRun)))
        releases = session.scalars(select(Release)).all()
    assert runs == ["success", "unchanged"]
    assert len(releases) == 1 and releases[0].status == "live"
    assert [p.name for p in paths.namespace_releases_dir("team").iterdir()] == [remote.head()]


def test_a_sync_killed_mid_export_never_breaks_the_live_link_and_the_next_sync_recovers(dagops_env, git_remote):
    remote = git_remote()
    add_repository("team", remote.url)
    good = sync_repository("team").commit
    link = dagops_env.dags_folder / "team"
    releases = paths.namespace_releases_dir("team")
    killed = False
    for attempt in range(1, 4):  # a bigger commit each time, in case the export outran our polling
        remote.commit(f"big {attempt}", many_files(3000 * attempt, prefix=f"a{attempt}"))
        process = dagops(dagops_env, "sync", "team")
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            if any(p.name.startswith(".tmp-") for p in releases.iterdir()):
                process.send_signal(signal.SIGKILL)
                killed = True
                break
            time.sleep(0.002)
        process.communicate(timeout=60)
        if killed:
            break
        sync_repository("team")  # it finished first; reset and try with more files
        good = remote.head()
    assert killed, "the export was never caught in progress"
    # What Airflow reads is still the complete previous release.
    assert current_target(link) == paths.release_dir("team", good)
    assert read_manifest(current_target(link))["commit"] == good
    # The lock died with the process; the next sync recovers and cleans up.
    FileLock(str(paths.locks_dir() / "team.lock")).acquire(timeout=1)
    outcome = sync_repository("team")
    assert outcome.status == "published" and outcome.commit == remote.head()
    assert not [p for p in releases.iterdir() if p.name.startswith(".tmp-")]
    with session_scope() as session:
        for release in session.scalars(select(Release).where(Release.pruned_at.is_(None))):
            assert read_manifest(paths.release_dir("team", release.commit_sha)) is not None


class _AuthRequired(http.server.BaseHTTPRequestHandler):
    """A git smart-HTTP endpoint that rejects every credential: makes git actually use the token."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def auth_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AuthRequired)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/org/repo.git"
    server.shutdown()


def _everything_in_the_db() -> str:
    dump = []
    with get_engine().connect() as connection:
        for table in (
            "dagops_repository",
            "dagops_sync_run",
            "dagops_release",
            "dagops_finding",
            "dagops_deploy_event",
        ):
            dump.extend(str(row) for row in connection.execute(text(f"SELECT * FROM {table}")))
    return "\n".join(dump)


def test_credentials_never_appear_in_logs_db_rows_or_cli_output(dagops_env, auth_server, caplog, monkeypatch):
    secret = "s3cr3t-T0KEN-value"
    monkeypatch.setenv("AIRFLOW__DAGOPS__ALLOWED_PROTOCOLS", "http:https:ssh:git:file")
    monkeypatch.setenv(
        "AIRFLOW_CONN_PRIVATE_GIT",
        json.dumps({"conn_type": "git", "host": auth_server, "login": "deploy", "password": secret}),
    )
    outputs = []

    # A URL with the secret in it is refused, and the refusal does not repeat it.
    with_creds = auth_server.replace("http://", f"http://deploy:{secret}@")
    refused = subprocess.run(
        [*DAGOPS, "repos", "add", "leaky", with_creds],
        env={**dagops_env.env(), "AIRFLOW__DAGOPS__ALLOWED_PROTOCOLS": "http:https:ssh:git:file"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and "contains credentials" in refused.stderr
    outputs += [refused.stdout, refused.stderr]

    # The connection's token is offered to a server that rejects it: git fails, nothing leaks.
    add_repository("private", auth_server, conn_id="private_git", verify=False)
    outcome = sync_repository("private")
    assert outcome.status == "failed" and "authentication" in outcome.message.lower()
    outputs.append(outcome.message)
    cli = subprocess.run(
        [*DAGOPS, "-v", "sync", "private"],
        env={
            **dagops_env.env(),
            "AIRFLOW__DAGOPS__ALLOWED_PROTOCOLS": "http:https:ssh:git:file",
            "AIRFLOW_CONN_PRIVATE_GIT": os.environ["AIRFLOW_CONN_PRIVATE_GIT"],
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 1
    outputs += [cli.stdout, cli.stderr]
    show = subprocess.run(
        [*DAGOPS, "repos", "show", "private", "--json"],
        env=dagops_env.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    outputs += [show.stdout, show.stderr]

    haystacks = {
        "cli/service output": "\n".join(outputs),
        "captured logs": caplog.text,
        "state DB rows": _everything_in_the_db(),
    }
    for where, haystack in haystacks.items():
        assert secret not in haystack, f"the secret leaked into {where}"
    assert "authentication" in show.stdout.lower()
