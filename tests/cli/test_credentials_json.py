"""`dagops credentials rotate --json` against the real sshd and smart-HTTP server of tests/credentials: stdout holds
the outcome alone (one JSON document), while the key to add, the question and the progress a person reads go to
stderr; a failed rotation is the JSON error envelope on stderr, with the hint, and changes nothing."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from airflow_dagops.cli import credentials as cli_credentials
from airflow_dagops.cli import main as cli_main
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository
from tests.credentials.conftest import (
    NEW_TOKEN,
    TOKEN,
    _credentials_env,  # noqa: F401 - autouse: the loopback servers' settings
    connection_ids,
    stored_connection,
)


def _rotate(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli_main.app, ["credentials", "rotate", *args, "--json"], input=stdin)


def _public_key_of(conn_id: str) -> str:
    private = stored_connection(conn_id)[1]["private_key"]
    key = serialization.load_ssh_private_key(private.encode(), password=None).public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def test_ssh_rotation_json_prints_the_outcome_and_shows_the_key_on_stderr(ssh, airflow_db, monkeypatch):
    old = airflow_db(extra=ssh.extra())
    add_repository("team", ssh.url, conn_id=old, verify=False)
    press_enter = cli_credentials._wait_for_enter

    def add_key_then_press_enter():  # the person adds the key the command printed, then presses Enter
        (pending,) = [c for c in connection_ids() if c.startswith(f"{old}_rotated_")]
        ssh.server.authorize(_public_key_of(pending))
        press_enter()

    monkeypatch.setattr(cli_credentials, "_wait_for_enter", add_key_then_press_enter)
    result = _rotate("team", "--yes", stdin="\n")
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["status"] == "switched" and outcome["old_conn_removed"] is True
    assert outcome["conn_id"] == get_repository("team").conn_id != old
    assert outcome["public_key"].startswith("ssh-ed25519 ") and outcome["public_key"] in result.stderr
    assert "Press Enter" in result.stderr and "access verified" in result.stderr


def test_a_failed_rotation_json_is_an_error_with_the_hint_and_keeps_the_connection(ssh, airflow_db):
    old = airflow_db(extra=ssh.extra())
    add_repository("team", ssh.url, conn_id=old, verify=False)
    result = _rotate("team", "--yes", "--wait", "1")
    assert result.exit_code == 1 and result.stdout == ""
    error = json.loads(result.stderr[result.stderr.index('{\n  "error"') :])["error"]
    assert error["code"] == "access_failed" and error["details"]["access"]["kind"] == "authentication_failed"
    assert "Run the rotation again" in error["details"]["hint"]
    assert get_repository("team").conn_id == old


def test_token_rotation_json_never_prints_a_token(http, airflow_db):
    add_repository("web", http.url("team.git"), conn_id=airflow_db(login="ci-bot", password=TOKEN), verify=False)
    http.tokens.add(NEW_TOKEN)
    result = _rotate("web", "--token-file", "-", "--yes", stdin=NEW_TOKEN)
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["status"] == "switched" and stored_connection(outcome["conn_id"])[0] == NEW_TOKEN
    assert NEW_TOKEN not in result.output and TOKEN not in result.output
