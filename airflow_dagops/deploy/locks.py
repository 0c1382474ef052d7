"""Per-repository file locks: two syncs of one repository never interleave; different ones run in parallel.

`filelock` uses flock(2), which the kernel releases when the holder dies, so a SIGKILLed sync never
leaves a lock behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from airflow_dagops.errors import LockBusy


@contextmanager
def repository_lock(locks_dir: Path, name: str, *, timeout: float) -> Iterator[None]:
    locks_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(locks_dir / f"{name}.lock"))
    try:
        lock.acquire(timeout=timeout)
    except Timeout as err:
        raise LockBusy(
            f"another sync of {name!r} has held its lock for over {timeout:.0f}s; wait for it to finish "
            "(see [dagops] lock_timeout)"
        ) from err
    try:
        yield
    finally:
        lock.release()
