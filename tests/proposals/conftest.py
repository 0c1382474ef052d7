"""Fixtures of the proposal tests: a bare repository as the remote (file://), a published release of it, an Airflow
connection with a token, and a fake GitHub/GitLab/Gitea API that records the pull request calls."""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import airflow_dagops.api.proposals  # noqa: F401  (routes on the blueprint before the app is built)
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.conftest import dag_source
from tests.web.conftest import flask_app, web  # noqa: F401  (the REST face runs through tests/web's fixtures)

TOKEN = "ghp_" + "Pr0posalT0ken" * 3  # noqa: S105 - a fake token, searched for in every output


@dataclass
class FakeHost:
    """Answers POST .../pulls (GitHub, Gitea) and .../merge_requests (GitLab) with 201 and a link."""

    server: ThreadingHTTPServer
    calls: list[dict] = field(default_factory=list)
    status: int = 201

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def fake_host():
    fake: FakeHost

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            fake.calls.append({"path": self.path, "headers": dict(self.headers), "body": body})
            number = len(fake.calls)
            answer = {"number": number, "html_url": f"https://git.example.com/pull/{number}"}
            if "merge_requests" in self.path:
                answer = {"iid": number, "web_url": f"https://gitlab.example.com/mr/{number}"}
            if fake.status >= 300:
                answer = {"message": "Validation Failed"}
            raw = json.dumps(answer).encode()
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake = FakeHost(server)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield fake
    server.shutdown()
    server.server_close()


@dataclass
class Bare:
    path: Path

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.path), *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    def branches(self) -> list[str]:
        return self.git("for-each-ref", "--format=%(refname)", "refs/heads").splitlines()


def connection(monkeypatch, conn_id: str, **extra) -> str:
    """An Airflow connection from an AIRFLOW_CONN_* variable: type git, the token as password."""
    fields = {"conn_type": "git", "login": "bot", "password": TOKEN, "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    return conn_id


@pytest.fixture
def bare_remote(git_remote, tmp_path):
    """A bare repository (one commit on main: dags/hello.py) to propose to."""
    source = git_remote()
    bare = tmp_path / "team.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(source.path), str(bare)], check=True)
    return Bare(bare)


@pytest.fixture
def published(dagops_env, bare_remote, fake_host, monkeypatch):
    """Repository `team` on the bare remote, published, with a GitHub connection pointing at the fake host."""
    conn_id = connection(monkeypatch, "team_git", provider="github", api_url=fake_host.url)
    add_repository("team", bare_remote.url, conn_id=conn_id)
    outcome = sync_repository("team")
    assert outcome.status == "published", outcome.message
    return bare_remote


GOOD_DAG = dag_source("proposed")
BROKEN_DAG = "from airflow.sdk import dag\n\ndef broken(:\n"
