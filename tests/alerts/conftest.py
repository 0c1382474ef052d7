"""Alerts go to a local fake endpoint (tests/helpers/servers.py `start_fake_api`, which records every POST): the only
thing faked is what would leave the machine."""

from __future__ import annotations

import json

import pytest

import airflow_dagops.api.alerts  # noqa: F401  (routes on the blueprint before the app is built)
from tests.helpers.servers import start_fake_api

WEBHOOK_CONN = "ops_webhook"


def env_connection(monkeypatch, conn_id: str, **fields) -> None:
    """An Airflow connection from an AIRFLOW_CONN_* variable, as any secrets backend would provide it."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "http", **fields}))


@pytest.fixture
def receiver(monkeypatch):
    """A fake notification endpoint, reached through the Airflow HTTP connection `ops_webhook`."""
    fake = start_fake_api()
    fake.status = 200
    env_connection(monkeypatch, WEBHOOK_CONN, host=f"{fake.url}/hooks/ops", password="hook-token-1234")
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def alerts_received(fake) -> list[dict]:
    """The alerts the endpoint received, as the `dagops` part of each body."""
    return [call.body["dagops"] for call in fake.calls if call.path == "/hooks/ops"]


WEBHOOK_ALERTS = {"notifiers": [{"webhook": {"conn_id": WEBHOOK_CONN}}]}
