"""The `alerts` and `auto_rollback` options: bad configuration is refused with a clear error before anything is
stored, from every face (the registry here; the REST API's admin-only rule in test_faces.py)."""

from __future__ import annotations

import sys

import pytest

from airflow_dagops.alerts import rules
from airflow_dagops.alerts.send import Alert, send
from airflow_dagops.errors import InvalidInput
from airflow_dagops.repositories.info import list_repositories
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.statuses import AlertEvent
from tests.alerts.conftest import WEBHOOK_CONN, alerts_received

SMTP = "airflow.providers.smtp.notifications.smtp.SmtpNotifier"


def _notifier(path: str, **kwargs) -> dict:
    return {"notifiers": [{"notifier": path, "kwargs": kwargs}]}


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("slack", "must be a mapping"),
        ({"notifiers": []}, "1 to 10 notifiers"),
        ({"notifiers": [{"webhook": {}}]}, "webhook must be {conn_id"),
        ({"notifiers": [{"webhook": {"conn_id": "-x"}}]}, "invalid alerts.notifiers[0].webhook.conn_id"),
        ({"notifiers": [{"webhook": {"conn_id": "a"}, "notifier": SMTP}]}, "exactly one of"),
        ({"notifiers": [{"webhook": {"conn_id": "a"}}], "events": ["exploded"]}, "unknown event 'exploded'"),
        ({"notifiers": [{"webhook": {"conn_id": "a"}}], "when": "always"}, "unknown key 'when'"),
        (_notifier("os.system"), "not in a notifications package"),
        (_notifier("subprocess.Popen"), "not in a notifications package"),
        (_notifier("not a path"), "dotted class path"),
        (_notifier("airflow.providers.nope.notifications.nope.NopeNotifier"), "cannot import"),
        (_notifier("nosuchpackage.notifications.x.Notifier"), "no package 'nosuchpackage' is installed"),
        # In a notifications module, but not a notifier: SmtpHook is imported there.
        (_notifier("airflow.providers.smtp.notifications.smtp.SmtpHook"), "not a subclass of Airflow's BaseNotifier"),
        (_notifier(SMTP), "do not fit"),  # `to` is required
        (_notifier(SMTP, to="ops@example.com", smtp_password="hunter2"), "looks like a credential"),
        (_notifier(SMTP, to="ops@example.com", nonsense=1), "do not fit"),
    ],
)
def test_bad_alert_rules_are_refused_with_what_to_do(dagops_env, value, words):
    with pytest.raises(InvalidInput) as caught:
        rules.validate_alerts(value)
    assert words in str(caught.value)


def test_a_refused_rule_registers_nothing(dagops_env, git_remote):
    with pytest.raises(InvalidInput, match="not in a notifications package"):
        add_repository("team", git_remote().url, alerts=_notifier("os.system"))
    assert list_repositories() == []


def test_a_notifications_package_of_a_repository_is_never_imported(dagops_env, monkeypatch):
    """A push could make any module importable from the dags folder (it is on sys.path in Airflow): dagops refuses
    it without running it."""
    package = dagops_env.dags_folder / "team" / "notifications"
    package.mkdir(parents=True)
    marker = dagops_env.dags_folder.parent / "imported"
    (package.parent / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (package / "__init__.py").write_text("")
    (package / "evil.py").write_text(
        "from airflow.sdk.bases.notifier import BaseNotifier\nclass Evil(BaseNotifier): ...\n"
    )
    monkeypatch.syspath_prepend(str(dagops_env.dags_folder))
    with pytest.raises(InvalidInput, match="lives in the dags folder or dagops_home"):
        rules.validate_alerts(_notifier("team.notifications.evil.Evil"))
    assert not marker.exists() and "team" not in sys.modules


def test_good_rules_are_stored_in_one_order(dagops_env):
    value = {
        "events": ["recovered", "failing"],
        "notifiers": [
            {"webhook": {"conn_id": WEBHOOK_CONN}},
            {"notifier": SMTP, "kwargs": {"to": ["ops@example.com"], "smtp_conn_id": "smtp_ops"}, "events": "failing"},
        ],
    }
    assert rules.validate_alerts(value) == {
        "events": ["failing", "recovered"],
        "notifiers": [
            {"webhook": {"conn_id": WEBHOOK_CONN}},
            {
                "notifier": SMTP,
                "kwargs": {"to": ["ops@example.com"], "smtp_conn_id": "smtp_ops"},
                "events": ["failing"],
            },
        ],
    }
    assert rules.validate_alerts(None) is None and rules.validate_alerts({}) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"max_failure_rate": 1}, "from 0 to below 1"),
        ({"max_failure_rate": "half"}, "from 0 to below 1"),
        ({"max_failure_rate": 0.5, "min_runs": 0}, "from 1 to 1000"),
        ({"max_failure_rate": 0.5, "after": 3}, "unknown key 'after'"),
    ],
)
def test_bad_auto_rollback_rules_are_refused(value, words):
    with pytest.raises(InvalidInput, match=words):
        rules.validate_auto_rollback(value)


def test_auto_rollback_defaults_and_text_forms():
    assert rules.validate_auto_rollback({"max_failure_rate": 0.5}) == {"max_failure_rate": 0.5, "min_runs": 3}
    assert rules.auto_rollback_from_text("0.25:4") == {"max_failure_rate": 0.25, "min_runs": 4}
    assert rules.auto_rollback_from_text("none") == {}
    assert rules.alerts_from_text("webhook:ops") == {"notifiers": [{"webhook": {"conn_id": "ops"}}]}


def test_any_base_notifier_named_by_its_path_gets_the_alert_rendered(dagops_env, receiver):
    """The `notifier` form with the built-in notifier's path: its templated field is rendered with the alert."""
    value = rules.validate_alerts(
        _notifier(rules.WEBHOOK_NOTIFIER, conn_id=WEBHOOK_CONN, text="{{ dagops.repository }}: {{ dagops.title }}")
    )
    errors = send(value, Alert(AlertEvent.FAILING, "team", "team is failing", "details"))
    assert errors == []
    (call,) = receiver.calls
    assert call.body["text"] == "team: team is failing"
    assert alerts_received(receiver)[0]["event"] == "failing"


def test_a_notifier_that_fails_is_reported_and_the_others_still_run(dagops_env, receiver):
    value = rules.validate_alerts(
        {"notifiers": [{"webhook": {"conn_id": "missing_conn"}}, {"webhook": {"conn_id": WEBHOOK_CONN}}]}
    )
    errors = send(value, Alert(AlertEvent.RECOVERED, "team", "t", "m"))
    assert len(errors) == 1 and errors[0].startswith("webhook missing_conn:")
    assert len(receiver.calls) == 1
