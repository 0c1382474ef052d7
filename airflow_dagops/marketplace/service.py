"""The DAG marketplace, as use cases: catalogs, search, install, ratings, reviews, badges and publishing.

A catalog is a git repository with one folder per package (`<folder>/dagops-package.yaml`), versions by
`<package>/v<version>` tags. `refresh_catalogs` reads every version straight from git objects into the state
DB; everything else works on that index. Several catalogs may carry the same package name: the catalog
with the lower priority number provides THE package, the others show in its info as `other_catalogs`.

Installing makes a package an ordinary repository (`pkg-<name>`, ref = the version's tag, subdir = the
package folder), so it goes through the same validation pipeline and atomic publish as any repository. A
tag never moves: an installed package stays at its version until `update`. When validation blocks an
install, the repository stays registered with nothing live (its findings are in `dagops repos show`), so
the user can read why and then `uninstall`, or `update` to a version that passes.

Every function returns JSON-able dicts; the faces (CLI, REST, UI, the dagops_marketplace_check DAG) are thin.
"""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from airflow_dagops import settings, tempdirs
from airflow_dagops.deploy.links import escaping_links
from airflow_dagops.errors import Conflict, DagOpsError, GitError, InvalidInput, NotFound, ValidationFailed
from airflow_dagops.git.credentials import attached_origin, attaching, git_credentials_env
from airflow_dagops.git.runner import git_env, last_lines, run_git
from airflow_dagops.marketplace import catalog as catalog_git
from airflow_dagops.marketplace import manifest
from airflow_dagops.marketplace import search as ranking
from airflow_dagops.releases import diff as diff_module
from airflow_dagops.repositories.declarative import ConfigInvalid
from airflow_dagops.repositories.info import RepositoryInfo, repository_info
from airflow_dagops.repositories.registry import add_repository, remove_repository, update_repository, validate_conn_id
from airflow_dagops.safety import display_url, redact, validate_name, validate_ref, validate_url
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import (
    MarketplaceBadge,
    MarketplaceCatalog,
    MarketplaceInstall,
    MarketplacePackage,
    MarketplaceRating,
    MarketplaceReview,
    Release,
    Repository,
    iso_time,
    utcnow,
)
from airflow_dagops.store.queries import load_repository
from airflow_dagops.sync.sync import sync_repository
from airflow_dagops.validate import Report, validate

log = logging.getLogger(__name__)

REVIEW_MAX = 2000
AUTHOR_MAX = 250
REPOSITORY_PREFIX = "pkg-"
# The pipeline's steps, as a badge shows them; each rule belongs to the module (step) that reports it.
BADGE_STEPS = ("files", "syntax", "security", "compat", "imports", "structure", "policy", "dependencies")


# -- catalogs -----------------------------------------------------------------------------------------------
def add_catalog(
    name: str, url: str, *, priority: int = 100, ref: str = "main", conn_id: str | None = None, verify: bool = True
) -> dict:
    """Register a catalog. With `verify`, its remote and ref are reached first; bad input changes nothing."""
    name = validate_name(name, what="catalog name")
    url = validate_url((url or "").strip(), allowed_protocols=settings.allowed_protocols())
    ref = validate_ref(ref)
    conn_id = validate_conn_id(conn_id)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 1_000_000:
        raise InvalidInput(f"priority must be a whole number from 0 to 1000000 (lower wins), got {priority!r}")
    with session_scope() as session:
        _ensure_new_catalog(session, name)
    if verify:
        with attaching(conn_id, url):  # registering it with the connection attaches the connection to its host
            _catalog_mirror(name, url, conn_id).ls_remote(ref)
    with session_scope() as session:
        _ensure_new_catalog(session, name)
        row = MarketplaceCatalog(
            name=name,
            url=url,
            ref=ref,
            priority=priority,
            conn_id=conn_id,
            conn_origin=attached_origin(conn_id, url),
        )
        session.add(row)
        session.flush()
        log.info("registered catalog %s (%s @ %s)", name, display_url(url), ref)
        return _catalog_dict(row, 0)


def _ensure_new_catalog(session: Session, name: str) -> None:
    if session.scalar(select(MarketplaceCatalog.id).where(MarketplaceCatalog.name == name)):
        raise Conflict(f"a catalog named {name!r} is already registered; remove it first or pick another name")


