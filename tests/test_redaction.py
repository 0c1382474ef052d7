"""Nothing secret is stored or shown: values of this process's environment, connections and sensitive Airflow
settings never appear in a finding, an event, a log line or a repository's test results."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from airflow_dagops.events import feed as events
from airflow_dagops.redaction import (
    MASK,
    RedactingFilter,
    install_log_redaction,
    redact_finding,
    redact_text,
    secret_values,
)
from airflow_dagops.releases import tests_runner as release_tests
from airflow_dagops.validate import validate
from airflow_dagops.validate.report import Finding

CONN_URI = "postgresql://u:S3cr%23et-Value@db:5432/x"
PASSWORD = "S3cr#et-Value"  # noqa: S105 - the URI's password, decoded: how a DAG that connected would print it
API_TOKEN = "tok-abcdef123456"  # noqa: S105
JWT_SECRET = "jwt-Zq8v1pLr0m4Xa7"  # noqa: S105
JSON_PASSWORD = "json-pass-777"  # noqa: S105
JSON_EXTRA_TOKEN = "xtra-tok-888"  # noqa: S105
SECRETS = (CONN_URI, "S3cr%23et-Value", PASSWORD, API_TOKEN, JWT_SECRET, JSON_PASSWORD, JSON_EXTRA_TOKEN)


@pytest.fixture
def secrets(monkeypatch) -> tuple[str, ...]:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", CONN_URI)
    monkeypatch.setenv("MY_API_TOKEN", API_TOKEN)
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", JWT_SECRET)
    extra = {"api_token": JSON_EXTRA_TOKEN}
    connection = {"conn_type": "http", "host": "api", "password": JSON_PASSWORD, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_API", json.dumps(connection))  # the JSON form of a connection
    return SECRETS


def _leaks(text: str, secrets: tuple[str, ...]) -> list[str]:
    return [s for s in secrets if s in text]


def test_every_form_of_a_secret_is_masked_in_free_text(secrets):
    assert set(secrets) <= secret_values()
    text = f"failed: {CONN_URI} / password {PASSWORD} / {API_TOKEN}, jwt={JWT_SECRET}, {JSON_EXTRA_TOKEN}"
    redacted = redact_text(text)
    assert not _leaks(redacted, secrets)
    assert redacted.startswith("failed: *** / password *** / ***")
    assert redact_text("plain words", extra=["words"]) == "plain ***"


def test_a_changed_environment_and_airflow_sensitive_settings_are_seen(monkeypatch):
    monkeypatch.setenv("OTHER_PASSWORD", "later-added-pw-42")
    assert redact_text("x later-added-pw-42 y") == f"x {MASK} y"

    from airflow.configuration import conf

    before = conf.get("api", "secret_key", fallback=None)
    conf.set("api", "secret_key", "cfg-only-secret-42")  # in airflow.cfg, not in the environment
    try:
        monkeypatch.setenv("DAGOPS_TEST_NONCE", uuid.uuid4().hex)  # the cache is keyed by the environment
        assert "cfg-only-secret-42" in secret_values()
    finally:
        conf.set("api", "secret_key", before or "")


_PROBE = """
import sys
from airflow_dagops.redaction import redact_text
for text in sys.argv[1:]:
    print(redact_text(text), "airflow.configuration" in sys.modules)
"""


def _redacted_in_a_new_process(env: dict[str, str], *texts: str) -> list[tuple[str, bool]]:
    """Each text redacted by a process that has not loaded Airflow, and whether it had loaded it by then."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *texts], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return [(line.rsplit(" ", 1)[0], line.endswith("True")) for line in done.stdout.splitlines()]


def test_airflow_is_loaded_only_for_a_text_that_holds_a_value_of_its_settings(tmp_path):
    """A command's error message is redacted without Airflow's two-second import unless it holds a value of
    Airflow's settings; one that does is masked as before, from airflow.cfg as from the environment."""
    home = tmp_path / "airflow-home"
    home.mkdir()
    (home / "airflow.cfg").write_text("[api]\nsecret_key = cfg-file-secret-9137\n[core]\nload_examples = False\n")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__SECRETS__BACKEND_KWARGS": '{"token": "kw-tok-5521"}'}
    env.pop("AIRFLOW_CONFIG", None)
    plain, from_file, from_env = _redacted_in_a_new_process(
        env, "no repository named 'nope'", "bad key cfg-file-secret-9137", 'kwargs {"token": "kw-tok-5521"}'
    )
    assert plain == ("no repository named 'nope'", False)
    assert from_file == (f"bad key {MASK}", True) and MASK in from_env[0] and "kw-tok-5521" not in from_env[0]
    (home / "airflow.cfg").write_text("[api]\nsecret_key_cmd = echo from-a-command\n")
    assert _redacted_in_a_new_process(env, "no repository named 'nope'") == [("no repository named 'nope'", True)]


