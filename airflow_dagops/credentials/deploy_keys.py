"""SSH deploy keys of a repository's connection: show the public half, make new ed25519 pairs.

The public key is derived from the private key the connection holds (inline `private_key` or `key_file`),
so there is nothing to keep in sync; the private part never leaves this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from airflow_dagops.airflow.connections import find_connection
from airflow_dagops.credentials.common import load_target
from airflow_dagops.errors import DagOpsError, InvalidInput, NotFound

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

# GitHook's extras that describe the SSH key; a rotated connection replaces all of them by `private_key`.
KEY_EXTRAS = ("private_key", "key_file", "private_key_passphrase")


def deploy_key(name: str) -> str | None:
    """The public SSH key (OpenSSH one-liner) of the repository's connection; None when it holds no SSH key."""
    return deploy_key_info(name)[1]


def deploy_key_info(name: str) -> tuple[str | None, str | None]:
    """(conn_id, public key or None)."""
    repo = load_target(name)
    if not repo.conn_id:
        return None, None
    connection = find_connection(repo.conn_id)
    if connection is None:
        raise NotFound(f"the Airflow connection {repo.conn_id!r} of {name!r} does not exist (or cannot be read)")
    if is_github_app(connection):
        return repo.conn_id, None  # its private_key signs GitHub App tokens: it is no deploy key
    return repo.conn_id, public_key_of(connection)


def public_key_of(connection) -> str | None:
    """Derive the public key from the connection's private key (inline or key_file); never returns the private part."""
    text = _key_text(connection)
    if not text:
        return None
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    passphrase = (connection.extra_dejson.get("private_key_passphrase") or "").encode() or None
    data = text.strip().encode() + b"\n"
    key: PrivateKeyTypes
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=passphrase)
        else:
            key = serialization.load_pem_private_key(data, password=passphrase)
    except UnsupportedAlgorithm as err:
        raise InvalidInput(
            f"the private key of connection {connection.conn_id!r} is a passphrase-protected OpenSSH key, "
            "which needs the `bcrypt` package to read: pip install bcrypt"
        ) from err
    except (ValueError, TypeError) as err:
        # cryptography's message may quote parts of the key: say what to check instead.
        raise InvalidInput(
            f"cannot read the private key of connection {connection.conn_id!r}: it is not an OpenSSH or PEM "
            "private key, or `private_key_passphrase` is wrong or missing"
        ) from err
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return public.decode()


def public_key_or_none(connection) -> str | None:
    if connection is None or is_github_app(connection):
        return None
    try:
        return public_key_of(connection)
    except DagOpsError:
        return None


def _key_text(connection) -> str | None:
    extra = connection.extra_dejson
    if extra.get("private_key"):
        return extra["private_key"]
    if extra.get("key_file"):
        try:
            return Path(extra["key_file"]).expanduser().read_text()
        except OSError as err:
            raise InvalidInput(
                f"cannot read the key_file of connection {connection.conn_id!r} ({extra['key_file']}): "
                f"{err.strerror}. The file must be readable on every Airflow machine."
            ) from err
    return None


def is_github_app(connection) -> bool:
    extra = connection.extra_dejson
    return bool(extra.get("github_app_id") or extra.get("github_installation_id"))


def new_key_pair(*, comment: str) -> tuple[str, str]:
    """An ed25519 key pair in OpenSSH formats: (private key text, "ssh-ed25519 AAAA... comment")."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, f"{public.decode()} {comment}"