def list_catalogs() -> list[dict]:
    with session_scope() as session:
        counts = dict(
            session.execute(
                select(MarketplacePackage.catalog_id, func.count(func.distinct(MarketplacePackage.name))).group_by(
                    MarketplacePackage.catalog_id
                )
            ).all()
        )
        return [_catalog_dict(row, counts.get(row.id, 0)) for row in _catalogs(session)]


def remove_catalog(name: str) -> str:
    """Forget a catalog and its index. Packages installed from it stay installed (they are repositories)."""
    with session_scope() as session:
        row = _load_catalog(session, name)
        session.execute(delete(MarketplaceBadge).where(MarketplaceBadge.catalog == name))
        session.delete(row)
    shutil.rmtree(_mirror_path(name), ignore_errors=True)
    return f"removed catalog {name!r}; packages installed from it stay installed"


def refresh_catalogs(names: list[str] | None = None) -> list[dict]:
    """Fetch each catalog (all of them, or `names`) and rebuild its package index. A catalog that cannot be
    fetched keeps its previous index and records the error; the others are refreshed anyway."""
    with session_scope() as session:
        rows = _catalogs(session, names)
        wanted = [(row.id, row.name, row.url, row.ref, row.conn_id) for row in rows]
    return [_refresh_one(*item) for item in wanted]


def _refresh_one(catalog_id: int, name: str, url: str, ref: str, conn_id: str | None) -> dict:
    try:
        index = _catalog_mirror(name, url, conn_id).fetch_catalog(ref)
    except DagOpsError as err:
        message = redact(str(err))
        with session_scope() as session:
            row = session.get(MarketplaceCatalog, catalog_id)
            row.last_error, row.last_refreshed_at = message, utcnow()
        return {"catalog": name, "status": "failed", "message": message}
    with session_scope() as session:
        row = session.get(MarketplaceCatalog, catalog_id)
        session.execute(delete(MarketplacePackage).where(MarketplacePackage.catalog_id == catalog_id))
        for found in index.versions:
            session.add(
                MarketplacePackage(
                    catalog_id=catalog_id,
                    name=found.spec.name,
                    version=found.spec.version,
                    tag=found.tag,
                    commit_sha=found.commit,
                    folder=found.folder,
                    meta=found.meta(),
                )
            )
        row.last_commit, row.last_error, row.problems = index.commit.sha, None, index.problems
        row.last_refreshed_at = utcnow()
    packages = {v.spec.name for v in index.versions}
    for problem in index.problems:
        log.warning("catalog %s: %s", name, problem)
    return {
        "catalog": name,
        "status": "ok",
        "commit": index.commit.sha,
        "packages": len(packages),
        "versions": len(index.versions),
        "problems": index.problems,
        "message": f"{name}: {len(packages)} packages, {len(index.versions)} versions at {index.commit.sha[:12]}"
        + (f"; {len(index.problems)} problems" if index.problems else ""),
    }


def catalog_repo_from_folder(src: str | Path, dest: str | Path) -> list[str]:
    """Turn a folder of package folders (examples/catalog) into a git repository with version tags."""
    return catalog_git.repo_from_folder(Path(src), Path(dest))


# -- search and info ---------------------------------------------------------------------------------------
@dataclass
class _Package:
    """One package name across catalogs: the winning catalog's versions, and the other catalogs' newest."""

    name: str
    catalog: MarketplaceCatalog
    versions: list[MarketplacePackage]  # newest first
    others: list[tuple[MarketplaceCatalog, MarketplacePackage]]

    @property
    def current(self) -> MarketplacePackage:
        """The version shown and installed by default: the newest released one (or, if none, the newest)."""
        return _current(self.versions)

    def released(self, version: str | None) -> MarketplacePackage:
        tagged = [v for v in self.versions if v.tag]
        if version is None:
            if not tagged:
                raise NotFound(f"package {self.name!r} has no released version yet (no {self.name}/v<version> tag)")
            return tagged[0]
        for row in self.versions:
            if row.version == str(version).strip().removeprefix("v"):
                if not row.tag:
                    tag = manifest.version_tag(self.name, row.version)
                    raise NotFound(f"{self.name} {row.version} is not released yet (no tag {tag})")
                return row
        shown = ", ".join(v.version for v in tagged) or "none"
        raise NotFound(f"package {self.name!r} has no version {version!r}; released versions: {shown}")


def _current(versions: list[MarketplacePackage]) -> MarketplacePackage:
    return next((v for v in versions if v.tag), versions[0])