def test_short_and_boring_values_are_not_masked(monkeypatch):
    boring = {
        "FEATURE_TOKEN_ENABLED": "true",
        "SOME_SECRET_PORT": "543210",
        "API_KEY_FILE": "/tmp/keys",
        "SHORT_TOKEN": "abc12",
        "AIRFLOW__FAB__SESSION_BACKEND": "database",
        "AIRFLOW__DAGOPS__VALIDATION_SKIP": "structure",
        "AIRFLOW__DAGOPS__WEBHOOK_SECRET_CONN_ID": "dagops_webhook",
        "AIRFLOW_HOME": "airflow",
    }
    for name, value in boring.items():
        monkeypatch.setenv(name, value)
    text = "true 543210 /tmp/keys abc12 database structure dagops_webhook airflow"
    assert redact_text(text) == text
    assert not set(boring.values()) & secret_values()


def test_validate_redacts_what_a_dag_file_raises(secrets, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "compat,imports")  # slow steps that add nothing here
    root = tmp_path / "release"
    (root / "dags").mkdir(parents=True)
    # The file stands for a DAG that learned the values (the sandbox is the first line of defence, not this one).
    leaked = ", ".join(repr(s) for s in secrets)
    source = f"from airflow.sdk import dag\n\nvalues = [{leaked}]\nraise RuntimeError(' '.join(values))\n"
    (root / "dags" / "leak.py").write_text(source)

    report = validate(root, use_cache=False)

    import_error = next((f for f in report.findings if f.rule == "import-error"), None)
    assert import_error is not None, report.findings
    assert MASK in import_error.message
    for finding in report.findings:
        assert not _leaks(f"{finding.message} {finding.hint}", secrets), finding


def test_events_are_stored_without_secrets(secrets, dagops_env):
    events.record(
        "sync",
        repository="team",
        actor="cli",
        outcome="failed",
        summary=f"team: sync failed: could not reach {CONN_URI} with {PASSWORD}",
        detail={"error": f"RuntimeError: {API_TOKEN}", "nested": [{"why": JWT_SECRET}]},
    )

    stored = events.list_events(repository="team")["events"]
    assert len(stored) == 1 and stored[0]["outcome"] == "failed"
    assert not _leaks(json.dumps(stored), secrets)
    assert MASK in stored[0]["summary"]


def test_log_lines_of_the_package_are_redacted(secrets, caplog):
    install_log_redaction()
    install_log_redaction()  # idempotent: one factory, not two
    log = logging.getLogger("airflow_dagops.services")
    with caplog.at_level(logging.INFO):
        log.warning("sync failed: %s (token %s)", CONN_URI, API_TOKEN)
        try:
            raise RuntimeError(f"could not log in with {PASSWORD}")
        except RuntimeError:
            log.exception("unexpected error")
    assert "sync failed: *** (token ***)" in caplog.text
    assert "RuntimeError: could not log in with ***" in caplog.text
    assert not _leaks(caplog.text, secrets)


def test_the_filter_redacts_any_handler_it_is_put_on(secrets):
    record = logging.LogRecord("elsewhere", logging.INFO, __file__, 1, "jwt %s", (JWT_SECRET,), None)
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == f"jwt {MASK}"


def test_a_redacted_finding_is_a_new_one(secrets):
    finding = Finding("import-error", "error", f"RuntimeError: {API_TOKEN}", "dags/a.py", 1, hint=PASSWORD)
    redacted = redact_finding(finding)
    assert (redacted.message, redacted.hint) == (f"RuntimeError: {MASK}", MASK)
    assert finding.message.endswith(API_TOKEN)  # the shared (e.g. cached) original is untouched
    clean = Finding("syntax-error", "error", "invalid syntax", "dags/b.py", 2)
    assert redact_finding(clean) is clean


def test_a_repository_test_that_prints_a_secret_is_stored_redacted(secrets, tmp_path: Path):
    (tmp_path / "tests").mkdir()
    test = f"def test_leaks():\n    print({API_TOKEN!r})\n    assert False, {PASSWORD!r}\n"
    (tmp_path / "tests" / "test_leak.py").write_text(test)

    result = release_tests.run_module(tmp_path, "tests/test_leak.py", timeout=120)

    assert result.outcome == "failed" and result.failures
    assert not _leaks(json.dumps(result.to_dict()), secrets)
    assert MASK in result.failures[0].message
