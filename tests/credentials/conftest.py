"""Fixtures for credentials: a real sshd and a real smart-HTTP git server on 127.0.0.1 (one each per
session), repositories served by both, connections as AIRFLOW_CONN_* variables or rows of the session's
real Airflow metadata DB (prepared by `flask_app` of tests/helpers/web.py), and a search for secrets.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import airflow.settings  # noqa: F401  (see below)
import pytest

# Airflow reads AIRFLOW_HOME once, at its first import: import it now, while it is the session's home
# (tests/conftest.py), not a test's tmp home set by `dagops_env`; `flask_app` migrates that DB.
# Routes must be on the blueprint before `flask_app` builds the Flask app (plugin.py imports the module
# in production); the web fixtures are those of tests/helpers/web.py.
import airflow_dagops.api.credentials  # noqa: F401
from tests.helpers.repos import GIT_IDENTITY, dag_source
from tests.helpers.servers import GitHttpServer, KeyPair, SshGitServer, make_bare_repo, new_key_pair

TOKEN = "ghp_" + "t0kenOld" * 4  # noqa: S105 (test tokens, searched for in every output)
NEW_TOKEN = "ghp_" + "t0kenNew" * 4  # noqa: S105


@pytest.fixture
def state_db_url(tmp_path):
    """Credentials live in Airflow, not in the state DB: SQLite is enough here (tests/ covers both DBs)."""
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """A source repository with one commit on main, served bare at <root>/team.git."""
    source = tmp_path_factory.mktemp("source") / "repo"
    source.mkdir()
    env = {**GIT_IDENTITY, "PATH": "/usr/bin:/bin"}
    (source / "dags").mkdir()
    (source / "dags" / "hello.py").write_text(dag_source("hello"))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=source, env=env, check=True, capture_output=True)
    root = tmp_path_factory.mktemp("served")
    make_bare_repo(root, "team.git", source)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, check=True)
    return root, head.stdout.strip()


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory, served):
    server = SshGitServer(tmp_path_factory.mktemp("sshd"), new_key_pair("test-host")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http_server(served):
    server = GitHttpServer(served[0]).start()
    yield server
    server.stop()


@dataclass
class Ssh:
    """The sshd of the session, seen by one test: its own user key and known_hosts files."""

    server: SshGitServer
    root: Path
    head: str
    user_key: KeyPair
    known_hosts: Path
    wrong_known_hosts: Path

    @property
    def url(self) -> str:
        return self.server.url(self.root / "team.git")

    def extra(self, key: KeyPair | None = None, **more) -> dict:
        """A GitHook extra with an inline key and strict host key checking against the right known_hosts."""
        return {
            "private_key": (key or self.user_key).private,
            "strict_host_key_checking": "yes",
            "known_hosts_file": str(self.known_hosts),
            **more,
        }


@pytest.fixture
def ssh(ssh_server, served, tmp_path) -> Ssh:
    ssh_server.revoke_all()
    user_key = new_key_pair("team-deploy-key")
    ssh_server.authorize(user_key.public)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(ssh_server.known_hosts_line())
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(ssh_server.known_hosts_line(new_key_pair("impostor")))
    return Ssh(ssh_server, served[0], served[1], user_key, known_hosts, wrong)


@pytest.fixture
def http(http_server, served):
    http_server.tokens.clear()
    http_server.tokens.add(TOKEN)
    yield http_server
    http_server.tokens.clear()


@pytest.fixture(autouse=True)
def _credentials_env(monkeypatch, dagops_env):
    # Loopback http is allowed in these tests only; production defaults to https:ssh:git:file.
    monkeypatch.setenv("AIRFLOW__DAGOPS__ALLOWED_PROTOCOLS", "https:http:ssh:file")
    monkeypatch.setenv("AIRFLOW__DAGOPS__GIT_TIMEOUT", "20")
    # The service declares the process a server so GitHook sees the metadata DB; restore it after each test.
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")


@pytest.fixture
def env_conn(monkeypatch):
    """Factory: an env-var connection (AIRFLOW_CONN_<ID>) of type git; returns its id."""

    def make(conn_id: str | None = None, **fields) -> str:
        conn_id = conn_id or f"git_{uuid.uuid4().hex[:8]}"
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "git", **fields}))
        return conn_id

    return make


@pytest.fixture
def airflow_db(request):
    """The session's real Airflow metadata DB (migrated by `flask_app`); connections made here are removed."""
    request.getfixturevalue("flask_app")
    before = set(connection_ids())

    def add_connection(conn_id: str | None = None, *, extra: dict | None = None, **fields) -> str:
        from airflow.models.connection import Connection
        from airflow.utils.session import create_session

        conn_id = conn_id or f"git_{uuid.uuid4().hex[:8]}"
        with create_session() as session:
            session.add(Connection(conn_id=conn_id, conn_type="git", extra=json.dumps(extra or {}), **fields))
        return conn_id

    yield add_connection
    for conn_id in set(connection_ids()) - before:  # what the test and the rotations made
        delete_connection(conn_id)


def connection_ids() -> list[str]:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(session.scalars(select(Connection.conn_id).order_by(Connection.conn_id)))


def stored_connection(conn_id: str):
    """(password, extra dict, description) of a metadata-DB connection, or None."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
        return None if row is None else (row.password, row.extra_dejson, row.description)


def delete_connection(conn_id: str) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(delete(Connection).where(Connection.conn_id == conn_id))


def secret_fragments(*secrets: str) -> list[str]:
    """A secret and every line of it long enough to be recognisable (a key's base64 lines)."""
    fragments = []
    for secret in secrets:
        fragments.append(secret.strip())
        fragments.extend(
            line.strip() for line in secret.splitlines() if len(line.strip()) >= 16 and "-----" not in line
        )
    return [fragment for fragment in fragments if fragment]


def state_db_dump() -> str:
    """Every row of every table of the dagops state DB, as text."""
    from sqlalchemy import MetaData

    from airflow_dagops.store.db import read_connection

    with read_connection() as connection:
        metadata = MetaData()
        metadata.reflect(bind=connection)
        return "\n".join(
            f"{table.name}: {row!r}" for table in metadata.tables.values() for row in connection.execute(table.select())
        )


def assert_no_secret(texts: dict[str, str], secrets: list[str]) -> None:
    fragments = secret_fragments(*secrets)
    leaks = [(where, fragment[:12]) for where, text in texts.items() for fragment in fragments if fragment in text]
    assert leaks == [], f"secret text found in: {leaks}"
