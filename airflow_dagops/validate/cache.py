"""A cache of per-file check results, keyed by (pipeline version, check, file path and content, rule config,
environment, and whatever else decides the check's answer): a release that changes 1 file of 500 re-checks 1 file.

One SQLite file (stdlib sqlite3, WAL) so parallel syncs of different repositories can share it.

What is stored is relative to the file it was computed for: a finding loses its `file` (re-attached on read, from the
file being checked) and the release root in its text (so a cached message never names another run's folder). The
pipeline reports a fresh result through the same round trip, so a cached run and an uncached run report alike.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import sqlite3
import sys
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path

from airflow_dagops.validate.report import Finding

log = logging.getLogger(__name__)

# 3: keys name the file's path and what else decides a finding; entries are stored relative to the file and root.
# 5: bandit errors in vendored code are warnings; files skipped by safe mode are no DAG files.
PIPELINE_VERSION = "5"


@functools.lru_cache(maxsize=1)
def environment_fingerprint() -> str:
    """What the checks' answers depend on besides the file: Python and every installed distribution."""
    dists = sorted(name_and_version(d) for d in importlib.metadata.distributions())
    raw = "\n".join([sys.version, *dists])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def name_and_version(dist: importlib.metadata.Distribution) -> str:
    """`Name==Version` of a distribution, from its metadata's header lines.

    What `dist.metadata['Name']` and `dist.version` say, without their email parser: it reads every long description
    too, about 0.15 s of CPU over an Airflow installation's few hundred distributions, paid by the first validation of
    each process (a sync task's) before its sandbox can start. Metadata without both lines goes to the parser."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the headers end at the first empty line; the description follows
        field, colon, value = line.partition(":")
        if colon and not field[:1].isspace() and field.strip().lower() in ("name", "version"):
            found.setdefault(field.strip().lower(), value.strip())
    if len(found) < 2:
        return f"{dist.metadata['Name']}=={dist.version}"
    return f"{found['name']}=={found['version']}"


def cache_key(check: str, *parts: str) -> str:
    # JSON, not a joined string: a file name containing the separator cannot make two different keys equal.
    raw = json.dumps([PIPELINE_VERSION, check, environment_fingerprint(), *parts])
    return hashlib.sha256(raw.encode()).hexdigest()


def root_pattern(root: Path) -> re.Pattern[str]:
    """Matches the release root as it may start a path in a message: as given, absolute, or with links resolved."""
    spellings = {str(Path(root).absolute()), os.path.abspath(root), os.path.realpath(root)}
    alternatives = "|".join(re.escape(s) for s in sorted(spellings, key=len, reverse=True))
    # `root/` starts a path inside the release; a bare `root` (not followed by more of a name) is the release itself.
    return re.compile(f"(?:{alternatives})(?:/|(?![\\w.-]))")


def without_root(finding: Finding, root_paths: re.Pattern[str]) -> Finding:
    """The finding with paths inside the release written relative to it (`/x/release/dags/a.py` -> `dags/a.py`)."""

    def relative(text: str) -> str:
        return root_paths.sub(lambda m: "" if m.group().endswith("/") else ".", text)

    hint = None if finding.hint is None else relative(finding.hint)
    return replace(finding, message=relative(finding.message), hint=hint)


def stored_finding(finding: Finding) -> dict:
    """A finding about one file, as the cache keeps it: without its file (the key names the file)."""
    item = asdict(finding)
    del item["file"]
    return item


def loaded_finding(item: dict, file: str) -> Finding:
    return Finding(**item, file=file)


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

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def get_many(self, keys: Iterable[str]) -> dict[str, object]:
        keys = list(keys)
        if self._db is None or not keys:
            return {}
        found = {}
        try:
            for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, value in self._db.execute(f"SELECT key, value FROM result WHERE key IN ({marks})", chunk):  # noqa: S608 - only placeholders
                    found[key] = json.loads(value)
        except (sqlite3.Error, ValueError) as err:
            # A miss only costs a check again; answering from a cache that cannot be read could cost the answer.
            log.warning("could not read the validation cache (%s); checking without it", err)
            return {}
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
