"""Loopback servers the tests start: real authenticated git transports, read-only git servers, fake Git host
APIs, and a TCP proxy that misbehaves on purpose.

- `SshGitServer`: Debian's OpenSSH sshd in the foreground with its own config in a tmp dir (a host key
  made per test session, a free port, public-key authentication only, an authorized_keys file the test
  edits like a Git host's "deploy keys" page). git's `git-upload-pack` runs over it for real.
- `GitHttpServer`: git's smart-HTTP CGI (`git http-backend`) behind a small WSGI server that demands
  HTTP Basic auth; the set of accepted tokens is the test's "token settings page".
- `DumbGitServer` (`start_git_server`): git's "dumb" HTTP protocol, static files after `git update-server-info`.
- `git_daemon` fixture: `git daemon` serving a tmp folder; `flaky_proxy` fixture: a TCP proxy in front of it.
- `FakeProviderApi` (`start_fake_api`): a commit-status API that records every call.
- `FakeHost` (`fake_host` fixture): answers pull/merge request creation like GitHub, GitLab and Gitea.
"""

from __future__ import annotations

import base64
import functools
import getpass
import hmac
import os
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.helpers.git_hosts import serve_json
from tests.helpers.programs import skip_unless_program
from tests.helpers.repos import make_bare_repo  # noqa: F401 - re-exported: servers serve bare repositories

# Each server below skips its tests, saying what to install, where its program is missing (tests/helpers/programs.py).


@functools.cache
def _git_http_backend() -> Path:
    exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout.strip()
    return Path(exec_path) / "git-http-backend"


# -- ports and waiting ------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def wait_for(condition: Callable[[], object], *, timeout: float, interval: float = 0.5, what: str = "condition"):
    """Poll `condition` until it returns something true (returned), or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before listening on {port}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


# -- sshd and smart HTTP ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyPair:
    private: str  # OpenSSH private key (PEM-like text)
    public: str  # "ssh-ed25519 AAAA..."


def new_key_pair(comment: str = "test") -> KeyPair:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return KeyPair(private, f"{public.decode()} {comment}")


@dataclass
class SshGitServer:
    """sshd on 127.0.0.1:<port>; logins as the current user with the keys in `authorized_keys`."""

    workdir: Path
    host_key: KeyPair
    port: int = 0
    user: str = field(default_factory=getpass.getuser)
    process: subprocess.Popen | None = None

    @property
    def authorized_keys(self) -> Path:
        return self.workdir / "authorized_keys"

    def url(self, repo_path: Path | str) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{repo_path}"

    def known_hosts_line(self, key: KeyPair | None = None) -> str:
        """What `ssh-keyscan -p PORT 127.0.0.1` would print (for another key: a mismatching entry)."""
        key_type, blob = (key or self.host_key).public.split()[:2]
        return f"[127.0.0.1]:{self.port} {key_type} {blob}\n"

    def authorize(self, public_key: str) -> None:
        """What a person does on the Git host's "Deploy keys" page."""
        with self.authorized_keys.open("a") as handle:
            handle.write(public_key.strip() + "\n")

    def revoke_all(self) -> None:
        self.authorized_keys.write_text("")

    def start(self) -> SshGitServer:
        sshd = skip_unless_program("sshd", "ssh")  # git runs `ssh` to reach it
        self.workdir.mkdir(parents=True, exist_ok=True)
        host_key_file = self.workdir / "ssh_host_ed25519_key"
        host_key_file.write_text(self.host_key.private)
        host_key_file.chmod(0o600)
        self.authorized_keys.touch()
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        self.port = free_port()
        config = self.workdir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key_file}",
                    f"PidFile {self.workdir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.authorized_keys}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    "PrintMotd no",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        self._log = (self.workdir / "sshd.log").open("wb")
        self.process = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)], stdout=self._log, stderr=subprocess.STDOUT
        )
        wait_for_port(self.port, self.process)
        return self

    def log_text(self) -> str:
        return (self.workdir / "sshd.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # access logs would only clutter the test output
        pass


@dataclass
class GitHttpServer:
    """`git http-backend` over HTTP Basic auth: any user name, a password from `tokens`."""

    project_root: Path
    tokens: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status): no headers

    def url(self, repo_name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{repo_name}"

    def start(self) -> GitHttpServer:
        skip_unless_program("git-http-backend")
        self._server = make_server(
            "127.0.0.1", 0, self._app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _authorized_user(self, environ) -> str | None:
        scheme, _, value = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        if any(hmac.compare_digest(password.encode(), token.encode()) for token in self.tokens):
            return user or "git"
        return None

    def _app(self, environ, start_response):
        user = self._authorized_user(environ)
        if user is None:
            self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), 401))
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Length", "0")])
            return [b""]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        # The CGI environment of git-http-backend(1).
        cgi_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user,
            "REMOTE_ADDR": environ.get("REMOTE_ADDR", "127.0.0.1"),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "GIT_PROTOCOL": environ.get("HTTP_GIT_PROTOCOL", ""),
            "HTTP_CONTENT_ENCODING": environ.get("HTTP_CONTENT_ENCODING", ""),
        }
        backend = str(_git_http_backend())
        result = subprocess.run([backend], input=body, env=cgi_env, capture_output=True, timeout=30)
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = result.stdout.partition(b"\n\n")
        status, headers = "200 OK", []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name.strip(), value.strip()))
        self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), int(status.split()[0])))
        start_response(status, [*headers, ("Content-Length", str(len(payload)))])
        return [payload]


