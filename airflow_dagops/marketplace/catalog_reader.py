"""Read a catalog straight from git objects: its packages at the catalog ref and at every `<package>/v<version>` tag.

A catalog is fetched into a bare mirror (the same `Mirror` repositories use, so credentials come from the
catalog's Airflow connection); nothing is checked out. A package folder that cannot be read (bad yaml, a
listed file missing, a tag whose yaml names another version) is skipped with a problem, never fatal: one
broken package must not hide the rest of the catalog.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from airflow_dagops import tempdirs
from airflow_dagops.deploy.releases import export_release
from airflow_dagops.errors import ConfigInvalid
from airflow_dagops.git.mirror import CommitInfo, Mirror
from airflow_dagops.git.runner import run_git
from airflow_dagops.marketplace import manifest
from airflow_dagops.marketplace.manifest import PackageSpec

log = logging.getLogger(__name__)

MAX_TEXT = 200_000  # bytes of a README or example config kept in the index
CATALOG_TAGS = "refs/dagops/catalog-tags"  # the remote's tags, fetched under a prefix of their own


@dataclass
class IndexedVersion:
    """One version of one package as found in the catalog's git history."""

    spec: PackageSpec
    folder: str
    commit: str
    tag: str | None  # None: the version on the catalog ref has no release tag yet
    readme: str | None = None
    example_config: str | None = None

    def meta(self) -> dict:
        return {**self.spec.to_dict(), "readme_text": self.readme, "example_config_text": self.example_config}


@dataclass
class CatalogIndex:
    commit: CommitInfo
    versions: list[IndexedVersion] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class CatalogMirror(Mirror):
    """A repository mirror that also fetches every tag: a catalog's versions are its tags."""

    def fetch_catalog(self, ref: str) -> CatalogIndex:
        full_ref, _sha = self.ls_remote(ref)
        head = self.fetch(full_ref)
        # --prune: a tag deleted upstream (a withdrawn version) leaves the index at the next refresh.
        self._remote_git(
            [
                "-c",
                "gc.auto=0",
                "-C",
                str(self.path),
                "fetch",
                "--no-tags",
                "--prune",
                "--no-write-fetch-head",
                "--quiet",
                "--",
                self.url,
                f"+refs/tags/*:{CATALOG_TAGS}/*",
            ]
        )
        return read_index(self, head)

    def tags(self) -> dict[str, str]:
        """{tag name: commit} of the fetched tags (annotated tags peeled)."""
        output = run_git(
            [
                "-C",
                str(self.path),
                "for-each-ref",
                "--format=%(refname)%00%(objectname)%00%(*objectname)",
                CATALOG_TAGS,
            ],
            timeout=self.timeout,
        ).stdout.decode("utf-8", "replace")
        tags = {}
        for line in output.splitlines():
            ref, sha, peeled = line.split("\x00")
            tags[ref.removeprefix(f"{CATALOG_TAGS}/")] = peeled or sha
        return tags


def read_index(mirror: CatalogMirror, head: CommitInfo) -> CatalogIndex:
    """Every package version: each release tag's package, plus the catalog ref's packages not tagged yet."""
    index = CatalogIndex(commit=head)
    tagged: set[tuple[str, str]] = set()
    for tag, commit in sorted(mirror.tags().items()):
        parsed = manifest.parse_tag(tag)
        if parsed is None:
            continue
        name, version = parsed
        found = [v for v in _read_packages(mirror, commit, tag, index.problems, only=name) if v.spec.name == name]
        if not found:
            index.problems.append(f"tag {tag}: no package folder with name {name!r} at {commit[:12]}")
            continue
        if found[0].spec.version != version:
            index.problems.append(
                f"tag {tag}: {found[0].folder}/{manifest.FILE_NAME} says version {found[0].spec.version!r}"
            )
            continue
        found[0].tag = tag
        index.versions.append(found[0])
        tagged.add((name, version))
    for untagged in _read_packages(mirror, head.sha, None, index.problems):
        if (untagged.spec.name, untagged.spec.version) not in tagged:
            index.versions.append(untagged)
    return index


