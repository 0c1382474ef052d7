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


def read_manifest(release_dir: Path) -> dict | None:
    try:
        return json.loads((Path(release_dir) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None


def forget_in_manifest(release_dir: Path, path: str) -> None:
    """The file no longer holds its git blob: the next release must not hard-link it as if it did."""
    manifest = read_manifest(release_dir)
    if manifest is None:
        return
    manifest.get("files", {}).pop(path, None)
    manifest.get("sizes", {}).pop(path, None)
    tmp = release_dir / f"{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(manifest, sort_keys=True))
    os.replace(tmp, release_dir / MANIFEST_NAME)
