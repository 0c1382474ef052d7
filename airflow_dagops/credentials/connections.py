"""Airflow connections that credentials work creates and retires: new git connections, the pending copy
of a rotation, and the old connection once nothing uses it.

Rotation never leaves a repository without working credentials: the new secret goes into a NEW connection
(marked pending in its description), access is verified with it, and only then does the repository switch
to it; on any failure the repository keeps its old connection and the new one is deleted. Rows are read and
written through airflow/connections.py, the one place dagops touches Airflow connections.
"""

from __future__ import annotations

import json
import logging
import re

from sqlalchemy import or_, select

from airflow_dagops.airflow.connections import (
    add_connection,
    conn_ids_described,
    connection_origin,
    delete_connection,
    describe_connection,
    description_of,
    stored_conn_ids,
    use_server_secrets_chain,
)
from airflow_dagops.credentials.common import RepoTarget, load_target, utc_now
from airflow_dagops.credentials.deploy_keys import new_key_pair
from airflow_dagops.errors import Conflict, DagOpsError, InvalidInput
from airflow_dagops.repositories.registry import validate_conn_id
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Repository

log = logging.getLogger(__name__)

PENDING_MARK = "dagops: pending credential rotation "
ROTATED_SUFFIX = re.compile(r"_rotated_\d{14}(_\d+)?$")
origin_of = connection_origin  # where a connection lives decides whether dagops may delete it


def create_connection(
    conn_id: str | None,
    *,
    kind: str,
    actor: str,
    host: str | None = None,
    login: str | None = None,
    token: str | None = None,
    description: str | None = None,
) -> dict:
    """Create an Airflow connection of type git in the metadata DB (what `airflow connections add` does):
    `kind="token"` stores the given token as its password; `kind="ssh_key"` generates an ed25519 key pair
    and keeps the private key in the connection. Answers the id and, for a key, the public half only."""
    conn_id = validate_conn_id(conn_id)
    if not conn_id:
        raise InvalidInput("a connection id is required")
    if kind == "token" and not token:
        raise InvalidInput("a token connection needs the token (it is stored in the connection's password)")
    if kind not in ("token", "ssh_key"):
        raise InvalidInput(f"unknown kind {kind!r}; one of token, ssh_key")
    public_key = None
    extra: dict = {}
    if kind == "ssh_key":
        private, public_key = new_key_pair(comment=f"dagops:{conn_id}")
        extra = {"private_key": private}
    use_server_secrets_chain()
    if origin_of(conn_id) != "missing":
        raise Conflict(f"a connection named {conn_id!r} already exists; pick another id or use it as it is")
    add_connection(
        doing="create the connection",
        conn_id=conn_id,
        conn_type="git",
        host=host or None,
        login=login or None,
        password=token if kind == "token" else None,
        extra=json.dumps(extra) if extra else None,
        description=description or f"created by {actor} through dagops",
    )
    log.info("%s created git connection %s (%s)", actor, conn_id, kind)
    return {"conn_id": conn_id, "conn_type": "git", "kind": kind, "public_key": public_key}


def create_pending(repo: RepoTarget, old, *, actor: str, extra: dict, password: str | None) -> str:
    """Write the pending copy of `old` holding the new secret into Airflow's metadata DB, marked with the
    repository and the connection it replaces; answers its id."""
    abandon_other_pendings(repo.name)
    marker = {
        "repository": repo.name,
        "replaces": old.conn_id,
        "actor": actor,
        "started_at": utc_now().isoformat(timespec="seconds"),
    }
    new_id = _free_rotated_id(old.conn_id)
    add_connection(
        doing="create the new connection",
        conn_id=new_id,
        conn_type=old.conn_type or "git",
        description=PENDING_MARK + json.dumps(marker),
        host=old.host,
        login=old.login,
        password=password,
        schema=old.schema,
        port=old.port,
        extra=json.dumps(extra),
    )
    log.info("created connection %s for the credential rotation of %s (replaces %s)", new_id, repo.name, old.conn_id)
    return new_id


