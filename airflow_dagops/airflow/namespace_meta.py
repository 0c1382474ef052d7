"""What the cluster policy needs to know about a namespace, written where the dag-processor can read it
without a database: `<dagops_home>/namespaces/<namespace>.json`.

    {"repository": "company-workflows",      # tags dagops-repo:<repository>
     "access_control": {"data-eng": ["can_read", "can_edit"]},   # or null: Airflow's defaults
     "stage": "staging",                      # only for a promotion stage other than the last
     "dag_id_suffix": "__staging",            # appended to every dag_id there (no clash with prod)
     "paused": true}                          # new DAGs there start paused

Services write it whenever a namespace's repository settings or stage change (atomically: temp file +
rename); the policy caches it by modification time, so a change reaches the next parse without a restart.

A/B experiments (airflow_dagops/experiments) keep their part in a file of their own,
`<dagops_home>/experiments/<namespace>.json` (`{"<dag_id>": {"id": 3, "variant": "A"}}`), so that rewriting the
namespace's settings (every go-live does) never drops it; `read` returns the two merged, under "experiments".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from airflow_dagops import settings

_cache: dict[str, tuple[tuple[int, int, int], dict | None]] = {}


def meta_path(namespace: str) -> Path:
    return settings.dagops_home() / "namespaces" / f"{namespace}.json"


def experiments_path(namespace: str) -> Path:
    return settings.dagops_home() / "experiments" / f"{namespace}.json"


def write(namespace: str, meta: dict) -> None:
    _write_json(meta_path(namespace), meta)


def write_experiments(namespace: str, experiments: dict) -> None:
    """The namespace's DAGs in A/B experiments (dag_id -> {"id", "variant"}); none: the file goes."""
    if experiments:
        _write_json(experiments_path(namespace), experiments)
    else:
        experiments_path(namespace).unlink(missing_ok=True)


def _write_json(path: Path, value: dict) -> None:
    text = json.dumps(value, sort_keys=True, indent=1)
    try:
        if path.read_text() == text:
            return  # unchanged (every go-live writes it): a rename over the file would cost a sync milliseconds
    except (OSError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def remove(namespace: str) -> None:
    meta_path(namespace).unlink(missing_ok=True)


def read(namespace: str) -> dict | None:
    """The namespace's meta, or None when dagops wrote none (re-read only when the file changed), with its A/B
    experiments merged in."""
    meta = _read_cached(meta_path(namespace))
    experiments = _read_cached(experiments_path(namespace))
    if not experiments:
        return meta
    return {**(meta or {}), "experiments": {**(meta or {}).get("experiments", {}), **experiments}}


def _read_cached(path: Path) -> dict | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    # Not the mtime alone: with coarse file timestamps two writes in one clock tick share it. Every write
    # renames a new file into place, so the inode (and usually the size) tells them apart.
    version = (stat.st_mtime_ns, stat.st_ino, stat.st_size)
    key = str(path)
    cached = _cache.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        meta = None
    _cache[key] = (version, meta if isinstance(meta, dict) else None)
    return _cache[key][1]


# A folder of the dagops-releases bundle (airflow_dagops/bundle/) keeps a copy of each namespace's meta as it was
# in that bundle version: a worker without dagops_home reads it there.
SNAPSHOT_DIR = ".dagops/namespaces"


def write_snapshot(root: Path, namespace: str, meta: dict | None, *, unread: bool = False) -> None:
    """`unread`: `root` is a folder no one reads yet (a bundle version being built, renamed into place whole), so
    the file is written in place, without a temp file and a rename."""
    path = root / SNAPSHOT_DIR / f"{namespace}.json"
    if meta is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(meta, sort_keys=True)
    if unread:
        path.write_text(text)
        return
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_snapshot(root: Path, namespace: str) -> dict | None:
    try:
        meta = json.loads((root / SNAPSHOT_DIR / f"{namespace}.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None
