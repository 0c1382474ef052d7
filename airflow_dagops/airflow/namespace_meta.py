"""What the cluster policy needs to know about a namespace, written where the dag-processor can read it
without a database: `<dagops_home>/namespaces/<namespace>.json`.

    {"repository": "company-workflows",      # tags dagops-repo:<repository>
     "access_control": {"data-eng": ["can_read", "can_edit"]},   # or null: Airflow's defaults
     "stage": "staging",                      # only for a promotion stage other than the last
     "dag_id_suffix": "__staging",            # appended to every dag_id there (no clash with prod)
     "paused": true}                          # new DAGs there start paused

Services write it whenever a namespace's repository settings or stage change (atomically: temp file +
rename); the policy caches it by modification time, so a change reaches the next parse without a restart.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from airflow_dagops import settings

_cache: dict[str, tuple[tuple[int, int, int], dict | None]] = {}


def meta_path(namespace: str) -> Path:
    return settings.dagops_home() / "namespaces" / f"{namespace}.json"


def write(namespace: str, meta: dict) -> None:
    path = meta_path(namespace)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(meta, sort_keys=True, indent=1))
    os.replace(tmp, path)


def remove(namespace: str) -> None:
    meta_path(namespace).unlink(missing_ok=True)


def read(namespace: str) -> dict | None:
    """The namespace's meta, or None when dagops wrote none (re-read only when the file changed)."""
    path = meta_path(namespace)
    try:
        stat = path.stat()
    except OSError:
        return None
    # Not the mtime alone: with coarse file timestamps two writes in one clock tick share it. Every write
    # renames a new file into place, so the inode (and usually the size) tells them apart.
    version = (stat.st_mtime_ns, stat.st_ino, stat.st_size)
    cached = _cache.get(namespace)
    if cached is not None and cached[0] == version:
        return cached[1]
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        meta = None
    _cache[namespace] = (version, meta if isinstance(meta, dict) else None)
    return _cache[namespace][1]


# A folder of the dagops-releases bundle (airflow_dagops/bundle/) keeps a copy of each namespace's meta as it was
# in that bundle version: a worker without dagops_home reads it there.
SNAPSHOT_DIR = ".dagops/namespaces"


def write_snapshot(root: Path, namespace: str, meta: dict | None) -> None:
    path = root / SNAPSHOT_DIR / f"{namespace}.json"
    if meta is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(meta, sort_keys=True))
    os.replace(tmp, path)


def read_snapshot(root: Path, namespace: str) -> dict | None:
    try:
        meta = json.loads((root / SNAPSHOT_DIR / f"{namespace}.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None