def _read_packages(
    mirror: Mirror, commit: str, tag: str | None, problems: list[str], *, only: str | None = None
) -> list[IndexedVersion]:
    """The packages of one commit: each `<folder>/dagops-package.yaml`, with its README and example config.
    With `only`, just the folder of that name when there is one (the convention), else every folder, quietly:
    the problems of other packages at a tag's commit are theirs, reported where they are read themselves."""
    entries = {e.path: e for e in mirror.list_tree(commit)}
    files = [p for p in entries if p.count("/") == 1 and p.endswith(f"/{manifest.FILE_NAME}")]
    if only and f"{only}/{manifest.FILE_NAME}" in entries:
        files = [f"{only}/{manifest.FILE_NAME}"]
    elif only:
        problems = []
    blobs = dict(mirror.iter_blobs([entries[p].blob for p in files]))
    where = f"tag {tag}" if tag else commit[:12]
    found, names = [], set()
    for path in sorted(files):
        folder = path.split("/", 1)[0]
        try:
            spec = manifest.parse(blobs[entries[path].blob].decode("utf-8"), source=f"{where}: {path}")
        except (ConfigInvalid, UnicodeDecodeError) as err:
            problems.extend(getattr(err, "problems", None) or [f"{where}: {path}: {err}"])
            continue
        missing = [f for f in spec.files() if f"{folder}/{f}" not in entries]
        if missing:
            problems.append(f"{where}: {path}: listed files missing from the folder: {', '.join(missing)}")
            continue
        if spec.name in names:
            problems.append(f"{where}: {path}: package {spec.name!r} is defined by two folders; skipped")
            continue
        names.add(spec.name)
        texts = _texts(mirror, entries, folder, spec)
        found.append(IndexedVersion(spec, folder, commit, tag, texts.get("readme"), texts.get("example_config")))
    return found


def _texts(mirror: Mirror, entries: dict, folder: str, spec: PackageSpec) -> dict[str, str]:
    wanted = {
        key: entries[f"{folder}/{name}"].blob for key in ("readme", "example_config") if (name := getattr(spec, key))
    }
    contents = dict(mirror.iter_blobs(list(set(wanted.values()))))
    return {key: contents[blob][:MAX_TEXT].decode("utf-8", "replace") for key, blob in wanted.items()}


@contextmanager
def exported_package(mirror: Mirror, commit: str, folder: str, *, max_size: int) -> Iterator[Path]:
    """The package folder of `commit`, written into a temporary folder under `<dagops_home>/tmp/` (removed
    afterwards; if the process is killed, by `tempdirs.sweep`). Its symlinks are judged like a release's: only
    those that resolve inside the package folder are written."""
    scratch = tempdirs.make_temp_dir("dagops-package-")
    try:
        export_release(
            mirror=mirror,
            sha=commit,
            subdir=folder,
            dest=scratch / "package",
            base=None,
            max_size=max_size,
            metadata={"catalog_folder": folder},
        )
        yield scratch / "package"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def repo_from_folder(source: Path, dest: Path, *, message: str = "Catalog packages") -> list[str]:
    """Make `dest` a git repository (branch main) holding the package folders of `source`, one commit, and tag
    each package's version `<package>/v<version>`. Returns the tags. Used by tests and by `make run`."""
    source, dest = Path(source), Path(dest)
    shutil.copytree(source, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    identity = ["-c", "user.name=dagops-catalog", "-c", "user.email=catalog@localhost"]
    run_git(["init", "-q", "-b", "main", str(dest)])
    run_git(["-C", str(dest), "add", "-A"])
    run_git(["-C", str(dest), *identity, "commit", "-q", "--allow-empty", "-m", message])
    tags = []
    for spec_file in sorted(dest.glob(f"*/{manifest.FILE_NAME}")):
        spec = manifest.parse(spec_file.read_text(), source=str(spec_file))
        run_git(["-C", str(dest), "tag", "-f", spec.tag])
        tags.append(spec.tag)
    return tags
