"""The live set the dagops-releases bundle serves, and its version id.

The live set is read from the namespace links in `<dagops_home>/live` (every way a release goes live ends in a
link swap there: sync, deploy, rollback, pin, promotion stages), one entry per namespace:

    {"repository": "team", "namespace": "team", "commit": "<sha>", "subdir": null, "ref": "refs/heads/main",
     "path": "<dagops_home>/releases/team/<sha>",    # the release folder on the machine that published it
     "airflowignore": "...",                          # the release's .airflowignore (dag_id clashes, skipped files)
     "meta": {...},                                   # namespace settings the cluster policy applies
     "url": "...", "conn_id": "..."}                  # where a worker without the folder fetches the commit

The version id hashes what decides the files Airflow parses and how (commit, subdir, .airflowignore, settings),
not where they are or how they are fetched, so every machine computes the same id for the same set, and
returning to an earlier set (a rollback) returns to its id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from sqlalchemy import select

from airflow_dagops.airflow import namespace_meta
from airflow_dagops.release_manifest import read_manifest
from airflow_dagops.store.db import read_connection
from airflow_dagops.store.models import Repository

log = logging.getLogger(__name__)

CONTENT_KEYS = ("repository", "namespace", "commit", "subdir", "airflowignore", "meta")
VERSION_LENGTH = 20  # hex digits of sha256: 80 bits, no collision among any realistic number of versions


def read_live_set(live: Path) -> dict[str, dict]:
    """namespace -> entry for every namespace link in `live` that leads to a release (see the module doc).
    Entries carry no `url`/`conn_id` yet: `with_sources` adds them, once, for a set that is new."""
    try:
        names = sorted(os.listdir(live))
    except FileNotFoundError:
        return {}
    entries: dict[str, dict] = {}
    for name in names:
        if name.startswith("."):
            continue  # a publish's temp link, before its rename
        link = live / name
        if not link.is_symlink():
            log.warning("%s is not a namespace link; the dagops-releases bundle leaves it out", link)
            continue
        target = os.readlink(link)
        release = _release_of(target)
        if release is None:
            log.warning("%s leads to %s, which is not a complete release; left out", link, target)
            continue
        entries[name] = {
            **release,
            "path": target,
            "airflowignore": _read_text(Path(target) / ".airflowignore"),
            "meta": namespace_meta.read(name),
        }
    return entries


def with_sources(entries: dict[str, dict]) -> dict[str, dict]:
    """The entries with where each repository's commits come from (its URL and connection), read from the
    registry in one query. A repository removed meanwhile keeps no source: its link is gone by now too."""
    names = {entry["repository"] for entry in entries.values()}
    if not names:
        return entries
    with read_connection() as connection:
        rows = connection.execute(
            select(Repository.name, Repository.url, Repository.conn_id).where(Repository.name.in_(names))
        ).all()
    sources = {name: {"url": url, "conn_id": conn_id} for name, url, conn_id in rows}
    return {ns: {**entry, **sources.get(entry["repository"], {})} for ns, entry in entries.items()}


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


_RELEASES: dict[str, dict] = {}


def _release_of(release_dir: str) -> dict | None:
    """Which repository and commit a release folder holds. Release folders never change what they hold, so a
    found answer is kept by folder (a folder that is not a complete release yet is asked again next time)."""
    known = _RELEASES.get(release_dir)
    if known is not None:
        return known
    manifest = read_manifest(Path(release_dir))
    if not manifest or not manifest.get("commit") or not manifest.get("repository"):
        return None
    if len(_RELEASES) > 4096:
        _RELEASES.clear()
    _RELEASES[release_dir] = {
        "repository": manifest["repository"],
        "namespace": manifest.get("namespace"),
        "commit": manifest["commit"],
        "subdir": manifest.get("subdir"),
        "ref": manifest.get("ref"),
    }
    return _RELEASES[release_dir]


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return None
