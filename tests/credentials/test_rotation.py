"""Rotation end to end against the real sshd and smart-HTTP server, with connections in the session's real
Airflow metadata DB: the repository always keeps working credentials."""

from __future__ import annotations

import json
import threading

import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from airflow_dagops.cli import credentials as cli_credentials
from airflow_dagops.credentials import rotation
from airflow_dagops.credentials.access import test_access
from airflow_dagops.errors import RotationFailed
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository, update_repository
from tests.credentials.conftest import NEW_TOKEN, TOKEN, connection_ids, stored_connection
from tests.helpers.servers import new_key_pair


def _register(url: str, conn_id: str | None, *, name: str = "team") -> str:
    add_repository(name, url, conn_id=conn_id, verify=False)
    return name


def _public_of(private_key: str) -> str:
    key = serialization.load_ssh_private_key(private_key.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _rotated_ids(base: str) -> list[str]:
    return [conn_id for conn_id in connection_ids() if conn_id.startswith(f"{base}_rotated_")]


# -- SSH ---------------------------------------------------------------------------------------------------
def test_ssh_rotation_switches_to_a_verified_new_key_and_deletes_the_old_connection(ssh, airflow_db):
    old = airflow_db(extra=ssh.extra())
    name = _register(ssh.url, old)
    shown = []

    def add_deploy_key(pending):  # the person adding the printed key on the Git host, then pressing Enter
        shown.append(pending)
        ssh.server.revoke_all()  # from now on only the new key opens the repository
        ssh.server.authorize(pending.public_key)

    outcome = rotation.rotate(name, actor="tester", on_public_key=add_deploy_key)
    (pending,) = shown
    assert pending.public_key.startswith("ssh-ed25519 ") and pending.public_key.endswith(
        f"dagops-{name}-" + pending.conn_id[-14:-6]
    )
    assert outcome.status == "switched" and outcome.old_conn_removed and outcome.note is None
    assert outcome.conn_id == pending.conn_id and pending.conn_id.startswith(f"{old}_rotated_")
    assert get_repository(name).conn_id == pending.conn_id
    assert stored_connection(old) is None  # deleted: it lived in the metadata DB and nothing else used it
    _password, extra, description = stored_connection(pending.conn_id)
    assert _public_of(extra["private_key"]) == " ".join(pending.public_key.split()[:2])
    assert extra["strict_host_key_checking"] == "yes" and extra["known_hosts_file"] == str(ssh.known_hosts)
    assert "rotated from" in description and "pending" not in description
    assert test_access(name).ok


def test_rotating_again_replaces_the_suffix_instead_of_growing_it(ssh, airflow_db):
    name = _register(ssh.url, airflow_db(extra=ssh.extra()))
    for _ in range(2):
        outcome = rotation.rotate(name, actor="t", on_public_key=lambda p: ssh.server.authorize(p.public_key))
    assert outcome.conn_id.count("_rotated_") == 1 and outcome.old_conn_removed


def test_an_env_var_connection_is_rotated_into_the_metadata_db_and_the_old_one_is_left_with_a_note(
    ssh, env_conn, airflow_db
):
    old = env_conn(extra=ssh.extra())
    name = _register(ssh.url, old)
    outcome = rotation.rotate(name, actor="t", on_public_key=lambda p: ssh.server.authorize(p.public_key))
    assert outcome.status == "switched" and not outcome.old_conn_removed
    assert f"AIRFLOW_CONN_{old.upper()}" in outcome.note and "cannot delete" in outcome.note
    assert stored_connection(outcome.conn_id) is not None


def test_an_old_connection_in_a_secrets_backend_is_left_there_with_a_note(ssh, airflow_db, monkeypatch):
    """A Vault-like backend in front of Airflow's own ones: dagops reads from it, but cannot delete there."""
    import airflow.configuration
    from airflow.secrets.base_secrets import BaseSecretsBackend

    class VaultLike(BaseSecretsBackend):
        def get_conn_value(self, conn_id, team_name=None):
            return json.dumps({"conn_type": "git", "extra": ssh.extra()}) if conn_id == "vault_git" else None

    chain = airflow.configuration.ensure_secrets_loaded
    monkeypatch.setattr(airflow.configuration, "ensure_secrets_loaded", lambda *a, **k: [VaultLike(), *chain(*a, **k)])
    name = _register(ssh.url, "vault_git")
    outcome = rotation.rotate(name, actor="t", on_public_key=lambda p: ssh.server.authorize(p.public_key))
    assert outcome.status == "switched" and outcome.conn_id.startswith("vault_git_rotated_")
    assert "secrets backend VaultLike" in outcome.note and not outcome.old_conn_removed


def test_a_key_never_authorized_leaves_the_old_connection_in_place_and_removes_the_new_one(ssh, airflow_db):
    old = airflow_db(extra=ssh.extra())
    name = _register(ssh.url, old)
    with pytest.raises(RotationFailed, match="keeps its connection") as failure:
        rotation.rotate(name, actor="t", wait=1, poll_interval=0.2, on_public_key=lambda _p: None)
    assert failure.value.access.kind == "authentication_failed"
    assert get_repository(name).conn_id == old and stored_connection(old) is not None
    assert _rotated_ids(old) == []
    assert test_access(name).ok  # the old key still works


def test_an_interrupted_rotation_removes_the_new_connection(ssh, airflow_db):
    old = airflow_db(extra=ssh.extra())
    name = _register(ssh.url, old)

    def interrupt(_pending):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotation.rotate(name, actor="t", on_public_key=interrupt)
    assert get_repository(name).conn_id == old and _rotated_ids(old) == []


def test_an_old_connection_another_repository_uses_is_kept(ssh, airflow_db):
    shared = airflow_db(extra=ssh.extra())
    name = _register(ssh.url, shared)
    _register(ssh.url, shared, name="other")
    outcome = rotation.rotate(name, actor="t", on_public_key=lambda p: ssh.server.authorize(p.public_key))
    assert not outcome.old_conn_removed and "other" in outcome.note
    assert stored_connection(shared) is not None and get_repository("other").conn_id == shared


def test_the_api_flow_waits_for_the_key_then_switches(ssh, airflow_db):
    old = airflow_db(extra=ssh.extra())
    name = _register(ssh.url, old)
    pending = rotation.start_rotation(name, actor="t")
    with pytest.raises(RotationFailed) as early:  # confirmed before the key was added: nothing changes
        rotation.confirm_rotation(name, pending.rotation_id, actor="t")
    assert early.value.pending_kept and stored_connection(pending.conn_id) is not None
    assert get_repository(name).conn_id == old
    # The key is added while confirm polls (a Git host applying it a moment later).
    threading.Timer(0.5, ssh.server.authorize, args=(pending.public_key,)).start()
    outcome = rotation.confirm_rotation(name, pending.rotation_id, actor="t", wait=15, poll_interval=0.2)
    assert outcome.status == "switched" and get_repository(name).conn_id == pending.conn_id


def test_starting_again_drops_the_unfinished_rotation_and_abort_deletes_it(ssh, airflow_db):
    old = airflow_db(extra=ssh.extra())
    name = _register(ssh.url, old)
    first = rotation.start_rotation(name, actor="t")
    second = rotation.start_rotation(name, actor="t")
    assert _rotated_ids(old) == [second.conn_id]  # one pending rotation per repository: the newest
    stored_key = _public_of(stored_connection(second.conn_id)[1]["private_key"])
    assert stored_key in second.public_key and stored_key not in first.public_key
    aborted = rotation.abort_rotation(name, second.rotation_id)
    assert aborted.status == "aborted" and _rotated_ids(old) == [] and aborted.conn_id == old


def test_a_repository_switched_meanwhile_cancels_the_rotation(ssh, airflow_db, env_conn):
    old = airflow_db(extra=ssh.extra())
    name = _register(ssh.url, old)
    pending = rotation.start_rotation(name, actor="t")
    update_repository(name, conn_id=env_conn(extra=ssh.extra()), verify=False)
    with pytest.raises(Exception, match="changed"):
        rotation.confirm_rotation(name, pending.rotation_id, actor="t")
    assert _rotated_ids(old) == []


def test_what_cannot_be_rotated_says_why(ssh, http, env_conn, airflow_db):
    with pytest.raises(Exception, match="uses no Airflow connection"):
        rotation.rotate(_register(ssh.url, None, name="open"), actor="t")
    https_repo = _register(http.url("team.git"), airflow_db(login="bot", password=TOKEN), name="web")
    with pytest.raises(Exception, match="--token-file"):
        rotation.start_rotation(https_repo, actor="t")
    app = env_conn(extra={"github_app_id": "1", "github_installation_id": "2", "private_key": "x"})
    with pytest.raises(Exception, match="GitHub App"):
        rotation.rotate(_register(http.url("team.git"), app, name="app"), actor="t", new_token="x")


# -- tokens ------------------------------------------------------------------------------------------------
def test_token_rotation_verifies_the_new_token_then_swaps(http, airflow_db):
    old = airflow_db(login="ci-bot", password=TOKEN)
    name = _register(http.url("team.git"), old)
    http.tokens.add(NEW_TOKEN)  # the person created the new token on the Git host
    outcome = rotation.rotate(name, actor="t", new_token=NEW_TOKEN + "\n")
    assert outcome.status == "switched" and outcome.old_conn_removed
    password, _extra, _description = stored_connection(outcome.conn_id)
    assert password == NEW_TOKEN
    http.tokens.discard(TOKEN)  # ... and revoked the old one
    assert test_access(name).ok


def test_a_wrong_new_token_changes_nothing(http, airflow_db):
    old = airflow_db(login="ci-bot", password=TOKEN)
    name = _register(http.url("team.git"), old)
    with pytest.raises(RotationFailed) as failure:
        rotation.rotate(name, actor="t", new_token="ghp_never_issued_1234")
    assert failure.value.access.kind == "authentication_failed"
    assert get_repository(name).conn_id == old and _rotated_ids(old) == []
    assert "ghp_never_issued_1234" not in str(failure.value) + json.dumps(failure.value.details)


# -- the CLI ----------------------------------------------------------------------------------------------------
def test_cli_rotate_prints_the_key_waits_for_enter_then_switches(ssh, airflow_db, monkeypatch):
    old = airflow_db(extra=ssh.extra())
    name = _register(ssh.url, old)
    press_enter = cli_credentials._wait_for_enter

    def add_key_then_press_enter():  # the person copies the printed key into the Git host's deploy keys
        (pending_id,) = _rotated_ids(old)
        ssh.server.authorize(_public_of(stored_connection(pending_id)[1]["private_key"]))
        press_enter()  # reads the "\n" of stdin

    monkeypatch.setattr(cli_credentials, "_wait_for_enter", add_key_then_press_enter)
    result = CliRunner().invoke(cli_credentials.app, ["rotate", name, "--yes"], input="\n")
    assert result.exit_code == 0, result.output
    new_id = get_repository(name).conn_id
    public = _public_of(stored_connection(new_id)[1]["private_key"])
    assert public in result.stdout and "Press Enter" in result.stdout
    for step in (f"created connection {new_id}", "access verified", f"{name} now uses {new_id}", "removed the old"):
        assert step in result.stdout, result.stdout


def test_cli_rotate_gives_up_after_wait_and_keeps_the_old_connection(ssh, airflow_db):
    old = airflow_db(extra=ssh.extra())
    name = _register(ssh.url, old)
    result = CliRunner().invoke(cli_credentials.app, ["rotate", name, "--yes", "--wait", "1"])
    assert result.exit_code == 1
    assert "keeps its connection" in result.stderr and "Run the rotation again" in result.stderr
    assert get_repository(name).conn_id == old and _rotated_ids(old) == []


def test_cli_rotate_reads_a_token_from_stdin_or_a_file(http, airflow_db, tmp_path):
    name = _register(http.url("team.git"), airflow_db(login="ci-bot", password=TOKEN))
    http.tokens.add(NEW_TOKEN)
    result = CliRunner().invoke(cli_credentials.app, ["rotate", name, "--token-file", "-", "--yes"], input=NEW_TOKEN)
    assert result.exit_code == 0, result.output
    assert NEW_TOKEN not in result.output and TOKEN not in result.output
    third = "ghp_" + "third000" * 4
    http.tokens.add(third)
    token_file = tmp_path / "token"
    token_file.write_text(third + "\n")
    again = CliRunner().invoke(cli_credentials.app, ["rotate", name, "--token-file", str(token_file)], input="y\n")
    assert again.exit_code == 0, again.output
    assert stored_connection(get_repository(name).conn_id)[0] == third


def test_cli_test_exits_0_or_1_with_a_verdict_and_a_hint(ssh, env_conn):
    good = _register(ssh.url, env_conn(extra=ssh.extra()))
    bad = _register(ssh.url, env_conn(extra=ssh.extra(new_key_pair())), name="bad")
    ok = CliRunner().invoke(cli_credentials.app, ["test", good])
    assert ok.exit_code == 0 and f"✓ {good}: access OK" in ok.stdout
    failed = CliRunner().invoke(cli_credentials.app, ["test", bad])
    assert (
        failed.exit_code == 1 and "authentication failed" in failed.stdout and "→ Add this public key" in failed.stdout
    )
    as_json = CliRunner().invoke(cli_credentials.app, ["test", bad, "--json"])
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["kind"] == "authentication_failed"
    unknown = CliRunner().invoke(cli_credentials.app, ["test", "nope"])
    assert unknown.exit_code == 1 and "no repository named 'nope'" in unknown.stderr


def test_cli_deploy_key_prints_only_the_public_key(ssh, env_conn, http):
    name = _register(ssh.url, env_conn(extra=ssh.extra()))
    result = CliRunner().invoke(cli_credentials.app, ["deploy-key", name])
    assert result.exit_code == 0 and result.stdout.strip() == " ".join(ssh.user_key.public.split()[:2])
    token_repo = _register(http.url("team.git"), env_conn(password=TOKEN), name="web")
    assert CliRunner().invoke(cli_credentials.app, ["deploy-key", token_repo]).exit_code == 1
