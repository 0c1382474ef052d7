"""Export a commit into an immutable release folder, cheaply.

A release folder `<releases>/<namespace>/<sha>/` is written under a temporary name and renamed into
place when complete, so a folder with the final name is always whole (a killed export leaves only a
`.tmp-*` folder that the next sync removes). Files whose blob is unchanged since the base release are
hard links to it: publishing a 1-file change costs one blob, not a copy of the repository.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import posixpath
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from airflow_dagops.errors import InvalidInput, NoSpace
from airflow_dagops.git.mirror import Mirror, TreeEntry
from airflow_dagops.validate.report import Finding

log = logging.getLogger(__name__)

MANIFEST_NAME = ".dagops-release.json"
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"


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
        return json.loads((Path(release_dir) / MANIFEST_NAME).read_text())
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
    existing = read_manifest(dest) if dest.is_dir() else None
    if existing is not None:
        return ExportResult(dest, len(existing["files"]), 0, 0, _skipped_findings(existing), reused=True)

    tmp = dest.parent / f"{TMP_PREFIX}{dest.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        manifest, linked, written = _write_tree(mirror, sha, subdir, str(tmp), base, max_size)
        manifest.update(metadata)
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, sort_keys=True))
        os.rename(tmp, dest)  # atomic: the final name only ever holds a complete release
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)  # frees what the partial export took
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise NoSpace(
                f"no space left on device while exporting {sha[:12]} to {dest.parent}. {NoSpace.hint}"
            ) from err
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(dest, len(manifest["files"]), linked, written, _skipped_findings(manifest))


def _write_tree(mirror, sha, subdir, root: str, base: Path | None, max_size: int) -> tuple[dict, int, int]:
    """Fill `root` with the commit's files. Plain string paths: this loop runs once per file."""
    base_manifest = (read_manifest(base) if base else None) or {}
    base_files, base_sizes = base_manifest.get("files", {}), base_manifest.get("sizes", {})
    base_root = str(base) if base else ""
    files: dict[str, str] = {}
    sizes: dict[str, int] = {}
    skipped: list[dict] = []
    to_write: dict[str, list[TreeEntry]] = {}
    made_dirs: set[str] = {""}
    total = 0
    root_slash, base_slash = root + "/", base_root + "/"
    for entry in mirror.list_tree(sha, subdir):
        path = entry.path
        reason = _skip_reason(entry)
        if reason:
            skipped.append({"path": path, "reason": reason})
            continue
        parent = posixpath.dirname(path)
        if parent not in made_dirs:
            os.makedirs(root_slash + parent, exist_ok=True)
            made_dirs.add(parent)
        if not entry.is_symlink and base_files.get(path) == entry.blob and path in base_sizes:
            if _link(base_slash + path, root_slash + path):
                files[path], sizes[path] = entry.blob, base_sizes[path]
                total += base_sizes[path]
                continue
        to_write.setdefault(entry.blob, []).append(entry)
    _check_size(total, max_size, sha)

    written = 0
    for blob, data in mirror.iter_blobs(list(to_write)):
        for entry in to_write[blob]:
            if entry.is_symlink:
                if not _write_symlink(root, entry, data, skipped):
                    continue
            else:
                total += len(data)
                _check_size(total, max_size, sha)  # before writing: a huge commit never fills the disk
                _write_file(os.path.join(root, entry.path), data, entry.is_executable)
                written += 1
            files[entry.path], sizes[entry.path] = entry.blob, len(data)
    manifest = {
        "commit": sha,
        "subdir": subdir,
        "files": files,
        "sizes": sizes,
        "skipped": skipped,
        "exported_at": datetime.now(timezone.utc).isoformat(),
    }
    return manifest, len(files) - written, written


def _check_size(total: int, max_size: int, sha: str) -> None:
    if total > max_size:
        raise InvalidInput(
            f"commit {sha[:12]} holds more than [dagops] max_repo_size ({max_size / 2**20:.1f} MiB) of files. "
            "Use `subdir` to publish only the DAGs folder, or raise the limit."
        )


def _skip_reason(entry: TreeEntry) -> str | None:
    if entry.is_submodule:
        return "submodule (not exported)"
    if ".." in entry.path and ".." in entry.path.split("/") or entry.path.startswith("/"):
        return "path escapes the repository"
    return None


def _link(source: str, target: str) -> bool:
    try:
        os.link(source, target, follow_symlinks=False)
        return True
    except OSError:  # base pruned meanwhile, or another file system: fall back to writing the blob
        return False


def _write_file(path: str, data: bytes, executable: bool) -> None:
    # Read-only: a release is immutable, and hard links share one inode between releases.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o555 if executable else 0o444)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_symlink(root: str, entry: TreeEntry, data: bytes, skipped: list[dict]) -> bool:
    """Recreate a symlink only when it stays inside the exported tree."""
    target = data.decode("utf-8", "surrogateescape")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(entry.path), target))
    if posixpath.isabs(target) or resolved == ".." or resolved.startswith("../"):
        skipped.append({"path": entry.path, "reason": f"symlink points outside the repository ({target})"})
        return False
    os.symlink(target, os.path.join(root, entry.path))
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


def retire_release_dir(path: Path) -> Path | None:
    """Move a pruned release out of the way in one rename; `empty_trash` deletes it later, off the sync's
    critical path. Failures are logged, never raised: cleanup must not fail a sync."""
    trash = path.parent / f"{TRASH_PREFIX}{path.name}-{os.getpid()}"
    try:
        os.rename(path, trash)
        return trash
    except FileNotFoundError:
        return None
    except OSError as err:
        log.warning("could not move pruned release %s aside: %s", path, err)
        return None


def empty_trash(releases_root: Path) -> int:
    """Delete pruned release folders of every namespace; returns how many were removed."""
    removed = 0
    for trash in releases_root.glob(f"*/{TRASH_PREFIX}*"):
        try:
            shutil.rmtree(trash)
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as err:
            log.warning("could not remove pruned release %s: %s", trash, err)
    return removed