def _free_rotated_id(old_id: str) -> str:
    """`<old id>_rotated_<UTC stamp>` (a rotated id loses its old stamp), numbered when taken: readable in
    Airflow's connection list, and never overwriting a connection."""
    base = ROTATED_SUFFIX.sub("", old_id)[:200]
    stamp = utc_now().strftime("%Y%m%d%H%M%S")
    candidates = [f"{base}_rotated_{stamp}", *(f"{base}_rotated_{stamp}_{n}" for n in range(2, 100))]
    taken = stored_conn_ids(candidates)
    return next(candidate for candidate in candidates if candidate not in taken)


def pending_marker(conn_id: str) -> dict | None:
    """The marker of a pending rotation connection ({"repository", "replaces", ...}), None for any other."""
    description = description_of(conn_id)
    if not description or not description.startswith(PENDING_MARK):
        return None
    try:
        marker = json.loads(description[len(PENDING_MARK) :])
    except ValueError:
        return None
    return marker if isinstance(marker, dict) and {"repository", "replaces"} <= set(marker) else None


def finish_pending(conn_id: str, marker: dict, *, actor: str) -> None:
    """The switch is done: the connection is no longer pending; its description says whose it is and why."""
    description = (
        f"dagops: credentials of repository {marker['repository']!r}, rotated from {marker['replaces']!r} "
        f"by {actor} at {utc_now().isoformat(timespec='seconds')}"
    )
    try:
        describe_connection(conn_id, description)
    except DagOpsError as err:  # only a label: the switch is done, so log it and go on
        log.warning("could not update the description of %s: %s", conn_id, err)


def abandon_other_pendings(name: str) -> None:
    """One pending rotation per repository: starting again drops the previous, never-used one."""
    for conn_id in conn_ids_described(PENDING_MARK):
        marker = pending_marker(conn_id)
        if marker and marker.get("repository") == name:
            log.info("dropping the unfinished rotation %s of %s", conn_id, name)
            delete_pending_quietly(conn_id)


def retire_old(old_id: str, name: str, *, keep_old: bool) -> tuple[bool, str | None]:
    """Delete the old connection when dagops may; otherwise say what is left for a person to do."""
    if keep_old:
        return False, f"the old connection {old_id!r} was kept (--keep-old); delete it once nothing uses it"
    users = _repositories_using(old_id)
    if users:
        return False, f"the old connection {old_id!r} was kept: repositories {', '.join(users)} still use it"
    where = origin_of(old_id)
    if where == "environment":
        return False, (
            f"the old connection {old_id!r} comes from the environment variable AIRFLOW_CONN_{old_id.upper()}, which "
            "dagops cannot delete: remove it from every Airflow machine's environment"
        )
    if where.startswith("secrets backend"):
        return False, f"the old connection {old_id!r} lives in the {where}, which dagops cannot write: delete it there"
    if where != "metadata_db":
        return False, None
    try:
        delete_connection(old_id)
    except DagOpsError as err:  # the switch is done: a leftover connection is logged, not raised
        log.warning("could not delete the old connection %s: %s", old_id, err)
        return False, f"the old connection {old_id!r} could not be deleted ({err}); delete it by hand"
    log.info("deleted the old connection %s of %s", old_id, name)
    return True, None


def _repositories_using(conn_id: str) -> list[str]:
    """Repositories whose fetches or webhooks use `conn_id`: while any does, it is not deleted."""
    with session_scope() as session:
        return list(
            session.scalars(
                select(Repository.name)
                .where(or_(Repository.conn_id == conn_id, Repository.webhook_conn_id == conn_id))
                .order_by(Repository.name)
            )
        )


def delete_unless_in_use(name: str, conn_id: str) -> None:
    """After a failure: delete the new connection, unless the switch to it did happen after all."""
    try:
        in_use = load_target(name).conn_id == conn_id
    except Exception:  # cannot tell: keeping an unused connection is harmless, deleting a used one is not
        log.warning("could not check whether %s uses %s; left it in place", name, conn_id)
        return
    if not in_use:
        delete_pending_quietly(conn_id)


def delete_pending_quietly(conn_id: str) -> None:
    """Cleanup on a failure path: never hide the original error behind a cleanup error."""
    try:
        delete_connection(conn_id)
        log.info("deleted the unused connection %s", conn_id)
    except Exception as err:
        log.warning("could not delete the unused connection %s (%s); delete it by hand", conn_id, type(err).__name__)
