"""The two repository options of this package, checked once for every face (repositories/options.py declares them
with these checks): `alerts`, who is told of what, and `auto_rollback`, when a live release is rolled back.

    alerts:
      events: [failing, validation_failed, recovered, auto_rollback]   # optional; default: all four
      notifiers:
        - webhook: {conn_id: ops_webhook}                                # JSON POSTed to the connection's URL
        - notifier: airflow.providers.smtp.notifications.smtp.SmtpNotifier
          kwargs: {to: [ops@example.com], from_email: dagops@example.com}
          events: [failing, auto_rollback]                               # optional; narrows the list above
    auto_rollback: {max_failure_rate: 0.5, min_runs: 3}

Security: a notifier is named by its dotted path and imported by the process that sends (a worker, the
api-server). Only a class that is a subclass of Airflow's `BaseNotifier` may be named, and the check runs before
anything is stored: the module must sit in a `notifications`/`notifiers` package (as every Airflow provider's
notifiers do) of installed code, never under the dags folder or `dagops_home` (where repositories' code lives, and
where any module could be made importable by a push). Its top-level package is located without importing it, so
a refused name runs no code at all. Keyword arguments are stored in the state DB, which never holds a secret: a
key that names one (password, token, secret, api key, webhook URL) is refused; credentials come from the
notifier's Airflow connection. Through the REST API only an Airflow admin may set `alerts` (some notifiers read or
attach local files: SmtpNotifier's `files` and `template`).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import re
from pathlib import Path
from typing import Any

from airflow_dagops import settings
from airflow_dagops.errors import InvalidInput
from airflow_dagops.safety import validate_conn_id
from airflow_dagops.statuses import AlertEvent

EVENTS = tuple(event.value for event in AlertEvent)
MAX_NOTIFIERS = 10
MAX_KWARGS_BYTES = 8192
MAX_MIN_RUNS = 1000
# The built-in notifier of the `webhook` shorthand (alerts/notifiers.py).
WEBHOOK_NOTIFIER = "airflow_dagops.alerts.notifiers.WebhookNotifier"
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_NOTIFIER_PACKAGES = ("notifications", "notifiers", "notifier")
_SECRET_KEY = re.compile(r"(?i)(passw|secret|token|api[_-]?key|private[_-]?key|credential|webhook[_-]?url)")

ALERTS_SCHEMA = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "events": {"type": "array", "uniqueItems": True, "items": {"type": "string", "enum": list(EVENTS)}},
        "notifiers": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_NOTIFIERS,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "webhook": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["conn_id"],
                        "properties": {"conn_id": {"type": "string", "minLength": 1, "maxLength": 250}},
                    },
                    "notifier": {"type": "string", "minLength": 3, "maxLength": 300},
                    "kwargs": {"type": "object"},
                    "events": {"type": "array", "uniqueItems": True, "items": {"type": "string", "enum": list(EVENTS)}},
                },
            },
        },
    },
}
AUTO_ROLLBACK_SCHEMA = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "required": ["max_failure_rate"],
    "properties": {
        "max_failure_rate": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        "min_runs": {"type": "integer", "minimum": 1, "maximum": MAX_MIN_RUNS, "default": 3},
    },
}


# -- alerts --------------------------------------------------------------------------------------------------------
def validate_alerts(value: Any) -> dict | None:
    """`{events: [...], notifiers: [...]}` as stored; None or {} means no alerts. Raises InvalidInput."""
    if value in (None, {}):
        return None
    if not isinstance(value, dict):
        raise InvalidInput("alerts must be a mapping like {notifiers: [{webhook: {conn_id: ops_webhook}}]}")
    unknown = set(value) - {"events", "notifiers"}
    if unknown:
        raise InvalidInput(f"alerts: unknown key {sorted(unknown)[0]!r} (known: events, notifiers)")
    events = _events(value.get("events"), "alerts.events") or list(EVENTS)
    notifiers = value.get("notifiers")
    if not isinstance(notifiers, list) or not 1 <= len(notifiers) <= MAX_NOTIFIERS:
        raise InvalidInput(
            f"alerts.notifiers must list 1 to {MAX_NOTIFIERS} notifiers, e.g. [{{webhook: {{conn_id: ops_webhook}}}}]"
        )
    return {"events": events, "notifiers": [_notifier_spec(spec, i) for i, spec in enumerate(notifiers)]}


def _events(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{where} must list events from: {', '.join(EVENTS)}")
    unknown = [event for event in value if event not in EVENTS]
    if unknown:
        raise InvalidInput(f"{where}: unknown event {unknown[0]!r}; one of {', '.join(EVENTS)}")
    return [event for event in EVENTS if event in value]  # one order everywhere


def _notifier_spec(spec: Any, index: int) -> dict:
    where = f"alerts.notifiers[{index}]"
    if not isinstance(spec, dict):
        raise InvalidInput(
            f"{where} must be a mapping: {{webhook: {{conn_id: ...}}}} or {{notifier: ..., kwargs: ...}}"
        )
    unknown = set(spec) - {"webhook", "notifier", "kwargs", "events"}
    if unknown:
        raise InvalidInput(f"{where}: unknown key {sorted(unknown)[0]!r} (known: webhook, notifier, kwargs, events)")
    if ("webhook" in spec) == ("notifier" in spec):
        raise InvalidInput(f"{where} needs exactly one of `webhook` (a connection) or `notifier` (a class path)")
    clean: dict[str, Any] = {}
    if "webhook" in spec:
        hook = spec["webhook"]
        if not isinstance(hook, dict) or set(hook) != {"conn_id"}:
            raise InvalidInput(f"{where}.webhook must be {{conn_id: <an Airflow HTTP connection>}}")
        conn_id = validate_conn_id(hook["conn_id"], what=f"{where}.webhook.conn_id")
        if conn_id is None:
            raise InvalidInput(f"{where}.webhook.conn_id names no connection")
        if "kwargs" in spec:
            raise InvalidInput(f"{where}: a webhook takes no kwargs (its URL and token are its connection's)")
        clean["webhook"] = {"conn_id": conn_id}
    else:
        path = spec["notifier"]
        kwargs = spec.get("kwargs") or {}
        notifier_class(path, where=f"{where}.notifier")  # refused before anything is stored
        clean["notifier"] = path
        clean["kwargs"] = _kwargs(path, kwargs, where)
    events = _events(spec.get("events"), f"{where}.events")
    if events is not None:
        clean["events"] = events
    return clean


def _kwargs(path: str, kwargs: Any, where: str) -> dict:
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        raise InvalidInput(f"{where}.kwargs must map argument names to values")
    secret = [key for key in kwargs if _SECRET_KEY.search(key)]
    if secret:
        raise InvalidInput(
            f"{where}.kwargs: {secret[0]!r} looks like a credential, and dagops stores no credentials: put it in an "
            "Airflow connection and name the connection (e.g. smtp_conn_id, slack_conn_id, apprise_conn_id)"
        )
    try:
        size = len(json.dumps(kwargs))
    except (TypeError, ValueError) as err:
        raise InvalidInput(f"{where}.kwargs must be plain JSON values (text, numbers, lists, mappings)") from err
    if size > MAX_KWARGS_BYTES:
        raise InvalidInput(f"{where}.kwargs is too large ({size} bytes; at most {MAX_KWARGS_BYTES})")
    cls = notifier_class(path, where=f"{where}.notifier")
    try:
        inspect.signature(cls).bind(**kwargs)
        cls(**kwargs)  # what a notifier refuses only as it is made (extra keywords it hands on to BaseNotifier)
    except Exception as err:
        raise InvalidInput(f"{where}.kwargs do not fit {path}: {type(err).__name__}: {err}") from None
    return kwargs


def notifier_class(path: Any, *, where: str = "notifier") -> type:
    """The BaseNotifier subclass `path` names, after the checks of the module docstring; raises InvalidInput."""
    if not isinstance(path, str) or not _PATH.match(path):
        raise InvalidInput(f"{where} must be a dotted class path such as {WEBHOOK_NOTIFIER}")
    module_name, _, class_name = path.rpartition(".")
    if path != WEBHOOK_NOTIFIER and not set(module_name.split(".")[1:]) & set(_NOTIFIER_PACKAGES):
        raise InvalidInput(
            f"{where} {path!r} is not in a notifications package (as airflow.providers.<name>.notifications.<module>."
            "<Class>): only Airflow notifiers may be named"
        )
    _check_installed(module_name.split(".")[0], path, where)
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # ImportError, or a module that fails as it loads
        raise InvalidInput(
            f"{where}: cannot import {module_name!r} ({type(err).__name__}: {err}); is its provider installed on "
            "every Airflow component (api-server, scheduler, workers)?"
        ) from None
    origin = getattr(module, "__file__", None)
    if origin and _inside_repositories(Path(origin)):
        raise InvalidInput(f"{where} {path!r} lives in the dags folder or dagops_home: only installed code may notify")
    cls = getattr(module, class_name, None)
    from airflow.sdk.bases.notifier import BaseNotifier  # Airflow only once a notifier is named

    if not (inspect.isclass(cls) and issubclass(cls, BaseNotifier)):
        raise InvalidInput(f"{where} {path!r} is not a subclass of Airflow's BaseNotifier: only notifiers may be named")
    return cls


def _check_installed(top: str, path: str, where: str) -> None:
    """The top-level package is installed code, found without running it."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise InvalidInput(f"{where}: no package {top!r} is installed, so {path!r} cannot be imported")
    places = [spec.origin] if spec.origin else []
    places += list(spec.submodule_search_locations or [])
    if any(_inside_repositories(Path(place)) for place in places if place):
        raise InvalidInput(f"{where} {path!r} lives in the dags folder or dagops_home: only installed code may notify")


