"""No credential text (private keys, tokens, passphrases) in logs, stderr, CLI output, state DB rows or API
answers, across test, deploy key and both kinds of rotation, successful and failed."""

from __future__ import annotations

import logging

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from airflow_dagops.cli import credentials as cli_credentials
from airflow_dagops.credentials import connections
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.credentials.conftest import NEW_TOKEN, TOKEN, assert_no_secret, state_db_dump, stored_connection
from tests.helpers.servers import new_key_pair

PASSPHRASE = "pass-phrase-never-shown"  # noqa: S105


def _encrypted_key():
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode()


def test_the_search_finds_a_planted_secret():
    with pytest.raises(AssertionError, match="secret text found"):
        assert_no_secret({"log": f"... {TOKEN[:20]}{TOKEN[20:]} ..."}, [TOKEN])
    key = new_key_pair().private
    with pytest.raises(AssertionError):
        assert_no_secret({"log": key.splitlines()[2]}, [key])  # one line of a key is enough to fail


def test_no_credential_text_anywhere(ssh, http, airflow_db, env_conn, web, caplog, capfd, monkeypatch):
    if web.auth_manager != "simple":
        pytest.skip("the search is about dagops' outputs, not the auth manager: once is enough")
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    outputs: dict[str, str] = {}

    def cli(*args: str, stdin: str | None = None) -> None:
        result = runner.invoke(cli_credentials.app, list(args), input=stdin)
        outputs[" ".join(args)] = result.output + (result.stderr or "")

    # An SSH repository whose key has a passphrase, in the metadata DB.
    private, public = _encrypted_key()
    ssh.server.authorize(public)
    ssh_conn = airflow_db(extra=ssh.extra(private_key=private, private_key_passphrase=PASSPHRASE))
    add_repository("team", ssh.url, conn_id=ssh_conn, verify=False)
    stranger = new_key_pair("stranger")
    add_repository("locked", ssh.url, conn_id=env_conn(extra=ssh.extra(stranger)), verify=False)
    # A token repository, and one whose token is wrong.
    add_repository("web", http.url("team.git"), conn_id=airflow_db(login="bot", password=TOKEN), verify=False)
    add_repository("revoked", http.url("team.git"), conn_id=env_conn(password=NEW_TOKEN), verify=False)

    for name in ("team", "locked", "web", "revoked"):
        cli("test", name)
        cli("test", name, "--json")
        cli("deploy-key", name)
        outputs[f"api test {name}"] = web.api("POST", f"repositories/{name}/credentials/test").get_data(as_text=True)
        outputs[f"api key {name}"] = web.api("GET", f"repositories/{name}/credentials/deploy-key").get_data(
            as_text=True
        )
    assert sync_repository("team").status == "published"  # the sync path uses the same connection

    # SSH rotation: one that fails (key never added), one through the API, one through the CLI.
    cli("rotate", "team", "--yes", "--wait", "0")
    started = web.api("POST", "repositories/team/credentials/rotate")
    pending = started.get_json()
    ssh.server.authorize(pending["public_key"])
    confirmed = web.api(
        "POST", "repositories/team/credentials/rotate/confirm", json={"rotation_id": pending["rotation_id"]}
    )
    outputs.update(api_rotate=started.get_data(as_text=True), api_confirm=confirmed.get_data(as_text=True))
    assert confirmed.status_code == 200
    api_key = stored_connection(pending["conn_id"])[1]["private_key"]

    original = cli_credentials._wait_for_enter
    add_key = lambda: (ssh.server.authorize(_pending_public(pending["conn_id"])), original())  # noqa: E731
    monkeypatch.setattr(cli_credentials, "_wait_for_enter", add_key)
    cli("rotate", "team", "--yes", stdin="\n")
    cli_key = stored_connection(get_repository("team").conn_id)[1]["private_key"]
    assert cli_key != api_key

    # Token rotation: a wrong one (refused), then a good one from stdin.
    cli("rotate", "web", "--token-file", "-", "--yes", stdin="ghp_wrong_new_token_0000\n")
    http.tokens.add(NEW_TOKEN)
    cli("rotate", "web", "--token-file", "-", "--yes", stdin=NEW_TOKEN + "\n")
    assert stored_connection(get_repository("web").conn_id)[0] == NEW_TOKEN

    captured = capfd.readouterr()
    texts = {
        **outputs,
        "logs": caplog.text,
        "stdout": captured.out,
        "stderr": captured.err,
        "state db": state_db_dump(),
    }
    secrets = [private, stranger.private, ssh.user_key.private, api_key, cli_key, TOKEN, NEW_TOKEN, PASSPHRASE]
    assert_no_secret(texts, [*secrets, "ghp_wrong_new_token_0000"])
    assert "team" in texts["state db"] and "authentication failed" in outputs["test locked"]  # the search saw them


def _pending_public(previous_conn_id: str) -> str:
    from tests.credentials.conftest import connection_ids

    (pending,) = [c for c in connection_ids() if "_rotated_" in c and c != previous_conn_id and _is_pending(c)]
    private = stored_connection(pending)[1]["private_key"]
    key = serialization.load_ssh_private_key(private.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _is_pending(conn_id: str) -> bool:
    return (stored_connection(conn_id)[2] or "").startswith(connections.PENDING_MARK)
