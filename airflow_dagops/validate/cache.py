"""A cache of per-file check results, keyed by (pipeline version, check, file content, rule config,
environment): a release that changes 1 file of 500 re-checks 1 file.

One SQLite file (stdlib sqlite3, WAL) so parallel syncs of different repositories can share it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import sqlite3
import sys
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

PIPELINE_VERSION = "2"  # 2: structure results carry task_ids


@functools.lru_cache(maxsize=1)
def environment_fingerprint() -> str:
    """What the checks' answers depend on besides the file: Python and every installed distribution."""
    dists = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions())
    raw = "\n".join([sys.version, *dists])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def cache_key(check: str, content: str, *extra: str) -> str:
    raw = "|".join([PIPELINE_VERSION, check, content, environment_fingerprint(), *extra])
    return hashlib.sha256(raw.encode()).hexdigest()


class ResultCache:
    """get_many/put_many of JSON-able values; a cache that cannot be opened degrades to no cache."""

    def __init__(self, path: Path | None):
        self._db = None
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS result (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        except sqlite3.Error as err:
            log.warning("validation cache %s unavailable (%s); validating without it", path, err)
            self._db = None

    def get_many(self, keys: Iterable[str]) -> dict[str, object]:
        keys = list(keys)
        if self._db is None or not keys:
            return {}
        found = {}
        for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in self._db.execute(f"SELECT key, value FROM result WHERE key IN ({marks})", chunk):  # noqa: S608 - only placeholders
                found[key] = json.loads(value)
        return found

    def put_many(self, items: dict[str, object]) -> None:
        if self._db is None or not items:
            return
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR REPLACE INTO result (key, value) VALUES (?, ?)",
                    [(key, json.dumps(value)) for key, value in items.items()],
                )
        except sqlite3.Error as err:
            log.warning("could not write the validation cache: %s", err)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
