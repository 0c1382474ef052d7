"""The built-in notifier of the `webhook` shorthand: an Airflow `BaseNotifier` that POSTs the alert as JSON to the
URL of an Airflow connection. Slack incoming webhooks, Mattermost, Rocket.Chat, Microsoft Teams workflows and
generic receivers read its `text`; the rest of the body is the alert itself (`dagops`).

The URL is the connection's host when that is a full `https://...` URL (a Slack webhook URL holds its secret in
its path: keep it in the connection, never in dagops.yaml), else `<schema or https>://<host>[:<port>]` followed by
the `endpoint` of the connection's extra. A password, when set, goes in `Authorization: Bearer <password>`. No
redirects are followed (they would carry the token elsewhere), the time is bounded, and neither the URL nor the
token is ever logged or stored: errors name the connection and the host only.

Importing this module imports Airflow (the Task SDK's BaseNotifier): alerts/send.py imports it only to send.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from airflow.sdk.bases.notifier import BaseNotifier

from airflow_dagops.airflow.connections import get_connection

TIMEOUT = (5, 10)  # seconds to connect, to read: a slow receiver must not hold a sync


class WebhookError(Exception):
    """A webhook that could not be delivered; the message names the connection and host, never the URL's path."""


class WebhookNotifier(BaseNotifier):
    """POST `{"text": ..., "dagops": {...}}` to the URL of Airflow connection `conn_id`."""

    template_fields = ("text",)

    def __init__(self, *, conn_id: str, text: str = "{{ dagops.message }}", **kwargs: Any):
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.text = text

    def notify(self, context: Any) -> None:
        import requests

        url, headers = self._target()
        body = {"text": self.text, "dagops": dict(context.get("dagops") or {})}
        host = urlsplit(url).hostname or "?"
        try:
            response = requests.post(url, json=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as err:
            raise WebhookError(f"webhook {self.conn_id!r}: cannot reach {host}: {type(err).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise WebhookError(f"webhook {self.conn_id!r}: {host} answered {response.status_code}")

    def _target(self) -> tuple[str, dict[str, str]]:
        connection = get_connection(self.conn_id)
        host = (connection.host or "").strip()
        if host.startswith(("https://", "http://")):
            url = host
        else:
            if not host:
                raise WebhookError(f"webhook {self.conn_id!r}: the connection has no host (its URL)")
            scheme = (connection.schema or "https").strip() or "https"
            port = f":{connection.port}" if connection.port else ""
            endpoint = str((connection.extra_dejson or {}).get("endpoint") or "")
            if endpoint and not endpoint.startswith("/"):
                endpoint = "/" + endpoint
            url = f"{scheme}://{host}{port}{endpoint}"
        if urlsplit(url).scheme not in ("http", "https"):
            raise WebhookError(f"webhook {self.conn_id!r}: only http and https URLs are posted to")
        headers = {"Content-Type": "application/json"}
        if connection.password:
            headers["Authorization"] = f"Bearer {connection.password}"
        return url, headers
