"""A bundle version's folder on this machine, built once and atomically: `<versions_dir>/<version>/<namespace>/...`;
and the folder the dag-processor's tracking link of one namespace leads to (`tracked_folder`).

Each namespace comes from the cheapest place that holds exactly its commit:

1. the release folder this machine already has (the machine that published it, or any machine sharing
   dagops_home: the recorded path must lie inside this process's dagops_home): a copy made of hard links, so a
   500-file release costs 500 links and no data, and the version keeps its files when the release folder is
   pruned later (a symlink would dangle);
2. otherwise git: the commit is exported (the same export a sync makes, deploy/releases.py) from a mirror that
   has it, this machine's dagops mirror or the bundle's own one, fetched with the repository's connection when
   the commit is missing. So a worker needs no shared volume, only the state DB and the Git host.

The release's `.airflowignore` as it was live (dag_id clashes, skipped files) is written from the manifest, and
each namespace's settings go to `.dagops/namespaces/<namespace>.json` for the cluster policy, which on a worker
without dagops_home has no other place to read them (a promotion stage's dag_id suffix must apply there too).

Everything is built in a temp folder next to the final one and renamed into place: a folder with the version's
name is always complete. Callers hold the bundle's lock, so two tasks on one machine build a version once.

A namespace with an isolated environment (`isolated_env`) needs it on the machine that runs its tasks: the
namespace's settings in the version record the requirements it was built from, and `provide_environments` builds
it from them into this machine's dagops_home (releases/environments.py), where `namespace_python` looks for it. On
a machine that shares the publishers' dagops_home it is already there: one `stat`.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from airflow_dagops import paths, settings
from airflow_dagops.airflow import namespace_meta
from airflow_dagops.deploy.releases import TMP_PREFIX, export_release, link_tree
from airflow_dagops.errors import DagOpsError, NotFound
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.git.runner import run_git
from airflow_dagops.release_manifest import read_manifest
from airflow_dagops.releases import environments

log = logging.getLogger(__name__)


def build_version(manifest: dict, dest: Path, *, mirrors_dir: Path) -> None:
    """Make `dest` hold every namespace of `manifest` (see the module doc). A complete `dest` is left alone."""
    if dest.is_dir():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f"{TMP_PREFIX}{dest.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for namespace, entry in sorted((manifest.get("namespaces") or {}).items()):
            materialize_namespace(entry, tmp / namespace, mirrors_dir=mirrors_dir)
            namespace_meta.write_snapshot(tmp, namespace, entry.get("meta"), unread=True)
        os.rename(tmp, dest)  # atomic: the version's name only ever holds a complete folder
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def provide_environments(version_dir: Path) -> list[str]:
    """Build on this machine the isolated environment of each namespace of a version folder that records one
    (reused when it exists); returns the namespaces whose environment could not be built. A failure is logged,
    not raised: the version's other namespaces run their tasks all the same, and a task of that namespace fails
    on its missing interpreter, after the reason in this log."""
    failed = []
    snapshots = version_dir / namespace_meta.SNAPSHOT_DIR
    for namespace in sorted(p.stem for p in snapshots.glob("*.json")) if snapshots.is_dir() else []:
        meta = namespace_meta.read_snapshot(version_dir, namespace) or {}
        try:
            built = environments.ensure_recorded(namespace, meta)
        except DagOpsError as err:
            log.error("bundle: the isolated environment of %s could not be built on this machine: %s", namespace, err)
            failed.append(namespace)
            continue
        if built is not None and not built.reused:
            log.info("bundle: built the isolated environment of %s in %.1fs", namespace, built.seconds)
    return failed


def materialize_namespace(entry: dict, dest: Path, *, mirrors_dir: Path) -> str:
    """One namespace's files at `dest`; returns where they came from ("release folder" or "git")."""
    local = local_release(entry)
    if local is not None:
        link_tree(local, dest)
        source = "release folder"
    else:
        export_commit(entry, dest, mirrors_dir=mirrors_dir)
        source = "git"
    _follow_airflowignore(dest, entry)
    log.info("bundle: %s@%s from its %s", entry["repository"], entry["commit"][:12], source)
    return source