def _packages(session: Session) -> dict[str, _Package]:
    """Every package name, with the catalog that provides it (lowest priority number, then catalog name)."""
    by_name: dict[str, dict[int, list[MarketplacePackage]]] = {}
    for row in session.scalars(select(MarketplacePackage)):
        by_name.setdefault(row.name, {}).setdefault(row.catalog_id, []).append(row)
    catalogs = {c.id: c for c in _catalogs(session)}
    packages = {}
    for name, per_catalog in by_name.items():
        ordered = sorted(per_catalog, key=lambda cid: (catalogs[cid].priority, catalogs[cid].name))
        versions = {
            cid: sorted(rows, key=lambda r: manifest.version_key(r.version), reverse=True)
            for cid, rows in per_catalog.items()
        }
        winner = ordered[0]
        others = [(catalogs[cid], _current(versions[cid])) for cid in ordered[1:]]
        packages[name] = _Package(name, catalogs[winner], versions[winner], others)
    return packages


def _load_package(session: Session, name: str) -> _Package:
    package = _packages(session).get((name or "").strip())
    if package is None:
        raise NotFound(
            f"no package named {name!r} in the catalogs; try `dagops marketplace search` "
            "(or `dagops marketplace catalogs refresh`)"
        )
    return package


def search(query: str, *, limit: int = 20) -> list[dict]:
    """Ranked matches over name, tags, summary and description (typo-tolerant); an empty query lists all."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 500:
        raise InvalidInput(f"limit must be a whole number from 1 to 500, got {limit!r}")
    if len(query or "") > 200:
        raise InvalidInput("a search query has at most 200 characters")
    with session_scope() as session:
        packages = _packages(session)
        docs = {
            name: ranking.Document(
                name=name,
                tags=tuple(p.current.meta.get("tags") or []),
                summary=p.current.meta.get("summary") or "",
                description=p.current.meta.get("description") or "",
            )
            for name, p in packages.items()
        }
        ranked = ranking.rank(query or "", list(docs.values()), limit=limit)
        stats = _Stats.read(session)
        return [{**_summary(packages[doc.name], stats), "score": round(value, 2)} for doc, value in ranked]


def package_info(name: str) -> dict:
    """Everything about one package: the search fields, its files, versions, README, reviews and ratings."""
    with session_scope() as session:
        package = _load_package(session, name)
        stats = _Stats.read(session)
        meta = package.current.meta
        reviews = session.scalars(
            select(MarketplaceReview)
            .where(MarketplaceReview.package == package.name)
            .order_by(MarketplaceReview.created_at.desc(), MarketplaceReview.id.desc())
        ).all()
        stars = Counter(
            session.scalars(select(MarketplaceRating.stars).where(MarketplaceRating.package == package.name)).all()
        )
        return {
            **_summary(package, stats),
            "description": meta.get("description") or "",
            "author": meta.get("author") or "",
            "license": meta.get("license") or "",
            "folder": package.current.folder,
            "commit": package.current.commit_sha,
            "versions": [
                {"version": v.version, "tag": v.tag, "commit": v.commit_sha, "released": bool(v.tag)}
                for v in package.versions
            ],
            "providers": list(meta.get("providers") or []),
            "packages": list(meta.get("packages") or []),
            "missing_providers": missing_requirements(meta.get("providers") or []),
            "missing_packages": missing_requirements(meta.get("packages") or []),
            "dag_files": list(meta.get("dags") or []),
            "readme": meta.get("readme_text"),
            "example_config": meta.get("example_config_text"),
            "other_catalogs": [{"catalog": c.name, "version": row.version} for c, row in package.others],
            "reviews": [
                {"id": r.id, "author": r.author, "text": r.text, "created_at": iso_time(r.created_at)} for r in reviews
            ],
            "rating_histogram": {str(n): stars.get(n, 0) for n in range(1, 6)},
        }


@dataclass
class _Stats:
    """Ratings, install counts, active installs and badges, read once per request for every package."""

    ratings: dict[str, tuple[float, int]]
    installs: dict[str, int]
    namespaces: dict[str, str]
    badges: dict[tuple[str, str], MarketplaceBadge]

    @classmethod
    def read(cls, session: Session) -> _Stats:
        ratings = {
            package: (float(avg), count)
            for package, avg, count in session.execute(
                select(MarketplaceRating.package, func.avg(MarketplaceRating.stars), func.count()).group_by(
                    MarketplaceRating.package
                )
            )
        }
        installs = dict(
            session.execute(
                select(MarketplaceInstall.package, func.count())
                .where(MarketplaceInstall.status != "blocked")
                .group_by(MarketplaceInstall.package)
            ).all()
        )
        namespaces = dict(
            session.execute(
                select(MarketplaceInstall.package, MarketplaceInstall.namespace).where(
                    MarketplaceInstall.removed_at.is_(None)
                )
            ).all()
        )
        badges = {(b.catalog, b.package): b for b in session.scalars(select(MarketplaceBadge))}
        return cls(ratings, installs, namespaces, badges)


def _summary(package: _Package, stats: _Stats) -> dict:
    meta = package.current.meta
    average, count = stats.ratings.get(package.name, (None, 0))
    return {
        "name": package.name,
        "version": package.current.version,
        "summary": meta.get("summary") or "",
        "tags": list(meta.get("tags") or []),
        "catalog": package.catalog.name,
        "rating": round(average, 2) if average is not None else None,
        "ratings_count": count,
        "installs": stats.installs.get(package.name, 0),
        "badge": _badge_dict(stats.badges.get((package.catalog.name, package.name))),
        "installed_namespace": stats.namespaces.get(package.name),
    }


def _badge_dict(badge: MarketplaceBadge | None) -> dict:
    if badge is None:
        return {"status": "unknown", "checks": {}, "checked_at": None}
    return {
        "status": badge.status,
        "checks": dict(badge.checks or {}),
        "checked_at": iso_time(badge.checked_at),
        "version": badge.version,
        "commit": badge.commit_sha,
        "findings": badge.findings,
        "warnings": badge.warnings,
        "errors": list(badge.detail or []),
    }


# -- install, update, uninstall ----------------------------------------------------------------------------
def install(
    name: str, *, version: str | None = None, namespace: str | None = None, actor: str, sync: bool = True
) -> dict:
    """Install a released version as the pinned repository `pkg-<name>` in `namespace` (default: the package
    name). With `sync`, validate and publish it now; without, the caller triggers the sync (REST: dagops_sync)."""
    actor = _author(actor, what="actor")
    with session_scope() as session:
        package = _load_package(session, name)
        row = package.released(version)
        active = _active_install(session, package.name)
        if active is not None:
            raise Conflict(
                f"{package.name} is already installed ({active.version}, namespace {active.namespace!r}); "
                "use `dagops marketplace update` or uninstall it first"
            )
        catalog = package.catalog
        source = {"url": catalog.url, "conn_id": catalog.conn_id, "tag": row.tag, "folder": row.folder}
        chosen, catalog_name, meta = row.version, catalog.name, dict(row.meta)
    repository = REPOSITORY_PREFIX + package.name
    namespace = validate_name(namespace or package.name, what="namespace")
    add_repository(
        repository,
        source["url"],
        ref=source["tag"],
        namespace=namespace,
        conn_id=source["conn_id"],
        subdir=source["folder"],
    )
    with session_scope() as session:
        record = MarketplaceInstall(
            package=package.name,
            catalog=catalog_name,
            version=chosen,
            repository=repository,
            namespace=namespace,
            actor=actor,
            status="registered",
        )
        session.add(record)
        session.flush()
        install_id = record.id
    missing = missing_requirements(meta.get("providers") or [])
    missing_packages = missing_requirements(meta.get("packages") or [])
    result = {
        "package": package.name,
        "version": chosen,
        "repository": repository,
        "namespace": namespace,
        "catalog": catalog_name,
        "status": "registered",
        "message": f"{package.name} {chosen} registered as repository {repository!r}; "
        "a sync validates and publishes it",
        "findings": [],
        "missing_providers": missing,
        "missing_packages": missing_packages,
    }
    if sync:
        result.update(_sync_install(install_id, repository, trigger="manual"))
    result["message"] += _providers_note(missing + missing_packages)
    return result


def _sync_install(install_id: int, repository: str, *, trigger: str) -> dict:
    """Validate and publish an installed package now; record whether it went live or was blocked."""
    outcome = sync_repository(repository, trigger=trigger)
    status = "published" if outcome.status in ("published", "unchanged") else "blocked"
    if outcome.status == "testing":
        status = "registered"  # its own tests run first (dagops_test), then it goes live
    with session_scope() as session:
        session.get(MarketplaceInstall, install_id).status = status
    message = outcome.message
    if status == "blocked":
        message = (
            f"blocked: {outcome.message} Nothing is live; the repository {repository!r} stays registered with "
            "its findings (`dagops repos show`). Uninstall it, or update to a version that passes."
        )
    return {"status": status, "message": message, "findings": outcome.findings, "commit": outcome.commit}


def _providers_note(missing: list[str]) -> str:
    if not missing:
        return ""
    return (
        f". Missing providers/packages: {', '.join(missing)}: install them on every Airflow machine, "
        "or its tasks fail at run time"
    )


def missing_requirements(requirements: list[str]) -> list[str]:
    """The requirements (provider or package distributions) the Airflow environment does not satisfy."""
    missing = []
    for text in requirements:
        try:
            requirement = Requirement(text)
        except ValueError:
            missing.append(text)
            continue
        try:
            installed = importlib.metadata.version(canonicalize_name(requirement.name))
        except importlib.metadata.PackageNotFoundError:
            missing.append(text)
            continue
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            missing.append(f"{text} (installed: {installed})")
    return missing


def _active_install(session: Session, package: str) -> MarketplaceInstall | None:
    """The current install of a package; one whose repository was removed by other means is closed first."""
    active = session.scalar(
        select(MarketplaceInstall).where(MarketplaceInstall.package == package, MarketplaceInstall.removed_at.is_(None))
    )
    if active is not None and session.scalar(select(Repository.id).where(Repository.name == active.repository)) is None:
        active.removed_at = utcnow()
        return None
    return active


def _load_install(session: Session, name: str) -> MarketplaceInstall:
    active = _active_install(session, (name or "").strip())
    if active is None:
        raise NotFound(f"package {name!r} is not installed; see `dagops marketplace list --installed`")
    return active


def uninstall(name: str, *, actor: str) -> str:
    """Remove an installed package: its repository goes, and with it its DAGs."""
    actor = _author(actor, what="actor")
    with session_scope() as session:
        active = _load_install(session, name)
        install_id, repository = active.id, active.repository
    said = remove_repository(repository)
    with session_scope() as session:
        session.get(MarketplaceInstall, install_id).removed_at = utcnow()
    log.info("%s uninstalled %s (%s)", actor, name, repository)
    return f"uninstalled {name}: {said}"


def list_installed() -> list[dict]:
    """The installed packages: version, namespace, repository status, and whether a newer version is released."""
    with session_scope() as session:
        packages = _packages(session)
        installs = session.scalars(
            select(MarketplaceInstall)
            .where(MarketplaceInstall.removed_at.is_(None))
            .order_by(MarketplaceInstall.package)
        ).all()
        result = []
        for active in installs:
            repo = session.scalar(select(Repository).where(Repository.name == active.repository))
            if repo is None:
                active.removed_at = utcnow()
                continue
            info = repository_info(session, repo)
            package = packages.get(active.package)
            latest = package.current.version if package else None
            result.append(
                {
                    "package": active.package,
                    "version": active.version,
                    "catalog": active.catalog,
                    "namespace": active.namespace,
                    "repository": active.repository,
                    "status": _install_status(active.status, info),
                    "repository_status": info.status,
                    "live_commit": info.live_commit,
                    "installed_by": active.actor,
                    "installed_at": iso_time(active.created_at),
                    "latest_version": latest,
                    "update_available": bool(
                        latest and manifest.version_key(latest) > manifest.version_key(active.version)
                    ),
                }
            )
        return result


def _install_status(recorded: str, info: RepositoryInfo) -> str:
    """An install registered without a sync (the REST face) is settled later by dagops_sync: read the outcome
    from its repository."""
    if recorded != "registered":
        return recorded
    if info.live_commit:
        return "published"
    return "blocked" if info.status == "failed" else "registered"


@dataclass
class _UpdatePlan:
    """What `update` reads from the DB in one transaction, so no session is held during git and validation."""

    package: str
    install_id: int
    repository: str
    from_version: str
    old_ref: str
    target: MarketplacePackage
    source: tuple[str, str, str | None, str]  # catalog name, url, conn_id, ref
    live: dict | None  # {id, commit, status} of the live release
    live_summary: dict | None


def update(name: str, *, version: str | None = None, dry_run: bool = False, actor: str) -> dict:
    """Move an installed package to another released version (default: the newest). The structural diff from
    what is live comes first; with `dry_run` that is all (the new version is validated in a scratch folder,
    nothing changes). A version that fails validation changes nothing live."""
    actor = _author(actor, what="actor")
    plan = _plan_update(name, version)
    to_version = plan.target.version
    result = {
        "package": plan.package,
        "from_version": plan.from_version,
        "to_version": to_version,
        "repository": plan.repository,
        "dry_run": dry_run,
    }
    if to_version == plan.from_version:
        said = f"{plan.package} is already at {to_version}; nothing to update"
        return {**result, "status": "unchanged", "message": said}
    report = _validate_version(*plan.source, plan.target.commit_sha, plan.target.folder)
    structural = _diff(plan.live, plan.live_summary, plan.target, report)
    result.update(
        diff=structural,
        diff_lines=_diff_lines(structural, to_version),
        passed=report.passed,
        findings=[f.to_dict() for f in report.findings],
    )
    if dry_run:
        verdict = "passes validation" if report.passed else f"would be refused: {report.describe_errors()}"
        message = f"dry run: {plan.package} {plan.from_version} → {to_version} {verdict}; nothing was changed"
        return {**result, "status": "dry_run", "message": message}
    if not report.passed:
        raise ValidationFailed(
            f"{plan.package} {to_version} did not pass validation: {report.describe_errors()}. "
            f"Nothing changed; {plan.from_version} stays live.",
            details={"findings": result["findings"]},
        )
    synced = _move_to_version(plan)
    log.info("%s updated %s from %s to %s: %s", actor, name, plan.from_version, to_version, synced["status"])
    return {**result, **synced}


def _plan_update(name: str, version: str | None) -> _UpdatePlan:
    with session_scope() as session:
        active = _load_install(session, name)
        package = _load_package(session, active.package)
        repo = load_repository(session, active.repository)
        live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
        catalog = package.catalog
        return _UpdatePlan(
            package=active.package,
            install_id=active.id,
            repository=active.repository,
            from_version=active.version,
            old_ref=repo.ref,
            target=package.released(version),
            source=(catalog.name, catalog.url, catalog.conn_id, catalog.ref),
            live={"id": live.id, "commit": live.commit_sha, "status": live.status} if live else None,
            live_summary=dict(live.validation_summary or {}) if live else None,
        )


def _move_to_version(plan: _UpdatePlan) -> dict:
    """Point the repository at the new tag and sync; if the sync blocks it, point it back at what is live."""
    update_repository(plan.repository, verify=False, ref=plan.target.tag)
    synced = _sync_install(plan.install_id, plan.repository, trigger="manual")
    with session_scope() as session:
        record = session.get(MarketplaceInstall, plan.install_id)
        if synced["status"] == "blocked":
            record.status = "published" if plan.live else "blocked"
        else:
            record.version = plan.target.version
    if synced["status"] == "blocked":
        update_repository(plan.repository, verify=False, ref=plan.old_ref)
    return synced


def _diff_lines(structural: dict, version: str) -> list[str]:
    live = structural["from"]
    source = f"release {live['id']} ({live['commit'][:12]})" if live else "nothing"
    lines = [f"{source} → {version} ({structural['to']['commit'][:12]})"]
    lines += [f"note: {note}" for note in structural["notes"]]
    changes = diff_module.describe(structural)
    if changes:
        return lines + changes
    return lines + (["no structural changes"] if structural["complete"] else [])


def _diff(live: dict | None, live_summary: dict | None, target: MarketplacePackage, report: Report) -> dict:
    """diff.py's structural diff from the live release to the validated (not yet published) version."""
    new_summary = report.summary()
    notes = []
    if live is None:
        notes.append("nothing is live: every DAG of the target is new")
    elif not diff_module.has_structure(live_summary):
        notes.append(f"no structure recorded for release {live['id']} (the structure step was skipped)")
    if not diff_module.has_structure(new_summary):
        notes.append(f"no structure recorded for {target.version} (the structure step was skipped)")
    known = (live is None or diff_module.has_structure(live_summary)) and diff_module.has_structure(new_summary)
    changes = diff_module.diff_summaries(live_summary or {}, new_summary) if known else {}
    return {
        "from": live,
        "to": {"id": None, "commit": target.commit_sha, "status": "validated" if report.passed else "failed"},
        "complete": known,
        "notes": notes,
        "dags_added": changes.get("dags_added", []),
        "dags_removed": changes.get("dags_removed", []),
        "changed": changes.get("changed", {}),
    }


