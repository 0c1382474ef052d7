"""Temporary folders that name their owner, and the sweep that removes those a killed process left behind.

A process killed with SIGKILL (OOM killer, a task timeout, a node drained) runs no `finally`: its check trees,
package exports and sandbox homes stay on disk for ever. So dagops' temporary folders carry their owner in
their name, `<prefix><owner>.<pid>-<random>`, where `owner` is a short hash of the host, its boot and its PID
namespace (the `/proc/self/ns/pid` inode): a folder whose owner token is ours and whose pid is gone is a
leftover, and is removed. A pid is only meaningful inside one PID namespace of one boot of one host, and
`dagops_home` may be a volume shared by several machines or containers: a folder of another owner is never
judged by its pid, only by its age (untouched for `STALE_AFTER`, far longer than any operation of dagops).
Folders of older versions (no owner in the name) are judged by age too.

Where: `<dagops_home>/tmp/` (checks, package exports; the same file system as the releases, so hard links from
a live release work), and the system temp folder for the names listed in `SYSTEM_PREFIXES` (the validation
sandbox's home, a release's test run, a package being published), only those of our own uid.

`sweep()` never raises: cleanup must not fail what it runs before (a sync's sense step, a check).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from airflow_dagops import settings

log = logging.getLogger(__name__)

TMP_DIRNAME = "tmp"
# Untouched this long, a folder is a leftover whoever made it. Nothing dagops runs takes a day: a sync or a
# check is bounded by git_timeout, the import timeouts and the test timeouts, all minutes.
STALE_AFTER = 24 * 3600.0
# Temporary folders dagops makes in the system temp folder (structure.py, release_tests.py,
# marketplace package): only names starting with one of these are ever looked at there.
SYSTEM_PREFIXES = ("dagops-sandbox-", "dagops-test-", "dagops-package-", "dagops-publish-")
# Before `<dagops_home>/tmp/`, pull-request checks were exported into `<dagops_home>/checks/check-*`.
LEGACY_ROOTS = (("checks", "check-"),)
_OWNED = re.compile(r"(?P<owner>[0-9a-f]{10})\.(?P<pid>[0-9]+)-[^/]*$")


def temp_root() -> Path:
    """`<dagops_home>/tmp/`, created when missing."""
    root = settings.dagops_home() / TMP_DIRNAME
    root.mkdir(parents=True, exist_ok=True)
    return root


def owned_prefix(prefix: str) -> str:
    """`prefix` with this process's owner token and pid, for `tempfile.mkdtemp`/`TemporaryDirectory(prefix=...)`:
    `TemporaryDirectory(prefix=owned_prefix("dagops-sandbox-"))` makes a folder `sweep` can tell is in use."""
    return f"{prefix}{owner_token()}.{os.getpid()}-"


def make_temp_dir(prefix: str, *, root: Path | None = None) -> Path:
    """A new, empty folder named after its owner, under `root` (default `<dagops_home>/tmp/`)."""
    return Path(tempfile.mkdtemp(prefix=owned_prefix(prefix), dir=root or temp_root()))


@functools.cache
def owner_token() -> str:
    """Who can judge this process's pids: the same host, the same boot, the same PID namespace."""
    parts = [socket.gethostname(), _read("/proc/sys/kernel/random/boot_id")]
    with contextlib.suppress(OSError):
        parts.append(os.readlink("/proc/self/ns/pid"))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:10]


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return ""


def sweep(
    roots: Iterable[tuple[Path, tuple[str, ...] | None]] | None = None,
    *,
    max_age: float = STALE_AFTER,
    now: float | None = None,
) -> list[Path]:
    """Remove the temporary folders killed processes left; returns what was removed. `roots`: (folder, name
    prefixes to look at, None for every entry); default: `<dagops_home>/tmp/`, the legacy check folder, and
    the system temp folder for `SYSTEM_PREFIXES`. A folder in use is never removed: its owner's pid is alive,
    or (owner unknown here) it was touched within `max_age`."""
    removed: list[Path] = []
    now = time.time() if now is None else now
    try:
        targets = list(default_roots() if roots is None else roots)
    except Exception as err:  # a setting that cannot be read: cleanup is never worth failing the caller
        log.warning("could not look for leftover temporary folders: %s", err)
        return removed
    for root, prefixes in targets:
        for folder in _candidates(Path(root), prefixes):
            if _is_leftover(folder, now, max_age):
                log.info("removing %s: left behind by a process that is gone", folder)
                try:
                    shutil.rmtree(folder)
                except FileNotFoundError:  # another sweep got there first
                    continue
                except OSError as err:
                    log.warning("could not remove leftover %s: %s", folder, err)
                    continue
                removed.append(folder)
    return removed


def default_roots() -> list[tuple[Path, tuple[str, ...] | None]]:
    home = settings.dagops_home()
    roots: list[tuple[Path, tuple[str, ...] | None]] = [(home / TMP_DIRNAME, None)]
    roots += [(home / folder, (prefix,)) for folder, prefix in LEGACY_ROOTS]
    roots.append((Path(tempfile.gettempdir()), SYSTEM_PREFIXES))
    return roots


def _candidates(root: Path, prefixes: tuple[str, ...] | None) -> list[Path]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    except OSError as err:
        log.warning("could not list %s for leftover temporary folders: %s", root, err)
        return []
    uid = os.geteuid()
    found = []
    for name in names:
        if prefixes is not None and not name.startswith(prefixes):
            continue
        path = root / name
        try:
            info = os.lstat(path)
        except OSError:
            continue
        # Only real folders of our own: never a link (removing "through" it), never another user's.
        if stat.S_ISDIR(info.st_mode) and info.st_uid == uid:
            found.append(path)
    return found


def _is_leftover(folder: Path, now: float, max_age: float) -> bool:
    owned = _OWNED.search(folder.name)
    if owned and owned["owner"] == owner_token():
        return not pid_alive(int(owned["pid"]))
    return now - _last_touched(folder, now) > max_age


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists in our PID namespace (a zombie counts: it is not reaped yet)."""
    if pid <= 0:
        return True  # not a pid we wrote: never a reason to remove anything
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def _last_touched(folder: Path, now: float) -> float:
    """The newest modification time of the folder and of what it holds directly (a log being written, a file
    added). A folder we cannot read counts as touched now: removing what we cannot inspect is not our call."""
    try:
        newest = os.lstat(folder).st_mtime
        with os.scandir(folder) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    except OSError:
        return now
    return newest
