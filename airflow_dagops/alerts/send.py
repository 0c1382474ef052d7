"""Sending one alert through a repository's notifiers: each an Airflow `BaseNotifier` built from its spec (the
`webhook` shorthand is alerts/notifiers.py) and called as Airflow calls a notifier, with a context. The context has
no DAG or task: it has `dagops`, the alert (event, repository, title, message, details), which templated fields
read (`{{ dagops.title }}`, `{{ dagops.message }}`). A notifier's message fields that the spec leaves out are
filled in: a subject or title gets the title, a text, body, message or HTML content gets the message (so
`SmtpNotifier`, `SlackNotifier` and `AppriseNotifier` need no template to say something useful).

Sending never raises: a notifier that fails is logged and its error (redacted) is returned, so the caller keeps
it in the alert state; the other notifiers are still called.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from typing import Any

from airflow_dagops.alerts.rules import WEBHOOK_NOTIFIER, notifier_class, wants
from airflow_dagops.redaction import redact_text
from airflow_dagops.statuses import AlertEvent

log = logging.getLogger(__name__)

_TITLE_FIELDS = ("subject", "title")
_MESSAGE_FIELDS = ("text", "body", "message", "html_content")


@dataclass(frozen=True)
class Alert:
    event: AlertEvent
    repository: str
    title: str  # one line
    message: str  # a few lines a person reads
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "event": self.event.value,
            "repository": self.repository,
            "title": self.title,
            "message": self.message,
            "details": self.details,
        }


def send(rules: dict | None, alert: Alert) -> list[str]:
    """Call every notifier of `rules` that hears of the alert's event; the errors of those that failed."""
    errors = []
    for spec in wants(rules, alert.event):
        name = _name(spec)
        try:
            notifier = build(spec)
            notifier({"dagops": alert.to_dict()})
            log.info("alert %s of %s sent through %s", alert.event.value, alert.repository, name)
        except Exception as err:  # one broken notifier must not silence the others, nor fail a sync
            error = redact_text(f"{name}: {type(err).__name__}: {err}")[:500]
            log.warning("alert %s of %s not sent: %s", alert.event.value, alert.repository, error)
            errors.append(error)
    return errors


def build(spec: dict) -> Any:
    """The notifier object of one spec (checked again: the class may have changed since it was stored)."""
    if "webhook" in spec:
        cls = notifier_class(WEBHOOK_NOTIFIER)
        return cls(conn_id=spec["webhook"]["conn_id"])
    cls = notifier_class(spec["notifier"])
    kwargs = dict(spec.get("kwargs") or {})
    accepted = _parameters(cls)
    fields = set(getattr(cls, "template_fields", ()))
    for name in _TITLE_FIELDS:
        if name in fields and name in accepted and kwargs.get(name) is None:
            kwargs[name] = "{{ dagops.title }}"
    for name in _MESSAGE_FIELDS:
        if name in fields and name in accepted and kwargs.get(name) is None:
            kwargs[name] = "{{ dagops.message | e }}" if name == "html_content" else "{{ dagops.message }}"
    return cls(**kwargs)


def _parameters(cls: type) -> set[str]:
    try:
        return set(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return set()


def _name(spec: dict) -> str:
    return f"webhook {spec['webhook']['conn_id']}" if "webhook" in spec else spec.get("notifier", "?")
