"""Which files of a release import which: by module name, leniently, as a change to one file decides which others
must be imported again (their import may now fail) and which cache keys a file's import depends on."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

from airflow_dagops.validate.cache import ResultCache, cache_key
from airflow_dagops.validate.files import resolves_inside


def local_dependencies(files: list[str], direct: dict[str, set[str]]) -> dict[str, set[str]]:
    """For each file, the release's own modules it imports, transitively (by module name, leniently). `direct`: the
    names each file imports itself (`direct_imports`, or `read_imports` without a cache)."""
    by_name: dict[str, set[str]] = {}
    for f in files:
        stem = Path(f).stem
        by_name.setdefault(Path(f).parent.name if stem == "__init__" else stem, set()).add(f)
    result = {}
    for f in files:
        seen, todo = set(), [f]
        while todo:
            current = todo.pop()
            for name in direct.get(current, ()):
                for dep in by_name.get(name, ()):
                    if dep not in seen and dep != f:
                        seen.add(dep)
                        todo.append(dep)
        result[f] = seen
    return result


def with_dependents(files: list[str], changed: set[str], direct: dict[str, set[str]]) -> list[str]:
    """The changed files plus every file that imports one of them (its import may now fail); `direct` are the names
    each Python file imports (`direct_imports`)."""
    python = [f for f in files if f.endswith(".py")]
    depends = local_dependencies(python, direct)
    return [f for f in files if f in changed or depends.get(f, set()) & changed]


def read_imports(root: Path, files: list[str]) -> dict[str, set[str]]:
    """The names each file imports, read from every file (no cache). A link out of the release is listed (so its
    importers are known) but never read."""
    real_root = os.path.realpath(root)
    return {f: imported_names(root / f) for f in files if resolves_inside(root / f, real_root)}


def direct_imports(
    root: Path, files: list[str], fingerprints: dict[str, str | None], cache: ResultCache
) -> dict[str, set[str]]:
    """The names each file imports (`imported_names`: a function of its bytes alone), parsed only for content the
    cache has not seen: a 1-file change parses one file, not the release. A file whose content lies outside the
    release, or that is no regular file (a FIFO would block the read), is never read."""
    direct: dict[str, set[str]] = {}
    keys = {}
    for f in files:
        fingerprint = fingerprints.get(f)
        if fingerprint is None:
            continue
        if fingerprint.startswith("link:"):  # a link to a folder, or to nothing: no module to read
            direct[f] = set()
        else:
            keys[f] = cache_key("imported-names", fingerprint)
    kept = cache.get_many(keys.values())
    parsed: dict[str, object] = {}
    for f, key in keys.items():
        names = kept.get(key)
        if isinstance(names, list):
            direct[f] = set(names)
        else:
            direct[f] = imported_names(root / f)
            parsed[key] = sorted(direct[f])
    cache.put_many(parsed)
    return direct


def imported_names(path: Path) -> set[str]:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO named *.py would block the read for ever
            return set()
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, OSError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(part for alias in node.names for part in alias.name.split("."))
        elif isinstance(node, ast.ImportFrom):
            names.update((node.module or "").split("."))
            names.update(alias.name for alias in node.names)
    names.discard("")
    return names
