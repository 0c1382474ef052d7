"""Airflow's listing of a release (`files.parse_view`), kept from one validation of a repository to the next.

Airflow's listing walks the folder for `.airflowignore` files and reads every Python file for its safe-mode heuristic
(checking twice on the way whether it is a zip archive): on 500 files, a quarter of a 1-file revalidation. What
decides the listing is the shape of the tree (every path, and where each link points), the content of every other
file (`.airflowignore`, zip archives, dbt and package markers), Airflow's parse settings, its importers and its
version (in every cache key). When all of those are as in the last run, a Python file can change its answer only
through the heuristic, and only if its content changed: Airflow's own `might_contain_dag` is asked again for those
files alone. Anything else, or a file whose content lies outside the release, means Airflow lists the folder again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any

from airflow_dagops.validate.cache import ResultCache, cache_key
from airflow_dagops.validate.files import ParseView, airflow_listing, parse_view, safe_mode, view_of, visible_files

log = logging.getLogger(__name__)

LISTING_CHECK = "airflow-listing"
# The importers whose listing this module can bring up to date: Airflow's Python importer (.py files and zips).
PYTHON_IMPORTER_EXTENSIONS = [".py", ".zip"]


def cached_parse_view(
    real_root: str,
    files: list[str],
    fingerprints: dict[str, str | None],
    settings: str | None,
    cache: ResultCache,
) -> ParseView:
    """`files.parse_view(real_root, files)`, from the last listing of a tree of the same shape where one is kept."""
    key = _shape_key(files, fingerprints, settings) if cache.enabled else None
    if key is None:
        return parse_view(real_root, files)
    kept = cache.get_many([key]).get(key)
    record = (
        _brought_up_to_date(real_root, kept, fingerprints)
        if isinstance(kept, dict) and _well_formed(kept, files)
        else None
    )
    if record is None:
        record = _listed_afresh(real_root, files, fingerprints)
    if record.get("complete") and record != kept:
        cache.put_many({key: record})
    listed = set(record["listed"])
    unlisted_python = [f for f in files if f.endswith(".py") and f not in listed]
    return view_of(real_root, listed, unlisted_python, set(record["visible"]))


def _shape_key(files: list[str], fingerprints: dict[str, str | None], settings: str | None) -> str | None:
    """Everything the listing depends on but the content of Python files; None when it cannot be kept."""
    if settings is None or _importer_extensions() != PYTHON_IMPORTER_EXTENSIONS:
        return None
    shape = []
    for file in files:
        fingerprint = fingerprints.get(file)
        if fingerprint is None:  # content outside the release, or no file: it can change without us seeing it
            return None
        python_content = file.endswith(".py") and not fingerprint.startswith("link:")
        shape.append((file, "python" if python_content else fingerprint))
    digest = hashlib.sha256(json.dumps(shape).encode()).hexdigest()
    return cache_key(LISTING_CHECK, settings, digest)


def _importer_extensions() -> list[str]:
    from airflow.dag_processing.importers import get_importer_registry

    return sorted(get_importer_registry().supported_extensions())


def _listed_afresh(real_root: str, files: list[str], fingerprints: dict[str, str | None]) -> dict[str, Any]:
    """Airflow lists the folder. `complete`: every file it lists or shows is one of `files` (a file the release
    listing leaves out, as in a `__pycache__` folder, is not fingerprinted, so the listing cannot be kept)."""
    listed = airflow_listing(real_root)
    visible = {f for f in visible_files(real_root) if f.endswith(".py")}
    known = set(files)
    return {
        "listed": sorted(listed),
        "visible": sorted(visible),
        "python": {f: fingerprints[f] for f in files if f.endswith(".py")},
        "complete": listed <= known and visible <= known,
    }


def _well_formed(kept: dict, files: list[str]) -> bool:
    python = {f for f in files if f.endswith(".py")}
    return (
        isinstance(kept.get("listed"), list)
        and isinstance(kept.get("visible"), list)
        and isinstance(kept.get("python"), dict)
        and set(kept["python"]) == python
    )


def _brought_up_to_date(
    real_root: str, kept: dict[str, Any], fingerprints: dict[str, str | None]
) -> dict[str, Any] | None:
    """The kept listing with the heuristic asked again for each Python file whose content changed since."""
    from airflow.utils.file import might_contain_dag

    listed, visible = set(kept["listed"]), set(kept["visible"])
    changed = [f for f, fingerprint in kept["python"].items() if fingerprints.get(f) != fingerprint]
    mode = safe_mode()
    for file in changed:
        listed.discard(file)
        try:
            # Airflow's own test for a .py file its walk yields (python_importer.list_dag_files); it logs and leaves
            # out a file it cannot examine, and so does this.
            if file in visible and might_contain_dag(os.path.join(real_root, file), mode):
                listed.add(file)
        except Exception:  # noqa: BLE001
            log.warning("could not examine %s as Airflow does; listing the folder again", file, exc_info=True)
            return None
    python = {f: fingerprints[f] for f in kept["python"]}
    return {**kept, "listed": sorted(listed), "python": python, "complete": True}
