"""Atomic publish: `<dags_folder>/<namespace>` is a symlink swapped in one rename (the git-sync method)."""

from __future__ import annotations

import os
from pathlib import Path

from airflow_dagops.errors import Conflict


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
    # The temp link lives next to the final one (same file system, so os.replace is atomic); its
    # dotted name keeps the dag-processor from treating it as a DAG folder in the meantime.
    temp = link.parent / f".{link.name}.dagops-tmp-{os.getpid()}"
    if temp.is_symlink() or temp.exists():
        temp.unlink()
    os.symlink(release_dir, temp)
    os.replace(temp, link)


def unpublish(link: Path) -> bool:
    """Remove a namespace link (never a real folder); returns whether one was removed."""
    if link.is_symlink():
        link.unlink()
        return True
    return False
