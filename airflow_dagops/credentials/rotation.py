"""Rotate a repository's credentials: a new ed25519 deploy key or a new token, verified before use.

The flow is two steps so a person can add the new public key at the Git host in between: `start_rotation`
(or `start_token_rotation`) makes a pending copy of the connection with the new secret; `confirm_rotation`
polls access with it and only then switches the repository (credentials/connections.py keeps the pending
copy and retires the old connection). `rotate` runs both for the CLI. On any failure the repository keeps
its old connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from airflow_dagops.airflow.connections import delete_connection, find_connection
from airflow_dagops.credentials.access import AccessResult, probe
from airflow_dagops.credentials.common import (
    HTTP_TRANSPORTS,
    SSH_TRANSPORTS,
    RepoTarget,
    host_of,
    load_target,
    utc_now,
)
from airflow_dagops.credentials.connections import (
    create_pending,
    delete_pending_quietly,
    delete_unless_in_use,
    finish_pending,
    pending_marker,
    retire_old,
)
from airflow_dagops.credentials.deploy_keys import KEY_EXTRAS, is_github_app, new_key_pair
from airflow_dagops.errors import Conflict, InvalidInput, NotFound, RotationFailed
from airflow_dagops.git.credentials import attaching, check_credential_host
from airflow_dagops.repositories.registry import update_repository
from airflow_dagops.safety import url_scheme

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 0.5


@dataclass
class PendingRotation:
    """A new connection waiting for its key to be authorized; `rotation_id` is its connection id."""

    repository: str
    rotation_id: str
    conn_id: str
    replaces: str
    kind: str  # "ssh_key" or "token"
    public_key: str | None
    host: str
    instructions: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RotationOutcome:
    repository: str
    status: str  # "switched" or "aborted"
    conn_id: str  # the connection the repository uses now
    new_conn_id: str
    old_conn_id: str
    old_conn_removed: bool = False
    note: str | None = None  # what is left for a person to do (an old connection that lives elsewhere)
    access: AccessResult | None = None
    public_key: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["access"] = self.access.to_dict() if self.access else None
        return data


def rotate(
    name: str,
    *,
    actor: str,
    new_token: str | None = None,
    wait: float = 0.0,
    keep_old: bool = False,
    on_public_key: Callable[[PendingRotation], None] | None = None,
    progress: Callable[[str], None] | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> RotationOutcome:
    """Rotate the repository's credentials in one go (the CLI's flow).

    SSH: a new ed25519 key pair goes into a new connection; `on_public_key` shows the public key to the
    person who adds it as a deploy key (and may block until they did); access is then polled for up to
    `wait` seconds. Token (`new_token`): a new connection with the new token is verified the same way.
    Either way the repository then switches to the new connection and the old one is deleted when dagops
    may (see `confirm_rotation`). On any failure or interruption the new connection is deleted and the
    repository keeps the old one.
    """
    progress = progress or (lambda _line: None)
    if new_token is not None:
        pending = start_token_rotation(name, new_token, actor=actor)
    else:
        pending = start_rotation(name, actor=actor)
    progress(f"created connection {pending.conn_id} (a copy of {pending.replaces} with the new {_what(pending)})")
    try:
        if on_public_key is not None and pending.public_key:
            on_public_key(pending)
        progress(f"checking access with {pending.conn_id}" + (f" (waiting up to {wait:.0f} s)" if wait else ""))
        return confirm_rotation(
            name,
            pending.rotation_id,
            actor=actor,
            wait=wait,
            keep_old=keep_old,
            abort_on_failure=True,
            poll_interval=poll_interval,
            progress=progress,
        )
    except BaseException:
        # Whatever happened (no access, Ctrl-C, a DB error), the repository must keep what works.
        delete_unless_in_use(name, pending.conn_id)
        raise


def _what(pending: PendingRotation) -> str:
    return "SSH key" if pending.kind == "ssh_key" else "token"


def start_rotation(name: str, *, actor: str) -> PendingRotation:
    """Step 1 of an SSH key rotation: a new key pair in a new connection. Nothing changes for the
    repository yet; its public key must be added as a deploy key, then `confirm_rotation` switches."""
    repo, old = _rotatable(name)
    transport = url_scheme(repo.url)
    if transport in HTTP_TRANSPORTS:
        raise InvalidInput(
            f"{name!r} is fetched over {transport}, not SSH: rotate its token with "
            f"`dagops credentials rotate {name} --token-file FILE` (or `-` for stdin)"
        )
    if transport not in SSH_TRANSPORTS:
        raise InvalidInput(f"{name!r} is fetched over {transport}: only SSH keys and https tokens can be rotated")
    private, public = new_key_pair(comment=f"dagops-{name}-{utc_now():%Y%m%d}")
    extra = {k: v for k, v in old.extra_dejson.items() if k not in KEY_EXTRAS}
    extra["private_key"] = private
    new_id = create_pending(repo, old, actor=actor, extra=extra, password=old.password)
    host = host_of(repo.url)
    return PendingRotation(
        repository=name,
        rotation_id=new_id,
        conn_id=new_id,
        replaces=old.conn_id,
        kind="ssh_key",
        public_key=public,
        host=host,
        instructions=(
            f"Add this public key as a deploy key with read access at {host} (repository settings → Deploy keys), "
            "then confirm the rotation: dagops verifies access with the new key before switching."
        ),
    )


def start_token_rotation(name: str, token: str, *, actor: str) -> PendingRotation:
    """Step 1 of a token rotation: a copy of the connection holding the new token."""
    repo, old = _rotatable(name)
    token = (token or "").strip()
    if not token:
        raise InvalidInput("the new token is empty: give it on stdin or in the --token-file")
    transport = url_scheme(repo.url)
    if transport in SSH_TRANSPORTS:
        raise InvalidInput(
            f"{name!r} is fetched over SSH: tokens are for https; rotate its SSH key with "
            f"`dagops credentials rotate {name}` (no --token-file)"
        )
    if transport not in HTTP_TRANSPORTS:
        raise InvalidInput(f"{name!r} is fetched over {transport}: only SSH keys and https tokens can be rotated")
    new_id = create_pending(repo, old, actor=actor, extra=dict(old.extra_dejson), password=token)
    return PendingRotation(
        repository=name,
        rotation_id=new_id,
        conn_id=new_id,
        replaces=old.conn_id,
        kind="token",
        public_key=None,
        host=host_of(repo.url),
        instructions="Confirm the rotation: dagops verifies access with the new token before switching.",
    )


def confirm_rotation(
    name: str,
    rotation_id: str,
    *,
    actor: str,
    wait: float = 0.0,
    keep_old: bool = False,
    abort_on_failure: bool = False,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    progress: Callable[[str], None] | None = None,
) -> RotationOutcome:
    """Step 2: verify access with the pending connection (polling up to `wait` seconds), then switch the
    repository to it and delete the old connection when it lives in the metadata DB and no other
    repository uses it. If access never works: RotationFailed, and the repository keeps its connection
    (the pending one is kept for another try, or deleted with `abort_on_failure`)."""
    progress = progress or (lambda _line: None)
    marker = pending_marker(rotation_id)
    if marker is None or marker.get("repository") != name:
        raise NotFound(f"no pending credential rotation {rotation_id!r} for repository {name!r}; start one first")
    repo = load_target(name)
    old_id = marker["replaces"]
    if repo.conn_id != old_id:
        delete_pending_quietly(rotation_id)
        raise Conflict(
            f"the connection of {name!r} changed to {repo.conn_id!r} since this rotation started (it replaced "
            f"{old_id!r}); the rotation was cancelled: start a new one"
        )
    # The pending connection is a copy of the old one: it may go where the old one is attached, nowhere else.
    check_credential_host(old_id, repo.url)
    with attaching(rotation_id, repo.url):
        access = _wait_for_access(repo, rotation_id, wait=wait, poll_interval=poll_interval)
    if not access.ok:
        if abort_on_failure:
            delete_pending_quietly(rotation_id)
        kept = "the new connection was deleted" if abort_on_failure else f"{rotation_id!r} is kept for another try"
        raise RotationFailed(
            f"the new credentials do not work ({access.kind.replace('_', ' ')}): {access.message.rstrip('.')}. "
            f"{name!r} keeps its connection {old_id!r}; {kept}.",
            access=access,
            rotation_id=rotation_id,
            pending_kept=not abort_on_failure,
        )
    progress(f"access verified with {rotation_id} ({access.latency:.2f} s)")
    try:
        update_repository(name, conn_id=rotation_id, verify=False)  # verified just above
    except BaseException:
        delete_unless_in_use(name, rotation_id)
        raise
    finish_pending(rotation_id, marker, actor=actor)
    log.info("%s rotated the credentials of %s: %s replaces %s", actor, name, rotation_id, old_id)
    progress(f"{name} now uses {rotation_id}")
    removed, note = retire_old(old_id, name, keep_old=keep_old)
    if removed:
        progress(f"removed the old connection {old_id}")
    return RotationOutcome(
        repository=name,
        status="switched",
        conn_id=rotation_id,
        new_conn_id=rotation_id,
        old_conn_id=old_id,
        old_conn_removed=removed,
        note=note,
        access=access,
        public_key=access.public_key,
    )


def abort_rotation(name: str, rotation_id: str) -> RotationOutcome:
    """Give up a pending rotation: its connection is deleted; the repository never used it."""
    marker = pending_marker(rotation_id)
    if marker is None or marker.get("repository") != name:
        raise NotFound(f"no pending credential rotation {rotation_id!r} for repository {name!r}")
    delete_connection(rotation_id)
    repo = load_target(name)
    return RotationOutcome(
        repository=name,
        status="aborted",
        conn_id=repo.conn_id or "",
        new_conn_id=rotation_id,
        old_conn_id=marker["replaces"],
        note=f"the pending connection {rotation_id!r} was deleted; {name!r} keeps {repo.conn_id!r}",
    )


def _wait_for_access(repo: RepoTarget, conn_id: str, *, wait: float, poll_interval: float) -> AccessResult:
    """Poll until the new credentials work: a deploy key added on a Git host may take a moment to apply."""
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        result = probe(repo, conn_id)
        if result.ok or time.monotonic() + poll_interval > deadline:
            return result
        time.sleep(poll_interval)


def _rotatable(name: str):
    repo = load_target(name)
    if not repo.conn_id:
        raise Conflict(
            f"{name!r} uses no Airflow connection, so there is nothing to rotate: create a connection of type "
            "'git' and set it as the repository's conn_id (see docs/credentials.md)"
        )
    check_credential_host(repo.conn_id, repo.url)  # a copy of credentials that may not go there would not either
    old = find_connection(repo.conn_id)
    if old is None:
        raise NotFound(f"the Airflow connection {repo.conn_id!r} of {name!r} does not exist (or cannot be read)")
    if is_github_app(old):
        raise InvalidInput(
            f"connection {repo.conn_id!r} authenticates as a GitHub App, which mints its own short-lived tokens: "
            "rotate the App's private key in GitHub's App settings and update the connection's private_key"
        )
    return repo, old