def _inside_repositories(path: Path) -> bool:
    real = path.resolve()
    roots = [settings.dagops_home(), settings.dags_folder()]
    return any(real.is_relative_to(root.resolve()) for root in roots)


def wants(rules: dict | None, event: AlertEvent) -> list[dict]:
    """The notifier specs of `rules` that hear of `event` (none when the repository has no alerts)."""
    if not rules or event.value not in rules.get("events", EVENTS):
        return []
    return [spec for spec in rules.get("notifiers", []) if event.value in spec.get("events", EVENTS)]


def alerts_from_text(text: str) -> dict:
    """CLI: JSON (or YAML) of the option, `webhook:CONN_ID` for one webhook, or `none` to clear."""
    text = text.strip()
    if text.lower() in ("", "none"):
        return {}
    if text.startswith("webhook:"):
        return {"notifiers": [{"webhook": {"conn_id": text.removeprefix("webhook:")}}]}
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InvalidInput(f"--alerts takes webhook:CONN_ID, JSON or YAML of the option, or none: {err}") from None
    if not isinstance(value, dict):
        raise InvalidInput("--alerts takes webhook:CONN_ID, a JSON/YAML mapping, or none")
    return value


def alerts_to_text(value: dict | None) -> str:
    if not value:
        return "none"
    names = [
        f"webhook {spec['webhook']['conn_id']}" if "webhook" in spec else spec["notifier"].rpartition(".")[2]
        for spec in value.get("notifiers", [])
    ]
    return f"{', '.join(names)} on {', '.join(value.get('events', EVENTS))}"


