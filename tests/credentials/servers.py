"""Real authenticated git transports on 127.0.0.1, started by the tests.

- `SshGitServer`: Debian's OpenSSH sshd in the foreground with its own config in a tmp dir (a host key
  made per test session, a free port, public-key authentication only, an authorized_keys file the test
  edits like a Git host's "deploy keys" page). git's `git-upload-pack` runs over it for real.
- `GitHttpServer`: git's smart-HTTP CGI (`git http-backend`) behind a small WSGI server that demands
  HTTP Basic auth; the set of accepted tokens is the test's "token settings page".
"""

from __future__ import annotations

import base64
import getpass
import hmac
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
GIT_HTTP_BACKEND = (
    Path(subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout.strip())
    / "git-http-backend"
)


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


def make_bare_repo(root: Path, name: str, source: Path) -> Path:
    """A bare clone of `source` (a test git repository) under `root`, as a hosting server keeps it."""
    bare = root / name
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True, capture_output=True)
    return bare


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
            [SSHD, "-D", "-e", "-f", str(config)], stdout=self._log, stderr=subprocess.STDOUT
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
        result = subprocess.run([str(GIT_HTTP_BACKEND)], input=body, env=cgi_env, capture_output=True, timeout=30)
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
