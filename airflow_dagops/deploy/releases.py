"""Export a commit into an immutable release folder, cheaply.

A release folder `<releases>/<namespace>/<sha>/` is written under a temporary name and renamed into
place when complete, so a folder with the final name is always whole (a killed export leaves only a
`.tmp-*` folder that the next sync removes). Files whose blob is unchanged since the base release are
hard links to it: publishing a 1-file change costs one blob, not a copy of the repository.

Both trees are reached through folder descriptors (`FolderWriter`, `FolderReader`): each link or write names a
path relative to the release root, so the kernel walks two or three names instead of every name of an absolute
path, once per file. `link_tree` copies a whole release the same way (a bundle version's folder, a promotion
stage's view): hard links, each folder made once.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import posixpath
import shutil
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from airflow_dagops import release_manifest
from airflow_dagops.deploy.links import TreeLinks, target_problem
from airflow_dagops.errors import InvalidInput, NoSpace
from airflow_dagops.git.mirror import Mirror, TreeEntry
from airflow_dagops.release_manifest import MANIFEST_NAME, read_manifest
from airflow_dagops.validate.report import Finding

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
# Names dagops itself writes at a release's root: the manifest (and its temp file, validate/gate.py) and the
# temp files of `.airflowignore` rewrites (validate/gate.py, conflicts.py).
RESERVED_NAMES = (MANIFEST_NAME, ".airflowignore.dagops-")


@dataclass
class ExportResult:
    path: Path
    file_count: int
    linked: int
    written: int
    findings: list[Finding] = field(default_factory=list)
    reused: bool = False


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
        release_manifest.written(dest, manifest)
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
    """Fill `root` with the commit's files. Plain string paths: this loop runs once per file.

    Symlinks are judged before anything is written, on the commit's own listing (`deploy/links.py`): kept only
    when they resolve inside `root`. They are created last, once every folder and file exists, so no write of
    the export ever goes through one."""
    base_manifest = (read_manifest(base) if base else None) or {}
    base_files, base_sizes = base_manifest.get("files", {}), base_manifest.get("sizes", {})
    files: dict[str, str] = {}
    sizes: dict[str, int] = {}
    skipped: list[dict] = []
    entries = _exportable(mirror.list_tree(sha, subdir), skipped)
    links = _judge_links(mirror, entries, skipped)
    with FolderWriter(root) as out:
        linked, to_write = _link_unchanged(out, entries, base if base_files else None, base_files, base_sizes)
        files.update((path, base_files[path]) for path in linked)
        sizes.update((path, base_sizes[path]) for path in linked)
        total = sum(sizes.values())
        _check_size(total, max_size, sha)
        written = 0
        for blob, data in mirror.iter_blobs(list(to_write)):
            for entry in to_write[blob]:
                total += len(data)
                _check_size(total, max_size, sha)  # before writing: a huge commit never fills the disk
                out.write(entry.path, data, entry.is_executable)
                written += 1
                files[entry.path], sizes[entry.path] = entry.blob, len(data)
        for entry, target in links:
            out.symlink(target, entry.path)
            files[entry.path], sizes[entry.path] = entry.blob, len(os.fsencode(target))
    manifest = {
        "commit": sha,
        "subdir": subdir,
        "files": files,
        "sizes": sizes,
        "skipped": skipped,
        "exported_at": datetime.now(timezone.utc).isoformat(),
    }
    return manifest, len(files) - written, written


def _link_unchanged(
    out: FolderWriter, entries: list[TreeEntry], base: Path | None, base_files: dict, base_sizes: dict
) -> tuple[list[str], dict[str, list[TreeEntry]]]:
    """Make every folder of the tree, and hard-link each file whose blob the base release holds at the same path;
    returns (the paths linked, the files left to write: blob -> entries)."""
    linked: list[str] = []
    to_write: dict[str, list[TreeEntry]] = {}
    with FolderReader(base) as source:
        base_links = SymlinksIn(str(base) if base else "")
        for entry in entries:
            path = entry.path
            out.make_parents(path)
            if entry.is_symlink:
                continue
            if (
                base_files.get(path) == entry.blob
                and path in base_sizes
                # Not a link of the base: hard-linking it would recreate a symlink this tree never judged.
                and not base_links.contains(path)
                and out.link(source, path)
            ):
                linked.append(path)
                continue
            to_write.setdefault(entry.blob, []).append(entry)
    return linked, to_write


class FolderReader:
    """A folder read through its descriptor (None: no folder, every link from it fails and the blob is written)."""

    def __init__(self, root: Path | None):
        self.root = root
        self.fd: int | None = None

    def __enter__(self) -> FolderReader:
        if self.root is not None:
            try:
                self.fd = _open_folder(str(self.root))
            except OSError:  # pruned meanwhile: the whole tree is written from the mirror
                self.fd = None
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)


class FolderWriter:
    """A new folder filled through its descriptor, with paths relative to it; each subfolder is made once. Names
    come from a tree `_exportable` checked (no `..`, no empty or `.` part), and no symlink exists in the folder
    before the last step, so no path walked here leaves it."""

    def __init__(self, root: str):
        self.root = root
        self.fd = -1
        self._made: set[str] = {""}

    def __enter__(self) -> FolderWriter:
        self.fd = _open_folder(self.root)
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)

    def make_parents(self, path: str) -> None:
        folder = path.rpartition("/")[0]
        if folder not in self._made:
            self._make(folder)

    def _make(self, folder: str) -> None:
        parent = folder.rpartition("/")[0]
        if parent not in self._made:
            self._make(parent)
        os.mkdir(folder, dir_fd=self.fd)
        self._made.add(folder)

    def link(self, source: FolderReader, path: str) -> bool:
        """Hard-link `path` of `source` here; False when it cannot be (base pruned meanwhile, another file
        system): the caller writes the blob instead."""
        if source.fd is None:
            return False
        try:
            os.link(path, path, src_dir_fd=source.fd, dst_dir_fd=self.fd, follow_symlinks=False)
        except OSError:
            return False
        return True

    def write(self, path: str, data: bytes, executable: bool) -> None:
        # Read-only: a release is immutable, and hard links share one inode between releases.
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o555 if executable else 0o444, dir_fd=self.fd
        )
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    def symlink(self, target: str, path: str) -> None:
        os.symlink(target, path, dir_fd=self.fd)


def link_tree(source: Path, dest: Path) -> None:
    """Make `dest` (which must not exist) a copy of the folder tree `source` made of hard links: each folder made
    once with its mode, each file a link to the same inode (a copy where the file system refuses a link), each
    symlink made again with the same target (a release's links were judged when it was exported). What
    `shutil.copytree(symlinks=True)` with `os.link` makes, without a stat and a copystat per entry."""
    source_fd = _open_folder(str(source))
    try:
        os.mkdir(dest)
        os.chmod(dest, stat.S_IMODE(os.fstat(source_fd).st_mode))
        with FolderWriter(str(dest)) as writer:
            _link_folder(source_fd, writer.fd, str(source), str(dest))
    finally:
        os.close(source_fd)


def _link_folder(source_fd: int, dest_fd: int, source: str, dest: str) -> None:
    with os.scandir(source_fd) as listing:
        entries = list(listing)
    for entry in entries:
        name = entry.name
        if entry.is_dir(follow_symlinks=False):
            os.mkdir(name, dir_fd=dest_fd)
            os.chmod(name, stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode), dir_fd=dest_fd)
            child_source = _open_folder(name, source_fd)
            try:
                child_dest = _open_folder(name, dest_fd)
                try:
                    _link_folder(child_source, child_dest, f"{source}/{name}", f"{dest}/{name}")
                finally:
                    os.close(child_dest)
            finally:
                os.close(child_source)
        elif entry.is_symlink():
            os.symlink(os.readlink(name, dir_fd=source_fd), name, dir_fd=dest_fd)
        else:
            try:
                os.link(name, name, src_dir_fd=source_fd, dst_dir_fd=dest_fd, follow_symlinks=False)
            except OSError:  # another file system, or hard links not allowed: a copy does too
                shutil.copy2(f"{source}/{name}", f"{dest}/{name}", follow_symlinks=False)


def _open_folder(path: str, parent_fd: int | None = None) -> int:
    """A descriptor of the folder `path`; relative to `parent_fd` when given, and then never a symlink's target
    (the entry was listed as a folder a moment before)."""
    if parent_fd is None:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)


class SymlinksIn:
    """Which paths of a folder tree are symlinks, read one folder listing at a time: the d_type a folder listing
    carries answers `os.path.islink` for every entry of it, without an lstat per file."""

    def __init__(self, root: str):
        self.root = root
        self._folders: dict[str, frozenset[str]] = {}  # folder -> names of its entries that are symlinks

    def contains(self, path: str) -> bool:
        folder, name = posixpath.split(path)
        links = self._folders.get(folder)
        if links is None:
            links = self._folders[folder] = self._list(folder)
        return name in links

    def _list(self, folder: str) -> frozenset[str]:
        try:
            with os.scandir(posixpath.join(self.root, folder)) as entries:
                return frozenset(entry.name for entry in entries if entry.is_symlink())
        except OSError:  # no such folder: nothing there is a link (and hard-linking from it fails by itself)
            return frozenset()


def _exportable(listing: list[TreeEntry], skipped: list[dict]) -> list[TreeEntry]:
    """The entries to export: not a submodule, a normal path, no name dagops writes itself, and no path that
    another entry needs as a folder (a crafted tree can hold `a` and `a/b`; creating a link at `a` would fail,
    or worse, be written through)."""
    entries, seen = [], set()
    for entry in listing:
        reason = _skip_reason(entry)
        if reason is None and entry.path in seen:
            reason = "the same path twice in one tree"
        if reason:
            skipped.append({"path": entry.path, "reason": reason})
            continue
        seen.add(entry.path)
        entries.append(entry)
    folders = _with_ancestors({e.path.rpartition("/")[0] for e in entries})  # normal paths: their dirname
    kept = []
    for entry in entries:
        if entry.path in folders:
            skipped.append({"path": entry.path, "reason": "a folder of the tree has the same path"})
        else:
            kept.append(entry)
    return kept


def _with_ancestors(folders: set[str]) -> set[str]:
    every = set()
    for folder in folders:
        while folder and folder not in every:
            every.add(folder)
            folder = posixpath.dirname(folder)
    return every


def _judge_links(mirror: Mirror, entries: list[TreeEntry], skipped: list[dict]) -> list[tuple[TreeEntry, str]]:
    """The symlinks to create, each with its target: only those that resolve inside the tree, judged on the
    whole listing (files, folders, every link's target) whatever order they come in."""
    link_entries = [e for e in entries if e.is_symlink]
    if not link_entries:
        return []
    blobs = dict(mirror.iter_blobs(sorted({e.blob for e in link_entries})))
    targets: dict[str, str] = {}
    for entry in link_entries:
        data = blobs[entry.blob]
        problem = target_problem(data)
        if problem:
            skipped.append({"path": entry.path, "reason": problem})
            continue
        targets[entry.path] = data.decode("utf-8", "surrogateescape")
    tree = TreeLinks((e.path for e in entries if not e.is_symlink), targets)
    kept = []
    for entry in link_entries:
        if entry.path not in targets:
            continue
        why = tree.judge(entry.path)
        if why:
            skipped.append({"path": entry.path, "reason": why})
        else:
            kept.append((entry, targets[entry.path]))
    return kept


def _check_size(total: int, max_size: int, sha: str) -> None:
    if total > max_size:
        raise InvalidInput(
            f"commit {sha[:12]} holds more than [dagops] max_repo_size ({max_size / 2**20:.1f} MiB) of files. "
            "Use `subdir` to publish only the DAGs folder, or raise the limit."
        )


def _skip_reason(entry: TreeEntry) -> str | None:
    if entry.is_submodule:
        return "submodule (not exported)"
    parts = entry.path.split("/")
    if ".." in parts or entry.path.startswith("/"):
        return "path escapes the repository"
    if "" in parts or "." in parts:
        return "not a normal path (an empty or '.' component)"
    if len(parts) == 1 and parts[0].startswith(RESERVED_NAMES):
        # dagops writes these into the release root itself: a repository file or link of that name would be
        # written through (into a file hard-linked with older releases, or wherever the link leads).
        return "name reserved for dagops' own files"
    return None


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
