"""`test_access` over real transports: every kind of failure is told apart and says what to do."""

from __future__ import annotations

import socket
import tempfile

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from airflow_dagops.credentials import deploy_keys
from airflow_dagops.credentials.access import test_access
from airflow_dagops.repositories.registry import add_repository
from tests.credentials.conftest import TOKEN
from tests.helpers.servers import free_port, new_key_pair


def _register(url: str, conn_id: str | None, *, ref: str = "main", name: str = "team") -> str:
    add_repository(name, url, ref=ref, conn_id=conn_id, verify=False)
    return name


# -- SSH ---------------------------------------------------------------------------------------------------
def test_ssh_deploy_key_with_strict_host_key_checking_works(ssh, env_conn):
    conn_id = env_conn(extra=ssh.extra())
    result = test_access(_register(ssh.url, conn_id))
    assert result.ok and result.kind == "ok", result
    assert result.commit == ssh.head and result.transport == "ssh" and result.latency > 0
    assert result.public_key == " ".join(ssh.user_key.public.split()[:2])  # derived: no comment
    assert result.hint is None


def test_a_key_the_server_does_not_know_is_an_authentication_failure_with_the_key_to_add(ssh, env_conn):
    stranger = new_key_pair("stranger")
    result = test_access(_register(ssh.url, env_conn(extra=ssh.extra(stranger))))
    assert (result.ok, result.kind) == (False, "authentication_failed"), result
    public = " ".join(stranger.public.split()[:2])
    assert "deploy key with read access at 127.0.0.1" in result.hint and public in result.hint
    assert result.public_key == public


def test_a_wrong_path_is_repository_not_found(ssh, env_conn):
    url = ssh.server.url(ssh.root / "missing.git")
    result = test_access(_register(url, env_conn(extra=ssh.extra())))
    assert result.kind == "repository_not_found", result
    assert "not found" in result.hint and "private repository" in result.hint


def test_a_closed_port_is_host_unreachable(ssh, env_conn):
    url = f"ssh://{ssh.server.user}@127.0.0.1:{free_port()}/team.git"
    result = test_access(_register(url, env_conn(extra=ssh.extra())))
    assert result.kind == "host_unreachable", result
    assert "firewall" in result.hint


def test_a_wrong_known_hosts_entry_is_host_key_mismatch(ssh, env_conn):
    conn_id = env_conn(extra=ssh.extra(known_hosts_file=str(ssh.wrong_known_hosts)))
    result = test_access(_register(ssh.url, conn_id))
    assert result.kind == "host_key_mismatch", result
    assert "known_hosts_file" in result.hint and "strict_host_key_checking" in result.hint
    assert f"ssh-keyscan -p {ssh.server.port} 127.0.0.1 >> FILE" in result.hint


def test_an_unknown_host_under_strict_checking_is_host_key_mismatch_too(ssh, env_conn, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    result = test_access(_register(ssh.url, env_conn(extra=ssh.extra(known_hosts_file=str(empty)))))
    assert result.kind == "host_key_mismatch", result


def test_a_missing_branch_is_ref_not_found(ssh, env_conn):
    result = test_access(_register(ssh.url, env_conn(extra=ssh.extra()), ref="release"))
    assert result.kind == "ref_not_found" and "'release'" in result.hint, result


def test_a_garbage_private_key_is_key_unusable(ssh, env_conn):
    garbage = "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END OPENSSH PRIVATE KEY-----\n"
    result = test_access(_register(ssh.url, env_conn(extra=ssh.extra(private_key=garbage))))
    assert result.kind == "key_unusable", result
    assert result.public_key is None


def test_a_missing_connection_is_a_connection_error(ssh):
    result = test_access(_register(ssh.url, "no_such_connection"))
    assert result.kind == "connection_error", result
    assert "no_such_connection" in result.message and "airflow connections add" in result.hint


def test_an_invalid_extra_is_a_connection_error(ssh, env_conn):
    result = test_access(_register(ssh.url, env_conn(extra=ssh.extra(strict_host_key_checking="sometimes"))))
    assert result.kind == "connection_error" and "strict_host_key_checking" in result.message, result


def test_a_server_that_never_answers_is_a_timeout(ssh, env_conn):
    with socket.socket() as silent:  # accepts TCP connections (backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"ssh://{ssh.server.user}@127.0.0.1:{silent.getsockname()[1]}/team.git"
        result = test_access(_register(url, env_conn(extra=ssh.extra())), timeout=1)
    assert result.kind == "timeout", result
    assert "git_timeout" in result.hint


def test_a_passphrase_protected_key_works_and_a_wrong_passphrase_is_reported(ssh, env_conn):
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"correct horse"),
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    ssh.server.authorize(public.decode())
    good = env_conn(extra=ssh.extra(private_key=encrypted, private_key_passphrase="correct horse"))
    result = test_access(_register(ssh.url, good))
    assert result.ok, result
    assert result.public_key == public.decode()
    wrong = env_conn(extra=ssh.extra(private_key=encrypted, private_key_passphrase="wrong battery"))
    failed = test_access(_register(ssh.url, wrong, name="team-2"))
    assert failed.kind in ("key_unusable", "authentication_failed"), failed
    assert "correct horse" not in repr(failed) and "wrong battery" not in repr(failed)