def tracked_folder(namespace: str, entry: dict, *, builds_dir: Path, mirrors_dir: Path) -> Path:
    """The folder the dag-processor parses for `namespace`: the release folder itself when this machine has it
    (it shares the publishers' dagops_home), else `<builds_dir>/<namespace>/<commit>`, exported from git once per
    (namespace, commit) and kept while the namespace serves that commit. A build's `.airflowignore` follows the
    entry's: a dag_id clash settled after the release went live changes it, not the commit."""
    local = local_release(entry)
    if local is not None:
        return local
    dest = builds_dir / namespace / entry["commit"]
    if not dest.is_dir():
        dest.parent.mkdir(parents=True, exist_ok=True)
        export_commit(entry, dest, mirrors_dir=mirrors_dir)  # through a temp folder and a rename
        log.info("bundle: %s@%s built from git for namespace %s", entry["repository"], entry["commit"][:12], namespace)
    _follow_airflowignore(dest, entry)
    return dest


def export_commit(entry: dict, dest: Path, *, mirrors_dir: Path) -> None:
    """The entry's commit exported at `dest` (the export a sync makes, atomic), from a mirror that has it."""
    export_release(
        mirror=mirror_with_commit(entry, mirrors_dir=mirrors_dir),
        sha=entry["commit"],
        subdir=entry.get("subdir"),
        dest=dest,
        base=None,
        max_size=settings.get_int("max_repo_size"),
        metadata={"repository": entry["repository"], "namespace": entry.get("namespace"), "ref": entry.get("ref")},
    )


def local_release(entry: dict) -> Path | None:
    """The entry's release folder when this machine has it: the path the publisher recorded, if it lies inside this
    process's dagops_home (a machine sharing the publisher's volume mounts it at the same place) and holds exactly
    the entry's commit. A path outside is another machine's, even when a folder happens to exist there: a worker
    with a dagops_home of its own builds from git."""
    if not entry.get("path"):
        return None
    local = Path(entry["path"])
    home = settings.dagops_home().resolve()
    if home not in local.resolve().parents:
        return None
    return local if (read_manifest(local) or {}).get("commit") == entry["commit"] else None


def mirror_with_commit(entry: dict, *, mirrors_dir: Path) -> Mirror:
    """A mirror holding the entry's commit: this machine's dagops mirror if it has it (never fetched here: syncs
    own it, under the repository lock), else the bundle's own mirror of the repository, fetched when needed."""
    commit, repository = entry["commit"], entry["repository"]
    url = entry.get("url")
    shared = paths.mirror_dir(repository)
    if has_commit(shared, commit):
        return Mirror(path=shared, url=url or "", conn_id=entry.get("conn_id"))
    if not url:
        raise NotFound(
            f"commit {commit[:12]} of repository {repository!r} is not on this machine and the bundle version does "
            "not say where to fetch it (the repository was removed); share dagops_home with this worker, or clear "
            "the DAG run"
        )
    mirror = Mirror(path=mirrors_dir / f"{repository}.git", url=url, conn_id=entry.get("conn_id"))
    if has_commit(mirror.path, commit):
        return mirror
    # The ref first: the usual case is a commit on the tracked branch, and every Git host serves refs. A commit
    # the branch no longer reaches (a force-push, a rollback to an old release) is then asked for by its id.
    ref = entry.get("ref")
    if ref:
        try:
            mirror.fetch_into(ref, "refs/dagops/bundle/tracked")
        except DagOpsError as err:
            log.warning("bundle: fetching %s of %s failed (%s); asking for the commit itself", ref, repository, err)
    if not has_commit(mirror.path, commit):
        mirror.fetch_into(commit, f"refs/dagops/bundle/{commit}")
    if not has_commit(mirror.path, commit):
        raise NotFound(f"commit {commit[:12]} of repository {repository!r} could not be fetched from its remote")
    return mirror


def has_commit(mirror: Path, commit: str) -> bool:
    if not (mirror / "HEAD").is_file():
        return False
    result = run_git(["-C", str(mirror), "cat-file", "-e", f"{commit}^{{commit}}"], timeout=60, check=False)
    return result.returncode == 0


def _follow_airflowignore(folder: Path, entry: dict) -> None:
    """The folder's `.airflowignore` is the entry's: the release's as it was live, unless a dag_id clash settled
    since changed it. Usually it is already (a hard link of the release's file): then nothing is written."""
    if _read_text(folder / ".airflowignore") != entry.get("airflowignore"):
        _replace_file(folder / ".airflowignore", entry.get("airflowignore"))


def _replace_file(path: Path, text: str | None) -> None:
    """Write (or remove) a file by replacing it: in a hard-linked copy, writing in place would change the
    release folder's file too."""
    if text is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(f".{path.name}.dagops-tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return None
