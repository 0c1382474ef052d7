"""The manifest at the root of every release folder (`.dagops-release.json`): which repository, namespace and
ref the release came from, and each file's git blob and size. Exports read it to hard-link unchanged files from
the live release, the cluster policy to know which repository a parsed DAG file belongs to (without a
database), and gates that rewrite a release's files keep it true. A plain file format, so every layer may use it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MANIFEST_NAME = ".dagops-release.json"


# Manifests read (or written) by this process, by path: (identity of the file then, its content). A sync reads the
# one it wrote two or three times (the live set, the next export's base), the cluster policy once per DAG parsed.
# A manifest is only ever replaced (a new file renamed over it), never changed in place, so the file's identity
# says whether the content still holds.
_READ: dict[str, tuple[tuple[int, int, int, int], dict]] = {}
_READ_LIMIT = 64


def read_manifest(release_dir: Path) -> dict | None:
    """The release's manifest, None when it has none (or an unreadable one). Shared with every caller: read it,
    never change it (`forget_in_manifest` changes a copy of its own)."""
    path = Path(release_dir) / MANIFEST_NAME
    try:
        identity = _identity(path)
    except OSError:
        return None
    known = _READ.get(str(path))
    if known is not None and known[0] == identity:
        return known[1]
    manifest = _load(path)
    if manifest is not None:
        _remember(path, identity, manifest)
    return manifest


def written(release_dir: Path, manifest: dict) -> None:
    """`manifest` was just written into `release_dir`: the next `read_manifest` of it need not parse it again."""
    path = Path(release_dir) / MANIFEST_NAME
    try:
        _remember(path, _identity(path), manifest)
    except OSError:
        pass


def _identity(path: Path) -> tuple[int, int, int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size


def _remember(path: Path, identity: tuple[int, int, int, int], manifest: dict) -> None:
    if len(_READ) >= _READ_LIMIT:
        _READ.clear()  # a few dozen releases at most are read in one process's stretch of work
    _READ[str(path)] = (identity, manifest)


def _load(path: Path) -> dict | None:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def forget_in_manifest(release_dir: Path, path: str) -> None:
    """The file no longer holds its git blob: the next release must not hard-link it as if it did."""
    manifest = _load(Path(release_dir) / MANIFEST_NAME)
    if manifest is None:
        return
    manifest.get("files", {}).pop(path, None)
    manifest.get("sizes", {}).pop(path, None)
    tmp = release_dir / f"{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(manifest, sort_keys=True))
    os.replace(tmp, release_dir / MANIFEST_NAME)
