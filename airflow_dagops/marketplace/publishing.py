"""Publishing a package folder to a catalog: validate it, then push it to a new branch of the catalog repository.

The push is the pull-request step: a catalog maintainer merges the branch and tags the version. The catalog
is cloned and pushed to with its Airflow connection's credentials (`_remote_git`); a version already
released, or already waiting on its branch, is a conflict and never overwritten.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import select

from airflow_dagops import tempdirs
from airflow_dagops.deploy.links import escaping_links
from airflow_dagops.errors import Conflict, InvalidInput, ValidationFailed
from airflow_dagops.git.remote import run_remote
from airflow_dagops.git.runner import run_git
from airflow_dagops.marketplace import manifest
from airflow_dagops.marketplace.catalogs import load_catalog
from airflow_dagops.marketplace.users import user_name
from airflow_dagops.repositories.declarative import ConfigInvalid
from airflow_dagops.safety import display_url, validate_ref
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import MarketplacePackage
from airflow_dagops.validate import validate

log = logging.getLogger(__name__)


def publish(path: str | Path, *, catalog: str, actor: str) -> dict:
    """Validate a package folder and push it to a new branch `dagops/publish-<name>-<version>` of the catalog
    repository: the pull-request step (a catalog maintainer merges it and tags the version)."""
    actor = user_name(actor, what="actor")
    folder = Path(path).expanduser()
    spec = _read_local_package(folder)
    with session_scope() as session:
        row = load_catalog(session, catalog)
        url, ref, conn_id = row.url, row.ref, row.conn_id
        released = session.scalar(
            select(MarketplacePackage.id).where(
                MarketplacePackage.catalog_id == row.id,
                MarketplacePackage.name == spec.name,
                MarketplacePackage.version == spec.version,
                MarketplacePackage.tag.is_not(None),
            )
        )
    if released:
        raise Conflict(f"{spec.name} {spec.version} is already released in {catalog!r}; raise the version")
    report = validate(folder, dag_owners={}, use_cache=False)
    if not report.passed:
        raise ValidationFailed(
            f"{spec.name} {spec.version} did not pass validation: {report.describe_errors()}. Nothing was pushed.",
            details={"findings": [f.to_dict() for f in report.findings]},
        )
    branch = f"dagops/publish-{spec.name}-{spec.version}"
    validate_ref(branch)
    commit = _push_branch(folder, spec, branch, actor=actor, url=url, ref=ref, conn_id=conn_id)
    log.info("%s published %s %s to %s as branch %s", actor, spec.name, spec.version, catalog, branch)
    return {
        "package": spec.name,
        "version": spec.version,
        "catalog": catalog,
        "branch": branch,
        "commit": commit,
        "message": f"pushed {spec.name} {spec.version} to branch {branch} of {display_url(url)}; "
        "open a pull request from it, and tag the merge "
        f"{spec.tag} to release it",
    }


def _read_local_package(folder: Path):
    escaping = escaping_links(folder, skip_dirs=(".git", "__pycache__")) if folder.is_dir() else {}
    if escaping:
        # Judged like a release's links (by where they resolve, inside the folder only): what they lead to is
        # not part of the package, and copying through them would push files from outside it.
        shown = "; ".join(f"{path}: {why}" for path, why in list(escaping.items())[:10])
        raise InvalidInput(
            f"{folder} holds symlinks that do not resolve inside it ({shown}); "
            "replace them with the files themselves, or remove them"
        )
    spec_file = folder / manifest.FILE_NAME
    if not spec_file.is_file():
        raise InvalidInput(
            f"{folder} has no {manifest.FILE_NAME}; a package folder needs one (see docs/marketplace.md)"
        )
    try:
        spec = manifest.parse(spec_file.read_text(encoding="utf-8"), source=str(spec_file))
    except UnicodeDecodeError as err:
        raise InvalidInput(f"{spec_file} is not UTF-8 text: {err}") from err
    missing = [f for f in spec.files() if not (folder / f).is_file()]
    if missing:
        raise ConfigInvalid([f"{spec_file}: listed files missing from the folder: {', '.join(missing)}"])
    return spec


def _push_branch(folder: Path, spec, branch: str, *, actor: str, url: str, ref: str, conn_id: str | None) -> str:
    """Clone the catalog's ref into a scratch folder, replace the package's folder, commit, push a new branch."""
    scratch = Path(tempfile.mkdtemp(prefix=tempdirs.owned_prefix("dagops-publish-")))
    work = scratch / "catalog"
    identity = ["-c", f"user.name={actor}", "-c", "user.email=dagops-publish@localhost"]
    try:
        _remote_git(
            ["clone", "--quiet", "--no-tags", "--depth", "50", "--branch", ref, "--", url, str(work)], url, conn_id
        )
        target = work / spec.name
        shutil.rmtree(target, ignore_errors=True)
        # Links stay links (each checked in _read_local_package): git stores them as links, and the catalog's
        # export judges them again.
        shutil.copytree(folder, target, symlinks=True, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc"))
        run_git(["-C", str(work), "add", "-A", "--", spec.name])
        message = f"{spec.name} {spec.version}: {spec.summary}\n\nPublished with dagops by {actor}."
        run_git(["-C", str(work), *identity, "commit", "--quiet", "--allow-empty", "-m", message])
        commit = run_git(["-C", str(work), "rev-parse", "HEAD"]).stdout.decode().strip()
        # The same version pushed before is a conflict, never overwritten (and the push has no force either).
        if _remote_git(["ls-remote", "--heads", "--", url, f"refs/heads/{branch}"], url, conn_id).strip():
            raise Conflict(f"branch {branch} already exists in {display_url(url)}: that version waits for review")
        _remote_git(["-C", str(work), "push", "--quiet", "--", url, f"HEAD:refs/heads/{branch}"], url, conn_id)
        return commit
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _remote_git(args: list[str], url: str, conn_id: str | None) -> str:
    """git against the catalog with its connection (git.remote: credentials, timeout, classified errors;
    a refused push is a Conflict)."""
    result = run_remote(args, url=url, conn_id=conn_id, local="the catalog's scratch clone")
    return result.stdout.decode("utf-8", "replace")
