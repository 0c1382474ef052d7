"""The dags folder's `.airflowignore` in bundle mode: the namespace links stay in the dags folder, and Airflow's
unversioned `dags-folder` bundle leaves them to the dagops-releases bundle.

With `publish_mode = bundle`, `<dags_folder>/<namespace>` is still the atomic link to the live release (what an
operator looks at, what a sync checks and repairs), but Airflow must parse each DAG once, in the versioned
dagops-releases bundle. So a managed section at the end of `<dags_folder>/.airflowignore` lists every namespace
dagops publishes there, one pattern per namespace in the syntax `[core] dag_ignore_file_syntax` selects:

    glob (Airflow's default)   /team/        anchored at the dags folder (a leading slash), folders only
    regexp                     ^team(/|$)    matched against the path relative to the dags folder

Airflow's walk of a bundle (`find_path_from_directory`, followed by the dag-processor and by DagBag alike) drops a
folder matching a pattern before descending into it, symlinked folders included, so nothing under the link is
listed. The section comes last, so a user's `!team/` cannot bring a namespace back. Lines outside it are the
user's and are kept.

A namespace is listed before its link first appears (the dags-folder bundle never sees it) and unlisted only once
its link is gone, or replaced by a plain folder that the dags-folder bundle is meant to parse from then on
(`dagops repos remove --keep-dags`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from airflow_dagops import paths, settings
from airflow_dagops.deploy.ignore_files import read_section, write_section
from airflow_dagops.deploy.locks import file_lock

SECTION_START = "# >>> dagops: namespaces the dagops-releases bundle serves, not the dags-folder bundle (managed)"
SECTION_END = "# <<< dagops"
IGNORE_FILE = ".airflowignore"
_LOCK = "_dags-folder-airflowignore"  # not a valid repository name, so it never clashes with a repository's lock
_PATTERNS = (re.compile(r"^/([a-z0-9][a-z0-9_-]*)/$"), re.compile(r"^\^([a-z0-9][a-z0-9_-]*)\(/\|\$\)$"))


def listed(dags_folder: Path | None = None) -> list[str]:
    """The namespaces the managed section leaves to the dagops-releases bundle, whatever syntax wrote them."""
    folder = dags_folder or settings.dags_folder()
    found = []
    for line in read_section(folder / IGNORE_FILE, SECTION_START, SECTION_END):
        match = next((m for pattern in _PATTERNS if (m := pattern.match(line.strip()))), None)
        if match:
            found.append(match.group(1))
    return sorted(set(found))


def pattern(namespace: str, syntax: str | None = None) -> str:
    """The line that keeps Airflow's walk of the dags folder out of `<dags_folder>/<namespace>`."""
    syntax = (syntax or settings.airflow_setting("core", "dag_ignore_file_syntax", "glob") or "glob").strip().lower()
    return f"^{namespace}(/|$)" if syntax == "regexp" else f"/{namespace}/"


def set_listed(namespaces: list[str] | set[str], dags_folder: Path | None = None) -> bool:
    """Make the section list exactly `namespaces` (none: no section); True when the file changed."""
    return _change(lambda _listed: set(namespaces), dags_folder)


def hide(namespace: str, dags_folder: Path | None = None) -> None:
    """List `namespace` (before its link appears). A namespace listed already costs one read, no lock."""
    if namespace not in listed(dags_folder):
        _change(lambda names: names | {namespace}, dags_folder)


def show(namespace: str, dags_folder: Path | None = None) -> None:
    """Unlist `namespace` (once its link is gone, or is a plain folder the dags-folder bundle should parse)."""
    if namespace in listed(dags_folder):
        _change(lambda names: names - {namespace}, dags_folder)


def _change(how: Callable[[set[str]], set[str]], dags_folder: Path | None) -> bool:
    # Read again under the lock: two publishers of different namespaces must not lose each other's line.
    folder = dags_folder or settings.dags_folder()
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(paths.locks_dir(), _LOCK, timeout=settings.get_int("lock_timeout")):
        names = how(set(listed(folder)))
        return write_section(folder / IGNORE_FILE, SECTION_START, SECTION_END, [pattern(n) for n in sorted(names)])


def serves_from_bundle(link: Path) -> bool:
    """Whether `link` is a namespace link of the dags folder that, in this process's publish mode, the
    dagops-releases bundle serves (so the dags-folder bundle must not)."""
    return paths.publish_mode() == "bundle" and in_dags_folder(link)


def in_dags_folder(link: Path) -> bool:
    return link.parent.resolve() == settings.dags_folder().resolve()