def test_the_key_touches_disk_only_as_a_0600_temp_file_that_is_removed(ssh, env_conn, tmp_path, monkeypatch):
    """ssh's LocalCommand runs while the connection is up: it records what the temp folder holds then."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    seen = tmp_path / "seen"
    config = tmp_path / "ssh_config"
    config.write_text(f"PermitLocalCommand yes\nLocalCommand stat -c '%%a %%s' {temp}/* > {seen}\n")
    conn_id = env_conn(extra=ssh.extra(ssh_config_file=str(config)))
    assert test_access(_register(ssh.url, conn_id)).ok
    mode, size = seen.read_text().split()
    assert mode == "600" and int(size) == len(ssh.user_key.private)
    assert list(temp.iterdir()) == []


# -- HTTPS (smart HTTP with basic auth) --------------------------------------------------------------------
def test_a_token_over_http_works(http, env_conn, served):
    conn_id = env_conn(login="ci-bot", password=TOKEN)
    result = test_access(_register(http.url("team.git"), conn_id))
    assert result.ok and result.commit == served[1] and result.transport == "http", result
    assert result.public_key is None


def test_a_wrong_token_is_an_authentication_failure_about_scopes(http, env_conn):
    result = test_access(_register(http.url("team.git"), env_conn(login="ci-bot", password="ghp_revoked0000")))
    assert result.kind == "authentication_failed", result
    assert "scopes" in result.hint and "--token-file" in result.hint
    assert "ghp_revoked0000" not in repr(result)


def test_no_connection_for_a_private_repository_says_to_create_one(http):
    result = test_access(_register(http.url("team.git"), None))
    assert result.kind == "authentication_failed", result
    assert "create an Airflow connection" in result.hint


def test_a_wrong_path_over_http_is_repository_not_found(http, env_conn):
    result = test_access(_register(http.url("missing.git"), env_conn(login="ci-bot", password=TOKEN)))
    assert result.kind == "repository_not_found", result


def test_another_connection_can_be_tested_before_switching(http, env_conn):
    name = _register(http.url("team.git"), env_conn(login="ci-bot", password="ghp_revoked0000"))
    candidate = env_conn(login="ci-bot", password=TOKEN)
    assert test_access(name, conn_id=candidate).ok
    assert not test_access(name).ok


# -- deploy keys --------------------------------------------------------------------------------------------
def test_deploy_key_is_derived_from_an_inline_key_or_a_key_file(ssh, env_conn, tmp_path):
    public = " ".join(ssh.user_key.public.split()[:2])
    assert deploy_keys.deploy_key(_register(ssh.url, env_conn(extra=ssh.extra()))) == public
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(ssh.user_key.private)
    key_file.chmod(0o600)
    extra = {**ssh.extra(), "key_file": str(key_file)}
    del extra["private_key"]
    name = _register(ssh.url, env_conn(extra=extra), name="team-file")
    assert deploy_keys.deploy_key(name) == public
    assert test_access(name).ok  # GitHook reads the same file


def test_deploy_key_is_none_for_tokens_github_apps_and_no_connection(http, env_conn, ssh):
    assert deploy_keys.deploy_key(_register(http.url("team.git"), env_conn(password=TOKEN))) is None
    app = env_conn(extra={"github_app_id": "1", "github_installation_id": "2", "private_key": ssh.user_key.private})
    assert deploy_keys.deploy_key(_register(http.url("team.git"), app, name="app")) is None
    assert deploy_keys.deploy_key(_register(ssh.url, None, name="none")) is None


def test_an_unreadable_key_says_what_to_check_without_quoting_it(ssh, env_conn):
    name = _register(ssh.url, env_conn(extra=ssh.extra(private_key="-----BEGIN PRIVATE KEY-----\nAAAA\n")))
    with pytest.raises(Exception, match="not an OpenSSH or PEM private key") as caught:
        deploy_keys.deploy_key(name)
    assert "AAAA" not in str(caught.value)
