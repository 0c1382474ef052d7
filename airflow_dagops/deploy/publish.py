"""Atomic publish: `<dags_folder>/<namespace>` is a symlink swapped in one rename (the git-sync method).

The link is the same in both publish modes. In bundle mode Airflow parses it through the dagops-releases bundle
only: the namespace is listed in the dags folder's `.airflowignore` before its link appears, and unlisted once it
is gone (deploy/dags_folder.py). What the bundle serves is the live set in the state DB (deploy/live_set.py),
written by the caller in the transaction that makes the release live.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow_dagops.deploy import dags_folder
from airflow_dagops.errors import Conflict
from airflow_dagops.release_manifest import read_manifest


def current_target(link: Path) -> Path | None:
    """The release a namespace link points at, or None when there is no link."""
    try:
        return Path(os.readlink(link))
    except (FileNotFoundError, OSError):
        return None


def publish(link: Path, release_dir: Path) -> None:
    """Point `link` at `release_dir`. Readers see the old or the new release, never a mix or nothing."""
    if link.exists() and not link.is_symlink():
        raise Conflict(
            f"{link} exists and is not managed by dagops; move it away (or choose another namespace) "
            "so dagops can publish there"
        )
    link.parent.mkdir(parents=True, exist_ok=True)
    mark_changed_files(current_target(link), release_dir)
    if dags_folder.serves_from_bundle(link):
        dags_folder.hide(link.name)  # before the link exists: the dags-folder bundle never parses it
    # The temp link lives next to the final one (same file system, so os.replace is atomic); its
    # dotted name keeps the dag-processor from treating it as a DAG folder in the meantime.
    temp = link.parent / f".{link.name}.dagops-tmp-{os.getpid()}"
    if temp.is_symlink() or temp.exists():
        temp.unlink()
    os.symlink(release_dir, temp)
    os.replace(temp, link)


def mark_changed_files(previous: Path | None, release_dir: Path) -> int:
    """Give each file of `release_dir` whose content differs from `previous` (the release live until now) the
    modification time of now, as a git checkout would; returns how many files were marked.

    Airflow's dag-processor (`file_parsing_sort_mode = modified_time`, the default) parses at once a file modified
    since its last parse, any other only every `min_file_process_interval`. A release going live again (rollback,
    a deploy or pin of an older release) brings back files older than that last parse: unmarked, Airflow would go on
    serving the release just left, and pin new runs to it, for up to that interval (30 s by default). A sync's new
    release is already newer where it differs: marking it again changes nothing. Files are compared by their git
    blob in the two manifests (no file is read); a release without one has every file marked."""
    if previous is None or Path(previous) == Path(release_dir):
        return 0
    new_files = (read_manifest(release_dir) or {}).get("files")
    old_files = (read_manifest(previous) or {}).get("files", {})
    if not isinstance(new_files, dict) or not isinstance(old_files, dict):
        changed = [str(p.relative_to(release_dir)) for p in Path(release_dir).rglob("*") if p.is_file()]
    else:
        changed = [path for path, blob in new_files.items() if old_files.get(path) != blob]
    marked = 0
    for relative in changed:
        if not _plain_relative(relative):
            continue  # a manifest is dagops' own, but a name that leaves the release is never acted on
        try:
            os.utime(Path(release_dir) / relative, follow_symlinks=False)
            marked += 1
        except OSError:
            pass  # a file the manifest names but the gate removed: nothing to parse
    return marked


def _plain_relative(path: object) -> bool:
    return isinstance(path, str) and not os.path.isabs(path) and ".." not in path.split("/")


def unpublish(link: Path) -> bool:
    """Remove a namespace link (never a real folder); returns whether one was removed."""
    removed = False
    if link.is_symlink():
        link.unlink()
        removed = True
    if not link.is_symlink() and dags_folder.in_dags_folder(link):
        dags_folder.show(link.name)  # whatever the mode: a namespace that is gone leaves no line behind
    return removed
