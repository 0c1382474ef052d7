"""dagops' metrics reach Airflow's own StatsD backend: a UDP socket bound here is the StatsD server, `[metrics]`
points Airflow at it, and the work is done by the real faces (`dagops sync` in a subprocess, as an operator or
CI runs it; the webhook endpoint in the Flask app).

StatsD over loopback UDP: every datagram a subprocess sent is in the socket's buffer when the subprocess has
exited, so the test reads what is there; nothing waits for time to pass.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from airflow_dagops import metrics
from airflow_dagops.api.webhooks import webhook_blueprint
from airflow_dagops.repositories.registry import add_repository
from tests.helpers.airflow import BIN
from tests.helpers.repos import dag_source

# A DAG file that never finishes loading: the sandbox stops it at the import timeout.
SPINS = "from airflow.sdk import dag\n\nwhile True:\n    pass\n"


@pytest.fixture
def statsd_server():
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.setblocking(False)
    yield server
    server.close()


def received(server: socket.socket) -> list[str]:
    """Every StatsD line in the socket's buffer (a datagram may hold several)."""
    lines = []
    while True:
        try:
            data = server.recv(65536)
        except BlockingIOError:
            return lines
        lines.extend(data.decode().splitlines())


def _statsd_env(dagops_env, server: socket.socket) -> dict[str, str]:
    return {
        **dagops_env.env(),
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(server.getsockname()[1]),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        # The structure step imports DAG files in the sandbox: the one that spins is stopped after 2 s.
        "AIRFLOW__DAGOPS__VALIDATION_SKIP": "security,compat,imports,policy",
        "AIRFLOW__DAGOPS__IMPORT_TIMEOUT": "2",
    }


def _names(lines: list[str]) -> dict[str, list[str]]:
    """StatsD name -> the values and types sent (`1|c`, `3.2|ms`, `0|g`)."""
    found: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        found.setdefault(name, []).append(value)
    return found


def test_a_sync_sends_its_metrics_through_airflows_statsd(git_remote, dagops_env, statsd_server):
    remote = git_remote({"dags/hello.py": dag_source("hello")})
    add_repository("team", str(remote.path))
    env = _statsd_env(dagops_env, statsd_server)

    def dagops(*args: str) -> None:
        result = subprocess.run([str(BIN / "dagops"), *args], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode in (0, 1), result.stdout + result.stderr

    dagops("sync", "team")
    remote.commit("spins", {"dags/spins.py": SPINS})
    dagops("sync", "team")
    gauges = "from airflow_dagops.health import observe; observe.publish_gauges()"
    result = subprocess.run([sys.executable, "-c", gauges], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    sent = _names(received(statsd_server))

    # Each point under its own name (tags, where the backend takes them) and under a name carrying its labels.
    assert sent["airflow.dagops.sync.runs"] == ["1|c", "1|c"]
    assert sent["airflow.dagops.sync.runs.team.success.none"] == ["1|c"]
    assert sent["airflow.dagops.sync.runs.team.failed.validation"] == ["1|c"]
    assert all(value.endswith("|ms") for value in sent["airflow.dagops.sync.duration.team.success"])
    assert sent["airflow.dagops.release.commit_to_live.team"][0].endswith("|ms")
    assert sent["airflow.dagops.validation.findings.team.error"] == ["1|c"]
    assert sent["airflow.dagops.sandbox.kills.team.timeout"] == ["1|c"]
    assert sent["airflow.dagops.sync.pending"] == ["0|g"]
    assert sent["airflow.dagops.repository.health.team.ok"] == ["1|g"]
    assert sent["airflow.dagops.repository.health.team.failing"] == ["0|g"]
    assert sent["airflow.dagops.repository.consecutive_failures.team"] == ["1|g"]
    assert float(sent["airflow.dagops.release.live_age.team"][0].split("|")[0]) >= 0
    # Every name is one of the documented metrics (METRICS): nothing unbounded such as a commit sha.
    documented = {f"airflow.dagops.{name}" for name in metrics.METRICS}
    ours = [name for name in sent if name.startswith("airflow.dagops.")]
    assert all(any(name == d or name.startswith(d + ".") for d in documented) for name in ours), sorted(ours)
    assert not any(remote.head()[:7] in name for name in sent)


@pytest.fixture
def stats_to(statsd_server, monkeypatch):
    """Airflow's Stats of this process (both kinds) sending to the test's StatsD server, restored afterwards."""
    import importlib

    from statsd import StatsClient

    def factory():
        from airflow._shared.observability.metrics.statsd_logger import get_statsd_logger

        port = statsd_server.getsockname()[1]
        return get_statsd_logger(stats_class=StatsClient, host="127.0.0.1", port=port, prefix="airflow")

    for name in metrics.AIRFLOW_STATS_MODULES:
        module = importlib.import_module(name)
        monkeypatch.setattr(module, "_factory", factory)
        monkeypatch.setattr(module, "_backend", None)
    metrics.reset()
    yield statsd_server
    metrics.reset()


def test_webhook_deliveries_are_counted_by_the_answer(flask_app, dagops_env, stats_to):
    if "dagops_webhooks" not in flask_app.blueprints:
        flask_app.register_blueprint(webhook_blueprint)
    client = flask_app.test_client()
    unsigned = client.post("/dagops/api/v1/webhooks/github", data=b"{}", headers={"X-GitHub-Event": "push"})
    assert unsigned.status_code == 401
    assert client.post("/dagops/api/v1/webhooks/nowhere", data=b"{}").status_code == 404
    sent = _names(received(stats_to))
    assert sent["airflow.dagops.webhook.deliveries.github.401"] == ["1|c"]
    assert sent["airflow.dagops.webhook.deliveries.unknown.404"] == ["1|c"]
    assert sent["airflow.dagops.webhook.deliveries"] == ["1|c", "1|c"]
