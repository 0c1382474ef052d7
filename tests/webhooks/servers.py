"""Local stand-ins for what lives on a Git host: a fake commit-status API that records every call, and a
read-only git server (git's "dumb" HTTP protocol: static files after `git update-server-info`)."""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Call:
    method: str
    path: str
    headers: dict
    body: dict


@dataclass
class FakeProviderApi:
    """Answers every POST with `status` (201 by default) and records it."""

    server: ThreadingHTTPServer
    calls: list[Call] = field(default_factory=list)
    status: int = 201

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def start_fake_api() -> FakeProviderApi:
    fake: FakeProviderApi

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            fake.calls.append(Call("POST", self.path, dict(self.headers), json.loads(raw or b"{}")))
            answer = json.dumps({"id": len(fake.calls)} if fake.status < 300 else {"message": "Bad credentials"})
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer.encode())

        def log_message(self, *args):  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake = FakeProviderApi(server)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return fake


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