# -- ratings and reviews -----------------------------------------------------------------------------------
def rate(name: str, stars, *, author: str) -> dict:
    """Rate a package 1 to 5 stars; an author's new rating replaces their old one."""
    author = _author(author)
    if isinstance(stars, str) and stars.strip().isdigit():
        stars = int(stars.strip())
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise InvalidInput(f"a rating is a whole number of stars from 1 to 5, got {stars!r}")
    with session_scope() as session:
        package = _load_package(session, name).name
        row = session.scalar(
            select(MarketplaceRating).where(MarketplaceRating.package == package, MarketplaceRating.author == author)
        )
        if row is None:
            session.add(MarketplaceRating(package=package, author=author, stars=stars))
        else:
            row.stars, row.updated_at = stars, utcnow()
        session.flush()
        average, count = session.execute(
            select(func.avg(MarketplaceRating.stars), func.count()).where(MarketplaceRating.package == package)
        ).one()
        return {
            "package": package,
            "author": author,
            "stars": stars,
            "rating": round(float(average), 2),
            "ratings_count": count,
        }


def review(name: str, text: str, *, author: str) -> dict:
    """Add a plain-text review (stripped, 1 to 2000 characters), stored exactly as given: faces escape it."""
    author = _author(author)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("a review needs some text")
    text = text.strip()
    if len(text) > REVIEW_MAX:
        raise InvalidInput(f"a review has at most {REVIEW_MAX} characters; this one has {len(text)}")
    with session_scope() as session:
        package = _load_package(session, name).name
        row = MarketplaceReview(package=package, author=author, text=text)
        session.add(row)
        session.flush()
        return {
            "id": row.id,
            "package": package,
            "author": author,
            "text": row.text,
            "created_at": iso_time(row.created_at),
        }


