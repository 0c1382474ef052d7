"""Fixtures for health and metrics: a real smart-HTTP git server on 127.0.0.1 whose tokens a test can revoke (a
remote that starts refusing credentials), with its connection as an AIRFLOW_CONN_* variable.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.repos import GIT_IDENTITY, dag_source
from tests.helpers.servers import GitHttpServer, make_bare_repo

TOKEN = "ghp_" + "h3althT0ken" * 3  # noqa: S105 (a test token)
CONN_ID = "health_git"


@dataclass
class HttpRemote:
    server: GitHttpServer
    root: Path
    source: Path

    @property
    def url(self) -> str:
        return self.server.url("team.git")

    def refuse_credentials(self) -> None:
        self.server.tokens.clear()

    def accept_credentials(self) -> None:
        self.server.tokens.add(TOKEN)


@pytest.fixture
def http_remote(tmp_path, monkeypatch, dagops_env) -> HttpRemote:
    """A repository served over HTTP Basic auth that accepts TOKEN, and a connection `health_git` holding it."""
    source = tmp_path / "source"
    (source / "dags").mkdir(parents=True)
    (source / "dags" / "hello.py").write_text(dag_source("hello"))
    env = {**GIT_IDENTITY, "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=source, env=env, check=True, capture_output=True)
    root = tmp_path / "served"
    root.mkdir()
    make_bare_repo(root, "team.git", source)
    server = GitHttpServer(root, tokens={TOKEN}).start()
    monkeypatch.setenv("AIRFLOW__DAGOPS__ALLOWED_PROTOCOLS", "https:http:ssh:file")
    monkeypatch.setenv("AIRFLOW__DAGOPS__GIT_TIMEOUT", "20")
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({"conn_type": "git", "login": "bot", "password": TOKEN})
    )
    yield HttpRemote(server, root, source)
    server.stop()
