"""Fixtures of the proposal tests: a bare repository as the remote (file://), a published release of it, and an
Airflow connection with a token. The fake GitHub/GitLab/Gitea API that records the pull request calls is the
`fake_host` fixture of tests/helpers/servers.py."""

from __future__ import annotations

import json
import subprocess

import pytest

import airflow_dagops.api.proposals  # noqa: F401  (routes on the blueprint before the app is built)
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import Bare, dag_source

TOKEN = "ghp_" + "Pr0posalT0ken" * 3  # noqa: S105 - a fake token, searched for in every output


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
