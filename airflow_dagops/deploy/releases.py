"""Export a commit into an immutable release folder, cheaply.

A release folder `<releases>/<namespace>/<sha>/` is written under a temporary name and renamed into
place when complete, so a folder with the final name is always whole (a killed export leaves only a
`.tmp-*` folder that the next sync removes). Files whose blob is unchanged since the base release are
hard links to it: publishing a 1-file change costs one blob, not a copy of the repository.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from airflow_dagops.errors import InvalidInput
from airflow_dagops.git.mirror import Mirror, TreeEntry
from airflow_dagops.validate.report import Finding

log = logging.getLogger(__name__)

MANIFEST_NAME = ".dagops-release.json"
TMP_PREFIX = ".tmp-"


@dataclass
class ExportResult:
    path: Path
    file_count: int
    linked: int
    written: int
    findings: list[Finding] = field(default_factory=list)
    reused: bool = False


def read_manifest(release_dir: Path) -> dict | None:
    try:
        return json.loads((release_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None


def clean_temporary_exports(namespace_dir: Path) -> None:
    """Remove what killed exports left behind. Called under the repository lock."""
    if not namespace_dir.is_dir():
        return
    for leftover in namespace_dir.glob(f"{TMP_PREFIX}*"):
        log.info("removing incomplete export %s", leftover)
        shutil.rmtree(leftover, ignore_errors=True)


def export_release(
    *,
    mirror: Mirror,
    sha: str,
    subdir: str | None,
    dest: Path,
    base: Path | None,
    max_size: int,
    metadata: dict,
) -> ExportResult:
    """Make `dest` hold the tree of `sha` (or its `subdir`), hard-linking unchanged files from `base`."""
    if dest.is_dir() and read_manifest(dest) is not None:
        manifest = read_manifest(dest)
        return ExportResult(dest, len(manifest["files"]), 0, 0, _skipped_findings(manifest), reused=True)

    entries = mirror.list_tree(sha, subdir)
    _check_size(entries, max_size, sha)
    base_files = (read_manifest(base) or {}).get("files", {}) if base else {}
    tmp = dest.parent / f"{TMP_PREFIX}{dest.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    files: dict[str, str] = {}
    skipped: list[dict] = []
    to_write: dict[str, list[TreeEntry]] = {}
    linked = 0
    made_dirs: set[str] = {""}
    for entry in entries:
        reason = _skip_reason(entry)
        if reason:
            skipped.append({"path": entry.path, "reason": reason})
            continue
        _make_parent(tmp, entry.path, made_dirs)
        if entry.is_symlink:
            to_write.setdefault(entry.blob, []).append(entry)
            continue
        if base_files.get(entry.path) == entry.blob and _link_from(base / entry.path, tmp / entry.path):
            linked += 1
            files[entry.path] = entry.blob
            continue
        to_write.setdefault(entry.blob, []).append(entry)

    written = 0
    for blob, data in mirror.iter_blobs(list(to_write)):
        for entry in to_write[blob]:
            if entry.is_symlink:
                if not _write_symlink(tmp, entry, data, skipped):
                    continue
            else:
                _write_file(tmp / entry.path, data, entry.is_executable)
                written += 1
            files[entry.path] = entry.blob

    manifest = {
        **metadata,
        "commit": sha,
        "subdir": subdir,
        "files": files,
        "skipped": skipped,
        "exported_at": datetime.now(timezone.utc).isoformat(),
    }
    (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, sort_keys=True))
    os.rename(tmp, dest)  # atomic: the final name only ever holds a complete release
    return ExportResult(dest, len(files), linked, written, _skipped_findings(manifest))


def _check_size(entries: list[TreeEntry], max_size: int, sha: str) -> None:
    total = sum(entry.size for entry in entries)
    if total > max_size:
        raise InvalidInput(
            f"commit {sha[:12]} holds {total / 2**20:.1f} MiB of files, more than [dagops] max_repo_size "
            f"({max_size / 2**20:.1f} MiB). Use `subdir` to publish only the DAGs folder, or raise the limit."
        )


def _skip_reason(entry: TreeEntry) -> str | None:
    if entry.is_submodule:
        return "submodule (not exported)"
    parts = entry.path.split("/")
    if ".." in parts or entry.path.startswith("/"):
        return "path escapes the repository"
    return None


def _make_parent(root: Path, path: str, made: set[str]) -> None:
    parent = posixpath.dirname(path)
    if parent not in made:
        (root / parent).mkdir(parents=True, exist_ok=True)
        made.add(parent)


def _link_from(source: Path, target: Path) -> bool:
    try:
        os.link(source, target, follow_symlinks=False)
        return True
    except OSError:  # base pruned meanwhile, or another file system: fall back to writing the blob
        return False


def _write_file(path: Path, data: bytes, executable: bool) -> None:
    # Read-only: a release is immutable, and hard links share one inode between releases.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o555 if executable else 0o444)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_symlink(root: Path, entry: TreeEntry, data: bytes, skipped: list[dict]) -> bool:
    """Recreate a symlink only when it stays inside the exported tree."""
    target = data.decode("utf-8", "surrogateescape")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(entry.path), target))
    if posixpath.isabs(target) or resolved == ".." or resolved.startswith("../"):
        skipped.append({"path": entry.path, "reason": f"symlink points outside the repository ({target})"})
        return False
    os.symlink(target, root / entry.path)
    return True


def _skipped_findings(manifest: dict) -> list[Finding]:
    return [
        Finding(
            rule="symlink-outside-tree" if "symlink" in item["reason"] else "file-not-exported",
            severity="warning",
            file=item["path"],
            message=f"not published: {item['reason']}",
            hint="Keep DAG files and what they load inside the repository.",
        )
        for item in manifest.get("skipped", [])
    ]


def remove_release_dir(path: Path) -> None:
    """Delete a release folder; a failure is logged, never raised (cleanup must not fail a sync)."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        log.warning("could not remove release folder %s: %s", path, err)