def _author(value, *, what: str = "author") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"an {what} (user name) is required")
    value = value.strip()
    if len(value) > AUTHOR_MAX or any(ord(c) < 32 for c in value):
        raise InvalidInput(f"invalid {what} {value[:40]!r}: at most {AUTHOR_MAX} printable characters")
    return value


# -- badges ------------------------------------------------------------------------------------------------
def check_packages(names: list[str] | None = None) -> list[dict]:
    """Validate the shown version of every package of every catalog (or only `names`) with the pipeline and
    store its badge: passing or failing, and per step passed / failed / skipped."""
    with session_scope() as session:
        work = []
        for catalog in _catalogs(session):
            per_name: dict[str, list[MarketplacePackage]] = {}
            for row in catalog.packages:
                per_name.setdefault(row.name, []).append(row)
            for package, rows in sorted(per_name.items()):
                if names and package not in names:
                    continue
                rows.sort(key=lambda r: manifest.version_key(r.version), reverse=True)
                row = _current(rows)
                work.append(
                    (
                        catalog.name,
                        catalog.url,
                        catalog.conn_id,
                        catalog.ref,
                        package,
                        row.version,
                        row.commit_sha,
                        row.folder,
                    )
                )
    if names:
        unknown = set(names) - {item[4] for item in work}
        if unknown:
            raise NotFound(f"no package named {', '.join(sorted(unknown))} in the catalogs")
    return [_check_one(*item) for item in work]


