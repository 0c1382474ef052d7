"""`dagops validate PATH`: the validation pipeline over any folder, for CI and pre-commit (no state DB)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from airflow_dagops.errors import InvalidInput
from airflow_dagops.safety import validate_ref
from airflow_dagops.validate import Report, validate
from airflow_dagops.validate.formats import FORMATS, render


def validate_folder(path: Path, *, fmt: str, changed_since: str | None, use_cache: bool) -> tuple[Report, str]:
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    root = Path(path).resolve()
    if not root.is_dir():
        raise InvalidInput(f"{path} is not a folder")
    only = changed_files(root, changed_since) if changed_since else None
    report = validate(root, use_cache=use_cache, cache_path=user_cache_path(), only_files=only)
    return report, render(report, fmt, root_label=str(path))


def user_cache_path() -> Path:
    """Developers' machines and CI keep the cache with their other caches, not in an Airflow home."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dagops" / "validation.db"


def changed_files(root: Path, ref: str) -> set[str]:
    """Files changed since `ref` (committed, staged or not) and untracked ones, relative to `root`."""
    validate_ref(ref)
    commands = (
        ["git", "-C", str(root), "diff", "--name-only", "--relative", "--end-of-options", ref, "--", "."],
        ["git", "-C", str(root), "ls-files", "--others", "--exclude-standard", "--", "."],
    )
    changed: set[str] = set()
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise InvalidInput(f"cannot list files changed since {ref!r}: {result.stderr.strip() or 'git failed'}")
        changed.update(line for line in result.stdout.splitlines() if line)
    return changed
