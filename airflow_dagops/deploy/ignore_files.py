"""Managed sections of `.airflowignore` files: the lines between two marker comments belong to dagops, every other
line to whoever wrote it and is kept as it is.

Two sections use this: a release's (deploy/conflicts.py: files left out because another repository owns their
dag_ids) and the dags folder's (deploy/dags_folder.py: namespaces the dagops-releases bundle serves). Airflow reads
the markers as comments in either `[core] dag_ignore_file_syntax`.
"""

from __future__ import annotations

import os
from pathlib import Path

# The temp file of a rewrite, next to the file: a release's reserved names cover it (deploy/releases.py).
TEMP_INFIX = ".dagops-tmp-"


def read_section(path: Path, start: str, end: str) -> list[str]:
    """The non-empty lines of the section, in file order; [] without the file or the section."""
    lines = _lines(path)
    if start not in lines:
        return []
    first = lines.index(start) + 1
    last = lines.index(end, first) if end in lines[first:] else len(lines)
    return [line for line in lines[first:last] if line.strip()]


def write_section(path: Path, start: str, end: str, body: list[str]) -> bool:
    """Make the section hold exactly `body` (no section at all when it is empty; no file when nothing is left), at
    the end of the file so that its patterns come last and win over the user's; True when the file changed. The
    file is replaced, never edited in place: it may be a hard link shared with other releases, and readers see the
    old file or the new one."""
    lines = _lines(path)
    if start in lines:
        first = lines.index(start)
        last = lines.index(end, first) + 1 if end in lines[first:] else len(lines)
        kept = lines[:first] + lines[last:]
    else:
        kept = lines
    wanted = kept + ([start, *body, end] if body else [])
    if wanted == lines:
        return False
    if not any(line.strip() for line in wanted):
        path.unlink(missing_ok=True)  # nothing left to say: no file, rather than an empty one dagops made
        return True
    temp = path.with_name(f"{path.name}{TEMP_INFIX}{os.getpid()}")
    temp.write_text("\n".join(wanted) + "\n" if wanted else "")
    os.replace(temp, path)
    return True


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return []