def _check_one(catalog, url, conn_id, ref, package, version, commit, folder) -> dict:
    try:
        report = _validate_version(catalog, url, conn_id, ref, commit, folder)
    except DagOpsError as err:
        report = Report(findings=[_finding("package-export-failed", redact(str(err)))])
    checks = badge_checks(report)
    errors = [f.to_dict() for f in report.errors]
    with session_scope() as session:
        badge = session.scalar(
            select(MarketplaceBadge).where(MarketplaceBadge.catalog == catalog, MarketplaceBadge.package == package)
        )
        if badge is None:
            badge = MarketplaceBadge(catalog=catalog, package=package)
            session.add(badge)
        badge.version, badge.commit_sha = version, commit
        badge.status = "passing" if report.passed else "failing"
        badge.checks, badge.findings, badge.warnings = checks, len(errors), len(report.warnings)
        badge.detail, badge.checked_at = errors[:20], utcnow()
        session.flush()
        return {"catalog": catalog, "package": package, **_badge_dict(badge)}


def _finding(rule: str, message: str):
    from airflow_dagops.validate.report import Finding

    return Finding(rule, "error", message)


def badge_checks(report: Report) -> dict[str, str]:
    """Per pipeline step: failed (an error from that step), skipped ([dagops] validation_skip) or passed."""
    import importlib

    step_of = {}
    for step in BADGE_STEPS:  # each step is a module of airflow_dagops.validate with its RULES
        step_of.update(dict.fromkeys(importlib.import_module(f"airflow_dagops.validate.{step}").RULES, step))
    skipped = {s.strip() for s in settings.get("validation_skip").split(",") if s.strip()}
    failed = {step_of.get(f.rule, "files") for f in report.errors}
    return {step: "failed" if step in failed else "skipped" if step in skipped else "passed" for step in BADGE_STEPS}


