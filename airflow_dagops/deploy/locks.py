"""Per-repository locks: two syncs of one repository never interleave; different ones run in parallel.

Where the lock lives follows where every machine that may take it can see it:

- a PostgreSQL state DB (several machines run dagops tasks): a session-level advisory lock, held by a connection
  of its own that does nothing else. When the holder dies (SIGKILL, a crashed machine), its connection closes
  and PostgreSQL releases the lock: a killed holder never leaves a lock behind. TCP keepalives bound how long a
  machine that vanished without closing its socket keeps it (about 30 s). The key is a hash of the lock's name
  and the database (schema included), so two installations sharing a server never contend.
- SQLite (one machine): a file lock in `<dagops_home>/locks`. `filelock` uses flock(2), which the kernel
  releases when the holder dies.

Either way the lock is not reentrant: taking a lock the same process already holds waits like anyone else.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from airflow_dagops import settings
from airflow_dagops.errors import LockBusy, StateDBUnavailable
from airflow_dagops.safety import redact

# How long a machine that vanished without closing its connection keeps its locks: the server probes an idle
# connection after 10 s, then every 5 s, and gives up after 4 unanswered probes.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 4}
_LOCK_TIMEOUT_SQLSTATE = "55P03"  # lock_not_available: `lock_timeout` expired while waiting

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


@contextmanager
def repository_lock(locks_dir: Path, name: str, *, timeout: float) -> Iterator[None]:
    url = settings.sql_alchemy_conn()
    if make_url(url).get_backend_name() == "postgresql":
        with _advisory_lock(url, name, timeout=timeout):
            yield
        return
    with file_lock(locks_dir, name, timeout=timeout):
        yield


def _busy(name: str, timeout: float) -> LockBusy:
    return LockBusy(
        f"another sync of {name!r} has held its lock for over {timeout:.0f}s; wait for it to finish "
        "(see [dagops] lock_timeout)"
    )


@contextmanager
def file_lock(locks_dir: Path, name: str, *, timeout: float) -> Iterator[None]:
    locks_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(locks_dir / f"{name}.lock"))
    try:
        lock.acquire(timeout=timeout)
    except Timeout as err:
        raise _busy(name, timeout) from err
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _advisory_lock(url: str, name: str, *, timeout: float) -> Iterator[None]:
    key = lock_key(url, name)
    try:
        connection = _engine(url).connect()
    except OperationalError as err:
        raise StateDBUnavailable(
            f"cannot take the lock of {name!r} in the dagops state DB at {redact(url)}: "
            f"{str(err.orig).strip().splitlines()[0] if err.orig else err}"
        ) from err
    try:
        # Waiting in the server (not polling) hands the lock over the moment it is released; lock_timeout bounds
        # the wait. Autocommit: no transaction stays open while the lock is held.
        connection.execute(text(f"SET lock_timeout = {max(1, int(timeout * 1000))}"))
        try:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        except OperationalError as err:
            if getattr(err.orig, "pgcode", None) == _LOCK_TIMEOUT_SQLSTATE:
                raise _busy(name, timeout) from err
            raise
        try:
            yield
        finally:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            except OperationalError:
                pass  # the connection is gone, and the server released the lock with it
    finally:
        connection.close()  # NullPool: the session ends, and with it any lock it still held


def lock_key(url: str, name: str) -> int:
    """A signed 64-bit advisory lock key for `name` in the database (and schema) `url` names."""
    parsed = make_url(url)
    where = f"{parsed.host}:{parsed.port}/{parsed.database}?{sorted(parsed.query.items())}"
    digest = hashlib.sha256(f"dagops-lock\0{where}\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _engine(url: str) -> Engine:
    """One engine per state DB for locks alone, without a pool: closing a lock's connection must end its
    session (a pooled connection would keep the session, and a lock left in it, alive)."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            libpq = make_url(url).get_driver_name() in ("psycopg2", "psycopg")  # other drivers take no keepalives
            engine = create_engine(
                url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=_KEEPALIVES if libpq else {}
            )
            _engines[url] = engine
        return engine
