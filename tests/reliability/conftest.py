"""Shared pieces of the fault tests: what must hold after any failure, a git daemon, and a TCP proxy
in front of it that can stall or drop connections (loopback only)."""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
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
from tests.webhooks.conftest import flask_app, hooks, webhook_app  # noqa: F401 - the webhook fixtures

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- git daemon and a misbehaving proxy ---------------------------------------------------------------------
@pytest.fixture
def git_daemon(tmp_path):
    """`git daemon` on loopback serving every repository under its base path; yields (base, port)."""
    base = tmp_path / "daemon"
    base.mkdir()
    port = free_port()
    process = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
            f"--port={port}",
            f"--base-path={base}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: _accepts(port), timeout=15), "git daemon did not start"
        yield base, port
    finally:
        process.terminate()
        process.wait(10)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


FORWARD, STALL, RESET = "forward", "stall", "reset"


class FlakyProxy:
    """A TCP proxy whose `plan(n)` says what to do with the n-th connection (1-based): forward it,
    stall it (accept, read, never answer), or reset it (RST right away)."""

    def __init__(self, upstream_port: int, plan: Callable[[int], str]):
        self.upstream_port = upstream_port
        self.plan = plan
        self.connections: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._open: list[socket.socket] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self._open.append(client)
            mode = self.plan(len(self.connections) + 1)
            self.connections.append(mode)
            if mode == RESET:
                # SO_LINGER 0: close() sends RST, the way a crashing load balancer drops a connection.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
            elif mode == FORWARD:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
                self._open.append(upstream)
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pump, args=(source, sink), daemon=True).start()
            # STALL: keep the socket open and never answer; the client's timeout must end it.

    def close(self) -> None:
        self._closed.set()
        self._server.close()
        for sock in self._open:
            try:
                sock.close()
            except OSError:
                pass


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def flaky_proxy():
    proxies: list[FlakyProxy] = []

    def make(upstream_port: int, plan: Callable[[int], str]) -> FlakyProxy:
        proxies.append(FlakyProxy(upstream_port, plan))
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.close()
