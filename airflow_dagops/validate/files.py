"""Which files a release holds, and the checks on files as files: encoding and size."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
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


# --- Which Python files are DAG files ---------------------------------------------------------------------------------

# Folder names that hold vendored third-party code: not DAG code (here) and not the team's secrets (secrets.py).
VENDOR_FOLDERS = frozenset(
    {"vendor", "vendored", "_vendor", "third_party", "third-party", "thirdparty", "site-packages"}
)


def in_vendor_folder(file: str) -> bool:
    """Whether a release path lies under a folder named like vendored third-party code."""
    return any(part.lower() in VENDOR_FOLDERS for part in file.split("/")[:-1])


_PACKAGE_TABLE = re.compile(rb"^[ \t]*\[(project|build-system)\][ \t]*(#.*)?$", re.MULTILINE)
IGNORED_BY_AIRFLOWIGNORE = "matched by .airflowignore"
SKIPPED_BY_SAFE_MODE = "Airflow's safe mode skips it (it never says 'airflow' together with 'dag' or 'asset')"


@dataclass
class ParseView:
    """Which Python files Airflow's dag-processor parses as DAG files, and why it never parses the others.

    The pipeline and the sandbox both take it from `parse_view`, so they can never disagree."""

    dag_files: set[str] = field(default_factory=set)
    not_parsed: dict[str, str] = field(default_factory=dict)  # a .py file that is no DAG file -> why

    def never_parsed(self, file: str) -> bool:
        """Not a DAG file: ignored, skipped by safe mode, a dbt model, a vendored package. Airflow never parses it
        on its own; a DAG that imports it runs its code, and the sandbox reports what that does on the DAG."""
        return file in self.not_parsed


def parse_view(root: Path | str, files: list[str] | None = None) -> ParseView:
    """Airflow's own listing (its importer registry: `.airflowignore` files in every folder, in the configured
    `[core] dag_ignore_file_syntax`, and the `[core] dag_discovery_safe_mode` heuristic), less what is not DAG code
    even though Airflow would read it: Python models of a dbt project and vendored packages.

    `files` are the release's files (`list_files`); without them only `dag_files` is computed."""
    real_root = os.path.realpath(root)
    listed = airflow_listing(real_root)
    python = [f for f in files or [] if f.endswith(".py") and f not in listed]
    return view_of(real_root, listed, python, visible_files(real_root) if python else set())


def airflow_listing(real_root: str) -> set[str]:
    """The files Airflow's dag-processor lists in the folder, relative to it, by Airflow's own code."""
    from airflow.dag_processing.importers import get_importer_registry

    listed = get_importer_registry().list_dag_files(real_root, safe_mode())
    return {_relative(path, real_root) for path in listed}


def visible_files(real_root: str) -> set[str]:
    """The files no `.airflowignore` hides (Airflow's own walk), relative to the folder."""
    from airflow._shared.module_loading.file_discovery import find_path_from_directory
    from airflow.configuration import conf

    syntax = conf.get("core", "DAG_IGNORE_FILE_SYNTAX", fallback="glob")
    return {_relative(path, real_root) for path in find_path_from_directory(real_root, ".airflowignore", syntax)}


def safe_mode() -> bool:
    from airflow.configuration import conf

    return conf.getboolean("core", "DAG_DISCOVERY_SAFE_MODE", fallback=True)


def view_of(real_root: str, listed: set[str], unlisted_python: list[str], visible: set[str]) -> ParseView:
    """The view from Airflow's listing: `unlisted_python` are the release's Python files Airflow does not list, and
    `visible` says which of them no `.airflowignore` hides (safe mode skipped those)."""
    view = ParseView()
    for file in sorted(listed):
        reason = not_dag_code(real_root, file)
        if reason:
            view.not_parsed[file] = reason
        else:
            view.dag_files.add(file)
    for file in unlisted_python:
        reason = IGNORED_BY_AIRFLOWIGNORE if file not in visible else SKIPPED_BY_SAFE_MODE
        view.not_parsed[file] = not_dag_code(real_root, file) or reason
    return view


def not_dag_code(root: Path | str, file: str) -> str | None:
    """Why a Python file is no DAG file whatever Airflow lists: a dbt project's Python model (`models/**/*.py` next to
    a `dbt_project.yml`), or a file of a vendored package (a folder VENDOR_FOLDERS names, or
    with its own setup.py or a pyproject.toml with a [project] or [build-system] table; the repository's own root is
    not one)."""
    parts = file.split("/")[:-1]
    for depth in range(len(parts)):
        if parts[depth] == "models" and os.path.isfile(os.path.join(root, *parts[:depth], "dbt_project.yml")):
            project = "/".join(parts[:depth]) or "."
            return f"a Python model of the dbt project in {project}/"
    for depth in range(1, len(parts) + 1):
        folder = "/".join(parts[:depth])
        if parts[depth - 1].lower() in VENDOR_FOLDERS or _is_package(os.path.join(root, folder)):
            return f"part of the vendored package in {folder}/"
    return None


def _is_package(folder: str) -> bool:
    """A folder with a setup.py, or a pyproject.toml that builds a package: one that only configures tools (ruff,
    black, pytest: `[tool.*]` tables) does not make the DAGs beside it a vendored package."""
    if os.path.isfile(os.path.join(folder, "setup.py")):
        return True
    try:
        with open(os.path.join(folder, "pyproject.toml"), "rb") as stream:
            return _PACKAGE_TABLE.search(stream.read()) is not None
    except OSError:
        return False


def resolves_inside(path: Path | str, real_root: str) -> bool:
    """Judged by where the path really resolves, never lexically."""
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root + os.sep)


def _relative(path: str, real_root: str) -> str:
    return os.path.relpath(path, real_root).replace(os.sep, "/")
