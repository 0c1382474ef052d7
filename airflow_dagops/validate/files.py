"""Which files a release holds, and the checks on files as files: encoding and size."""

from __future__ import annotations

import os
import re
from pathlib import Path

from airflow_dagops.validate.report import Finding

RULES = {
    "symlink-outside-tree": "A symlink points outside the repository; dagops does not publish it.",
    "non-utf8-file": "A Python file is not valid UTF-8 and declares no other encoding.",
    "file-too-large": "A Python file is larger than the limit (1 MiB by default); it slows every parse.",
}

MAX_PY_FILE_SIZE = 1024 * 1024
_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
IGNORED_NAMES = {".dagops-release.json"}


def list_files(root: Path) -> list[str]:
    """Every regular file (and in-tree symlink) of the release, as sorted relative posix paths."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", "__pycache__"))
        rel_dir = os.path.relpath(dirpath, root)
        # A symlink to a folder is not walked into, but is listed so the symlink check sees it.
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in [*filenames, *links]:
            if name in IGNORED_NAMES and rel_dir == ".":
                continue
            found.append(name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/"))
    return sorted(found)


def check_files(root: Path, files: list[str], *, max_size: int = MAX_PY_FILE_SIZE) -> tuple[list[Finding], set[str]]:
    """Findings, and the Python files other checks must skip (they could not read them sensibly)."""
    findings, unreadable = [], set()
    resolved_root = root.resolve()
    for file in files:
        path = root / file
        if path.is_symlink():
            target = path.resolve()
            if target != resolved_root and resolved_root not in target.parents:
                findings.append(
                    Finding(
                        "symlink-outside-tree",
                        "warning",
                        f"symlink to {os.readlink(path)} points outside the repository; it will not be published",
                        file=file,
                        hint="Keep DAG files and what they load inside the repository.",
                    )
                )
                unreadable.add(file)
                continue
            if path.is_dir():
                unreadable.add(file)
                continue
        if not file.endswith(".py"):
            continue
        if not path.is_file():  # a FIFO or a device named *.py would block or never end a read
            unreadable.add(file)
            continue
        size = path.stat().st_size
        if size > max_size:
            findings.append(
                Finding(
                    "file-too-large",
                    "error",
                    f"{size / 2**20:.1f} MiB Python file",
                    file=file,
                    hint="Generate large data at run time or keep it out of the DAG folder.",
                )
            )
            unreadable.add(file)
            continue
        data = path.read_bytes()
        if not _is_utf8(data):
            line = _first_bad_line(data)
            findings.append(
                Finding(
                    "non-utf8-file",
                    "error",
                    "the file is not valid UTF-8",
                    file=file,
                    line=line,
                    hint="Save the file as UTF-8 (or declare its encoding on line 1 or 2).",
                )
            )
            unreadable.add(file)
    return findings, unreadable


def _is_utf8(data: bytes) -> bool:
    head = data.split(b"\n", 2)[:2]
    if any(_CODING.match(line) for line in head):
        return True  # a declared encoding: Python (and Airflow) will decode it that way
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _first_bad_line(data: bytes) -> int:
    for number, line in enumerate(data.splitlines(), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return 1
