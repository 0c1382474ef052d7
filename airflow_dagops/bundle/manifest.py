"""The live set the dagops-releases bundle serves, and its version id.

The live set is read from the state DB (deploy/live_set.py: every way a release goes live writes it in the
transaction that makes it live), one entry per namespace:

    {"repository": "team", "namespace": "team", "commit": "<sha>", "subdir": null, "ref": "refs/heads/main",
     "path": "<dagops_home>/releases/team/<sha>",    # the release folder on the machines that publish
     "airflowignore": "...",                          # the release's .airflowignore (dag_id clashes, skipped files)
     "meta": {...},                                   # namespace settings the cluster policy applies
     "url": "...", "conn_id": "..."}                  # where a machine without the folder fetches the commit

The version id hashes what decides the files Airflow parses and how (commit, subdir, .airflowignore, settings),
not where they are or how they are fetched, so every machine computes the same id for the same set, and
returning to an earlier set (a rollback) returns to its id.
"""

from __future__ import annotations

import hashlib
import json

from airflow_dagops.deploy import live_set
from airflow_dagops.store.db import read_connection

CONTENT_KEYS = ("repository", "namespace", "commit", "subdir", "airflowignore", "meta")
VERSION_LENGTH = 20  # hex digits of sha256: 80 bits, no collision among any realistic number of versions


def read_live_set() -> dict[str, dict]:
    """namespace -> entry for every namespace the state DB says is live (see the module doc), in one query."""
    with read_connection() as connection:
        return live_set.read(connection)


def version_of(entries: dict[str, dict]) -> str:
    """The version id of a live set: a hash of what decides the parsed files (see the module doc)."""
    content = {ns: _content(entry) for ns, entry in sorted(entries.items())}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return digest[:VERSION_LENGTH]


def changed(before: dict[str, dict], after: dict[str, dict]) -> list[str]:
    """The namespaces whose content differs between two live sets (new ones included, removed ones not: they
    have no commit to show)."""
    return sorted(ns for ns, entry in after.items() if _content(before.get(ns)) != _content(entry))


def _content(entry: dict | None) -> dict | None:
    return {key: entry.get(key) for key in CONTENT_KEYS} if entry is not None else None


def describe(entries: dict[str, dict]) -> str:
    """`team@1a2b3c4d5e6f, other@...`: what a version holds, in one line for logs."""
    return ", ".join(f"{ns}@{entry['commit'][:12]}" for ns, entry in sorted(entries.items())) or "nothing"