# -- auto_rollback ---------------------------------------------------------------------------------------------------
def validate_auto_rollback(value: Any) -> dict | None:
    """`{max_failure_rate: 0.5, min_runs: 3}`: once the first `min_runs` DAG runs of a release that went live by
    itself have finished, more than that share failed rolls it back. None or {} means never."""
    if value in (None, {}):
        return None
    if not isinstance(value, dict):
        raise InvalidInput("auto_rollback must be a mapping like {max_failure_rate: 0.5, min_runs: 3}")
    unknown = set(value) - {"max_failure_rate", "min_runs"}
    if unknown:
        raise InvalidInput(f"auto_rollback: unknown key {sorted(unknown)[0]!r} (known: max_failure_rate, min_runs)")
    rate = value.get("max_failure_rate")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
        raise InvalidInput(
            f"auto_rollback: max_failure_rate must be a share from 0 to below 1 (0.5: more than half failed), got "
            f"{rate!r}"
        )
    runs = value.get("min_runs", 3)
    if isinstance(runs, bool) or not isinstance(runs, int) or not 1 <= runs <= MAX_MIN_RUNS:
        raise InvalidInput(f"auto_rollback: min_runs must be a whole number from 1 to {MAX_MIN_RUNS}, got {runs!r}")
    return {"max_failure_rate": float(rate), "min_runs": runs}


def auto_rollback_from_text(text: str) -> dict:
    """CLI: `0.5:3` (more than 50% of the first 3 runs failed) or `none`."""
    text = text.strip().lower()
    if text in ("", "none"):
        return {}
    rate, _, runs = text.partition(":")
    try:
        value: dict[str, Any] = {"max_failure_rate": float(rate)}
        if runs.strip():
            value["min_runs"] = int(runs)
    except ValueError:
        raise InvalidInput(f"--auto-rollback takes MAX_FAILURE_RATE[:MIN_RUNS], e.g. 0.5:3; got {text!r}") from None
    return value


def auto_rollback_to_text(value: dict | None) -> str:
    if not value:
        return "none"
    return f"more than {value['max_failure_rate']:.0%} of the first {value['min_runs']} runs failed"
