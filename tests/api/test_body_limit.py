"""Bodies are size-limited before anything buffers them: the root ASGI middleware of api/body_limit.py.

Three levels: the middleware around a small ASGI app (httpx's ASGI transport: what it reads, what it never
calls); a real uvicorn on loopback serving a Flask app through Starlette's WSGI bridge exactly as Airflow's
api-server mounts /pluginsv2, with its memory sampled while a 50 MB body and a 300 MB chunked body are
refused; and (e2e) a real `airflow api-server` with the plugin installed (the worker's shared `real_airflow`).
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from airflow_dagops import settings
from airflow_dagops.api.blueprint import MAX_BODY
from airflow_dagops.api.body_limit import BodyLimitMiddleware, body_limit
from airflow_dagops.webhooks import service as webhook_service
from tests.helpers.servers import free_port, wait_for

MB = 1024 * 1024
API = "/pluginsv2/dagops/api/v1"


# -- the middleware around a small ASGI app ----------------------------------------------------------------------
class Recorder:
    """An ASGI app that reads the whole body (as Starlette's WSGI bridge does) and answers its size."""

    def __init__(self) -> None:
        self.calls = 0
        self.bytes_read = 0

    async def __call__(self, scope, receive, send) -> None:
        self.calls += 1
        more = True
        while more:
            message = await receive()
            self.bytes_read += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = json.dumps({"size": self.bytes_read}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


def _post(app, path: str, content, headers: dict | None = None, root_path: str = "") -> httpx.Response:
    async def go():
        transport = httpx.ASGITransport(app=app, root_path=root_path)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post(path, content=content, headers=headers or {})

    return asyncio.run(go())


def test_a_declared_oversized_body_is_413_in_the_envelope_and_the_app_is_never_called():
    inner = Recorder()
    app = BodyLimitMiddleware(inner, limit_for=lambda path: 1000)
    response = _post(app, f"{API}/repositories", b"x" * 1001)
    assert response.status_code == 413
    assert response.json() == {
        "error": {
            "code": "body_too_large",
            "message": "request bodies to this route are limited to 1000 bytes; nothing was read or done "
            "(see docs/api.md)",
            "details": {"limit_bytes": 1000},
        }
    }
    assert response.headers["connection"] == "close"
    assert inner.calls == 0


def test_a_streamed_body_is_cut_off_once_past_the_limit():
    inner = Recorder()
    app = BodyLimitMiddleware(inner, limit_for=lambda path: 64 * 1024)
    pulled = []

    async def chunks():  # no Content-Length: sent chunked
        for index in range(300 * 16):  # 300 MiB on offer
            pulled.append(index)
            yield b"x" * (64 * 1024)

    response = _post(app, f"{API}/webhooks/github", chunks())
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
    assert len(pulled) <= 3  # the body stopped being read just past 64 KiB
    assert inner.bytes_read <= 64 * 1024


def test_bodies_within_the_limit_and_other_paths_pass_untouched():
    inner = Recorder()
    app = BodyLimitMiddleware(inner, limit_for=lambda path: 1000)
    assert _post(app, f"{API}/repositories", b"x" * 1000).json() == {"size": 1000}
    inner.bytes_read = 0
    assert _post(app, "/api/v2/dags", b"x" * 5000).json() == {"size": 5000}  # not ours: never looked at
    inner.bytes_read = 0
    assert _post(app, "/pluginsv2/other", b"x" * 5000).status_code == 200


def test_the_path_is_judged_below_airflows_root_path():
    """With `[api] base_url` = https://host/airflow, Airflow's app has root_path /airflow."""
    seen = []
    app = BodyLimitMiddleware(Recorder(), limit_for=lambda path: seen.append(path) or 10)
    response = _post(app, f"/airflow{API}/repositories", b"x" * 11, root_path="/airflow")
    assert response.status_code == 413 and seen == ["/dagops/api/v1/repositories"]


def test_a_content_length_that_is_not_a_number_is_counted_instead():
    inner = Recorder()
    app = BodyLimitMiddleware(inner, limit_for=lambda path: 10)

    async def call():
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"x" * 11, "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "path": f"{API}/repositories", "headers": [(b"content-length", b"eleven")]}
        await app(scope, receive, send)
        return sent

    sent = asyncio.run(call())
    assert sent[0]["status"] == 413


def test_non_http_scopes_pass_through():
    calls = []

    async def inner(scope, receive, send):
        calls.append(scope["type"])

    app = BodyLimitMiddleware(inner, limit_for=lambda path: 0)
    for kind in ("lifespan", "websocket"):
        asyncio.run(app({"type": kind, "path": f"{API}/x"}, None, None))
    assert calls == ["lifespan", "websocket"]


def test_each_route_gets_the_largest_body_its_flask_check_accepts():
    assert body_limit("/dagops/api/v1/repositories") == MAX_BODY
    assert body_limit("/dagops/api/v1/webhooks/github") == webhook_service.MAX_BODY
    proposals = MAX_BODY + 2 * settings.get_int("proposal_max_total_size")  # api/proposals.py's read_body limit
    assert body_limit("/dagops/api/v1/repositories/team/proposals") == proposals
    assert body_limit("/dagops/") == MAX_BODY


def test_the_plugin_installs_the_middleware_at_the_root_of_the_api_server():
    from airflow_dagops.plugin import DagOpsPlugin

    assert DagOpsPlugin.fastapi_root_middlewares == [{"name": "dagops_body_limit", "middleware": BodyLimitMiddleware}]


# -- a real uvicorn, the WSGI bridge Airflow uses, raw sockets, the server's memory ----------------------------------
@dataclass
class Upload:
    status: int | None
    body: bytes
    sent: int  # body bytes actually written to the socket
    seconds: float


def upload(port: int, path: str, *, total: int, chunked: bool, chunk: int = 256 * 1024, timeout: float = 60) -> Upload:
    """POST `total` bytes like a client that keeps sending until the server answers (then stops and reads)."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    piece = b"x" * chunk
    started = time.monotonic()
    sent = 0
    queued = 0
    pending = head.encode()
    response = b""
    writing = True
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setblocking(False)
        while time.monotonic() - started < timeout:
            readable, writable, _ = select.select([sock], [sock] if writing else [], [], 0.5)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                response += data
                if _complete(response):
                    break
                continue
            if writable:
                if not pending:
                    if queued < total:
                        size = min(chunk, total - queued)
                        pending = (b"%x\r\n" % size + piece[:size] + b"\r\n") if chunked else piece[:size]
                        queued += size
                    elif chunked:
                        pending, chunked = b"0\r\n\r\n", False
                    else:
                        writing = False
                        continue
                try:
                    written = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    writing = False
                    continue
                pending = pending[written:]
                sent += written
    seconds = time.monotonic() - started
    head_part, _, body = response.partition(b"\r\n\r\n")
    status = int(head_part.split(b" ", 2)[1]) if head_part.startswith(b"HTTP/") else None
    return Upload(status, body, max(0, sent - len(head)), seconds)


def _complete(response: bytes) -> bool:
    head, sep, body = response.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _grew(memory: RssSampler) -> str:
    return f"server RSS +{max(0, memory.growth) / MB:.1f} MB"


class RssSampler:
    """The largest resident set of a process tree while sampling (every 10 ms), from /proc/<pid>/status."""

    def __init__(self, pids) -> None:
        self.pids = pids  # a callable: the pids to sum
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except (FileNotFoundError, ProcessLookupError):
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.01)

    def __enter__(self) -> RssSampler:
        self.baseline = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


BRIDGE_SERVER = textwrap.dedent(
    """
    import sys

    import uvicorn
    from flask import Flask, jsonify, request
    from starlette.applications import Starlette
    from starlette.middleware.wsgi import WSGIMiddleware
    from starlette.routing import Mount

    from airflow_dagops.api.body_limit import BodyLimitMiddleware

    flask_app = Flask("bridge")


    @flask_app.post("/dagops/api/v1/repositories")
    @flask_app.post("/dagops/api/v1/webhooks/github")
    @flask_app.post("/elsewhere")
    def echo():
        return jsonify(size=len(request.get_data()))


    # As airflow/api_fastapi: Flask behind Starlette's WSGI bridge at /pluginsv2, our middleware at the root.
    app = BodyLimitMiddleware(Starlette(routes=[Mount("/pluginsv2", WSGIMiddleware(flask_app))]))
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http=sys.argv[2], log_level="warning")
    """
)


@pytest.fixture(params=["httptools", "h11"])
def bridge(request, tmp_path) -> Iterator[tuple[int, int]]:
    script = tmp_path / "bridge.py"
    script.write_text(BRIDGE_SERVER)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(
        [sys.executable, str(script), str(port), request.param], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: _listening(port) or process.poll() is not None, timeout=60, what="the bridge server")
        assert process.poll() is None, process.stderr.read()
        # Warm up: the first request imports dagops' route table (body_limit) and Flask's request machinery.
        assert upload(port, f"{API}/repositories", total=10, chunked=False).status == 200
        assert upload(port, "/pluginsv2/elsewhere", total=2 * MB, chunked=False).status == 200
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_a_50_mb_body_is_refused_from_its_content_length_without_growing_the_server(bridge):
    port, pid = bridge
    with RssSampler(lambda: [pid]) as memory:
        result = upload(port, f"{API}/repositories", total=50 * MB, chunked=False)
    print(f"\n50 MB: {result.sent / MB:.1f} MB sent, {result.status} in {result.seconds:.2f}s, {_grew(memory)}")
    assert result.status == 413, result
    assert json.loads(result.body)["error"]["code"] == "body_too_large"
    assert result.seconds < 5, result.seconds
    assert result.sent < 20 * MB  # the client was stopped long before the end: nobody read it
    assert memory.growth < 6 * MB, memory.growth


def test_a_300_mb_chunked_body_is_refused_while_it_streams_without_growing_the_server(bridge):
    port, pid = bridge
    with RssSampler(lambda: [pid]) as memory:
        result = upload(port, f"{API}/webhooks/github", total=300 * MB, chunked=True)
    print(f"\n300 MB: {result.sent / MB:.1f} MB sent, {result.status} in {result.seconds:.2f}s, {_grew(memory)}")
    assert result.status == 413, result
    assert json.loads(result.body)["error"]["message"].startswith("request bodies to this route are limited to 1 MiB")
    assert result.seconds < 5, result.seconds
    assert result.sent < 20 * MB
    assert memory.growth < 6 * MB, memory.growth
    # The server is fine afterwards, and bodies within the limit still reach Flask whole. (With Content-Length:
    # Starlette's WSGI bridge gives Flask no length for a chunked body, which Flask then reads as empty.)
    assert json.loads(upload(port, f"{API}/webhooks/github", total=MB, chunked=False).body) == {"size": MB}


def test_the_memory_probe_sees_a_body_that_is_buffered(bridge):
    """Control: outside /pluginsv2/dagops/ nothing is limited, and the bridge's buffering shows in the samples."""
    port, pid = bridge
    with RssSampler(lambda: [pid]) as memory:
        result = upload(port, "/pluginsv2/elsewhere", total=40 * MB, chunked=False)
    assert result.status == 200 and json.loads(result.body) == {"size": 40 * MB}
    assert memory.growth > 30 * MB, memory.growth


# -- a real api-server with the plugin ----------------------------------------------------------------------------
@pytest.mark.e2e
def test_the_api_server_refuses_huge_bodies_to_dagops_before_buffering_them(real_airflow):
    import psutil

    airflow = real_airflow  # the worker's shared instance: one api-server worker, `processes[0]`
    try:
        root = psutil.Process(airflow.processes[0].pid)

        def tree() -> list[int]:
            return [root.pid] + [child.pid for child in root.children(recursive=True)]

        plugins = airflow.api("GET", "plugins").json()["plugins"]
        dagops = next(plugin for plugin in plugins if plugin["name"] == "dagops")
        assert [m["name"] for m in dagops["fastapi_root_middlewares"]] == ["dagops_body_limit"]
        # Warm up the /pluginsv2 app (Flask, the dagops routes) with a small, refused-later kind of request.
        headers = {"Authorization": f"Bearer {airflow.token}"}
        warm = httpx.post(f"{airflow.url}{API}/repositories", json={}, headers=headers, timeout=30)
        assert warm.status_code == 422, warm.text
        cases = [
            (f"{API}/repositories", 50 * MB, False),
            (f"{API}/webhooks/github", 300 * MB, True),
            (f"{API}/repositories/team/proposals", 300 * MB, True),
        ]
        for path, total, chunked in cases:
            with RssSampler(tree) as memory:
                result = upload(airflow.port, path, total=total, chunked=chunked)
            print(
                f"\n{path}: {total // MB} MB offered, {result.sent / MB:.1f} MB sent, answered {result.status} in "
                f"{result.seconds:.2f}s; api-server RSS +{memory.growth / MB:.1f} MB"
            )
            assert result.status == 413, (path, result)
            assert json.loads(result.body)["error"]["code"] == "body_too_large"
            assert result.seconds < 10, (path, result.seconds)
            assert result.sent < 40 * MB, (path, result.sent)
            assert memory.growth < 8 * MB, (path, memory.growth)
        # The api-server still answers, and Flask's checks still run behind the middleware.
        response = httpx.get(f"{airflow.url}{API}/health", timeout=10)
        assert response.status_code == 200
    except BaseException:
        print(airflow.logs())
        raise
