"""Webhook tests run against the real /pluginsv2 Flask app of tests/helpers/web.py (real Airflow metadata DB, so
deliveries really create dagops_sync / dagops_validate runs), with secrets in env-var connections."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from airflow_dagops.api.webhooks import webhook_blueprint
from tests.webhooks import payloads

GLOBAL_SECRET = "whsec-global-9f8e7d6c5b4a3f2e1d0c"
REPO_SECRET = "whsec-repo-0a1b2c3d4e5f6a7b8c9d"
WEBHOOKS = "/dagops/api/v1/webhooks"


def env_connection(monkeypatch, conn_id: str, **fields) -> None:
    """An Airflow connection from an AIRFLOW_CONN_* variable, as any secrets backend would provide it."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "generic", **fields}))


@pytest.fixture(scope="session")
def webhook_app(flask_app):  # noqa: F811 - the re-exported fixture
    """The app with the webhook blueprint (registered here until plugin.py registers it)."""
    if "dagops_webhooks" not in flask_app.blueprints:
        flask_app.register_blueprint(webhook_blueprint)
    return flask_app


@dataclass
class Hooks:
    client: object

    def post(self, provider: str, body: bytes, headers: dict):
        return self.client.post(f"{WEBHOOKS}/{provider}", data=body, headers=headers)

    def deliver(
        self,
        provider: str,
        payload: dict,
        *,
        event: str | None = None,
        secret: str | None = GLOBAL_SECRET,
        delivery: str | None = None,
        extra: dict | None = None,
    ):
        """Send `payload` as `provider` would: event and delivery headers, signed with `secret` (None: unsigned)."""
        body = payloads.encode(payload)
        event = event or payloads.PUSH_EVENT[provider]
        headers = {**payloads.headers(provider, event, body, secret=secret, delivery=delivery), **(extra or {})}
        return self.post(provider, body, headers)


@pytest.fixture
def hooks(webhook_app, dagops_env, monkeypatch) -> Hooks:
    """A client for the webhook endpoint, with the global secret in the `dagops_webhook` connection."""
    env_connection(monkeypatch, "dagops_webhook", password=GLOBAL_SECRET)
    return Hooks(webhook_app.test_client())


@pytest.fixture
def api(webhook_app, web):  # noqa: F811 - the re-exported fixture
    """The REST API client of tests/helpers/web.py (JWT auth), on the app with the webhook blueprint."""
    return web