# -- read-only git servers ---------------------------------------------------------------------------------------
class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@dataclass
class DumbGitServer:
    """Serves bare repositories under `root` at http://127.0.0.1:<port>/<path>."""

    root: Path
    server: ThreadingHTTPServer

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{path}"

    def publish(self, work_tree: Path, path: str, *refspecs: str) -> None:
        """Push refs of a work tree to the served bare repository `path`, and refresh what the server lists."""
        bare = self.root / path
        if not bare.exists():
            subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
        subprocess.run(["git", "-C", str(work_tree), "push", "-q", "--force", str(bare), *refspecs], check=True)
        subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)


def start_git_server(root: Path) -> DumbGitServer:
    root.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(root)))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return DumbGitServer(root, server)


# -- `git daemon` and a misbehaving proxy -----------------------------------------------------------------------
@pytest.fixture
def git_daemon(tmp_path):
    """`git daemon` on loopback serving every repository under its base path; yields (base, port)."""
    skip_unless_program("git-daemon")
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
        wait_for(lambda: accepts(port), timeout=15, interval=0.01, what="git daemon")
        yield base, port
    finally:
        process.terminate()
        process.wait(10)


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


# -- fake Git host APIs ------------------------------------------------------------------------------------------
@dataclass
class Call:
    method: str
    path: str
    headers: dict
    body: dict


@dataclass
class _PostRecorder:
    """A Git host API that records every POST and answers it with `status`, nothing more: no tokens, no state (for
    those, tests/helpers/git_hosts.py's `FakeGitHost`; its `serve_json` serves both). What a call is recorded as
    and what it answers is the subclass's."""

    calls: list = field(default_factory=list)
    status: int = 201
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self.server = serve_json(self._handle, methods=("POST",))

    def _handle(self, method: str, path: str, headers: dict, body) -> tuple[int, dict, dict]:
        self.record(path, headers, {} if body is None else body)
        return self.status, self.answer(path), {}

    def record(self, path: str, headers: dict, body) -> None:
        raise NotImplementedError

    def answer(self, path: str) -> dict:
        raise NotImplementedError


class FakeProviderApi(_PostRecorder):
    """A commit-status API (and an alert receiver): every POST recorded as a `Call`, answered with its number."""

    calls: list[Call]

    def record(self, path: str, headers: dict, body) -> None:
        self.calls.append(Call("POST", path, headers, body))

    def answer(self, path: str) -> dict:
        return {"id": len(self.calls)} if self.status < 300 else {"message": "Bad credentials"}


def start_fake_api() -> FakeProviderApi:
    fake = FakeProviderApi()
    fake.start()
    return fake


class FakeHost(_PostRecorder):
    """Answers POST .../pulls (GitHub, Gitea) and .../merge_requests (GitLab) with 201 and a link."""

    calls: list[dict]

    def record(self, path: str, headers: dict, body) -> None:
        self.calls.append({"path": path, "headers": headers, "body": body})

    def answer(self, path: str) -> dict:
        number = len(self.calls)
        if self.status >= 300:
            return {"message": "Validation Failed"}
        if "merge_requests" in path:
            return {"iid": number, "web_url": f"https://gitlab.example.com/mr/{number}"}
        return {"number": number, "html_url": f"https://git.example.com/pull/{number}"}


@pytest.fixture
def fake_host():
    """A fake GitHub/GitLab/Gitea API (see `FakeHost`), one per test."""
    fake = FakeHost()
    fake.start()
    yield fake
    assert fake.server is not None
    fake.server.shutdown()
    fake.server.server_close()