def _validate_version(catalog: str, url: str, conn_id: str | None, ref: str, commit: str, folder: str) -> Report:
    """Run the validation pipeline on one package version, exported from the catalog mirror into a tmp folder."""
    mirror = _catalog_mirror(catalog, url, conn_id)
    try:
        mirror.commit_info(commit)
    except DagOpsError:
        mirror.fetch_catalog(ref)  # the mirror is gone or older than the index (another machine refreshed)
    with catalog_git.exported_package(mirror, commit, folder, max_size=settings.get_int("max_repo_size")) as path:
        return validate(path, dag_owners={})


# -- publish -----------------------------------------------------------------------------------------------
def publish(path: str | Path, *, catalog: str, actor: str) -> dict:
    """Validate a package folder and push it to a new branch `dagops/publish-<name>-<version>` of the catalog
    repository: the pull-request step (a catalog maintainer merges it and tags the version)."""
    actor = _author(actor, what="actor")
    folder = Path(path).expanduser()
    spec = _read_local_package(folder)
    with session_scope() as session:
        row = _load_catalog(session, catalog)
        target = {"url": row.url, "ref": row.ref, "conn_id": row.conn_id}
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
    commit = _push_branch(folder, spec, branch, actor=actor, **target)
    log.info("%s published %s %s to %s as branch %s", actor, spec.name, spec.version, catalog, branch)
    return {
        "package": spec.name,
        "version": spec.version,
        "catalog": catalog,
        "branch": branch,
        "commit": commit,
        "message": f"pushed {spec.name} {spec.version} to branch {branch} of {display_url(target['url'])}; "
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
    with git_credentials_env(conn_id, url) as credentials:
        result = run_git(args, env=git_env(credentials), check=False)
    if result.returncode != 0:
        detail = last_lines(result.stderr)
        if "rejected" in detail or "already exists" in detail:
            raise Conflict(f"the catalog {display_url(url)} refused the push: {detail}")
        raise GitError(f"git {args[0] if args[0] != '-C' else args[2]} of {display_url(url)} failed: {detail}")
    return result.stdout.decode("utf-8", "replace")


# -- shared helpers ----------------------------------------------------------------------------------------
def _catalogs(session: Session, names: list[str] | None = None) -> list[MarketplaceCatalog]:
    query = select(MarketplaceCatalog).order_by(MarketplaceCatalog.priority, MarketplaceCatalog.name)
    rows = list(session.scalars(query))
    if names:
        unknown = set(names) - {r.name for r in rows}
        if unknown:
            raise NotFound(f"no catalog named {', '.join(sorted(unknown))}; see `dagops marketplace catalogs list`")
        rows = [r for r in rows if r.name in names]
    return rows


def _load_catalog(session: Session, name: str) -> MarketplaceCatalog:
    row = session.scalar(select(MarketplaceCatalog).where(MarketplaceCatalog.name == name))
    if row is None:
        raise NotFound(f"no catalog named {name!r}; see `dagops marketplace catalogs list`")
    return row


def _mirror_path(name: str) -> Path:
    return settings.dagops_home() / "catalogs" / f"{name}.git"


def _catalog_mirror(name: str, url: str, conn_id: str | None) -> catalog_git.CatalogMirror:
    return catalog_git.CatalogMirror(path=_mirror_path(name), url=url, conn_id=conn_id)


def _catalog_dict(row: MarketplaceCatalog, packages: int) -> dict:
    return {
        "name": row.name,
        "url": display_url(row.url),
        "ref": row.ref,
        "priority": row.priority,
        "conn_id": row.conn_id,
        "packages": packages,
        "last_commit": row.last_commit,
        "last_refreshed_at": iso_time(row.last_refreshed_at),
        "last_error": row.last_error,
        "problems": list(row.problems or []),
    }
