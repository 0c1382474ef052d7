"""Browsing the marketplace: search and a package's page (info, versions, README, reviews, ratings, badge).

Several catalogs may carry the same package name: the catalog with the lower priority number provides THE
package, the others show in its info as `other_catalogs`. `packages_from` makes that choice for every use
case (installs, updates, ratings read packages through it too, from ORM rows).

Search and a package's page read the state DB without the ORM (store/reads.py): `dagops marketplace search/list/
info` are new processes each time, and SQLAlchemy's import alone would be most of their time (issue 19).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_dagops.errors import InvalidInput, NotFound
from airflow_dagops.marketplace import manifest
from airflow_dagops.marketplace import search as ranking
from airflow_dagops.marketplace import stats as stats_module
from airflow_dagops.safety import display_url
from airflow_dagops.store import reads
from airflow_dagops.store.values import iso_time

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow_dagops.store.models import MarketplaceBadge, MarketplaceCatalog, MarketplacePackage
    from airflow_dagops.store.reads import Reader
    from airflow_dagops.store.views import RepositoryInfo


@dataclass
class Package:
    """One package name across catalogs: the winning catalog's versions, and the other catalogs' newest."""

    name: str
    catalog: MarketplaceCatalog
    versions: list[MarketplacePackage]  # newest first
    others: list[tuple[MarketplaceCatalog, MarketplacePackage]]

    @property
    def current(self) -> MarketplacePackage:
        """The version shown and installed by default: the newest released one (or, if none, the newest)."""
        return current_version(self.versions)

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


def current_version(versions: list[MarketplacePackage]) -> MarketplacePackage:
    """Of versions newest first: the newest released one (or, if none is released, the newest)."""
    return next((v for v in versions if v.tag), versions[0])


def packages_by_name(session: Session) -> dict[str, Package]:
    """Every package name, with the catalog that provides it, as ORM rows (for the use cases that change them)."""
    from sqlalchemy import select

    from airflow_dagops.store.models import MarketplaceCatalog, MarketplacePackage  # lazy: reads go without the ORM

    catalogs = session.scalars(
        select(MarketplaceCatalog).order_by(MarketplaceCatalog.priority, MarketplaceCatalog.name)
    )
    return packages_from(session.scalars(select(MarketplacePackage)), list(catalogs))


def _read_packages(reader: Reader) -> dict[str, Package]:
    """`packages_by_name` without the ORM."""
    catalogs = reader.rows("dagops_marketplace_catalog", "ORDER BY priority, name")
    return packages_from(reader.rows("dagops_marketplace_package"), catalogs)


def packages_from(rows: Iterable[MarketplacePackage], catalog_rows: list[MarketplaceCatalog]) -> dict[str, Package]:
    """Every package name, with the catalog that provides it (lowest priority number, then catalog name)."""
    by_name: dict[str, dict[int, list[MarketplacePackage]]] = {}
    for row in rows:
        by_name.setdefault(row.name, {}).setdefault(row.catalog_id, []).append(row)
    catalogs = {c.id: c for c in catalog_rows}
    packages = {}
    for name, per_catalog in by_name.items():
        ordered = sorted(per_catalog, key=lambda cid: (catalogs[cid].priority, catalogs[cid].name))
        versions = {
            cid: sorted(rows, key=lambda r: manifest.version_key(r.version), reverse=True)
            for cid, rows in per_catalog.items()
        }
        winner = ordered[0]
        others = [(catalogs[cid], current_version(versions[cid])) for cid in ordered[1:]]
        packages[name] = Package(name, catalogs[winner], versions[winner], others)
    return packages


def load_package(session: Session, name: str) -> Package:
    """The package named `name` as the catalogs provide it, or NotFound."""
    return _named(packages_by_name(session), name)


def _named(packages: dict[str, Package], name: str) -> Package:
    package = packages.get((name or "").strip())
    if package is None:
        raise NotFound(
            f"no package named {name!r} in the catalogs; try `dagops marketplace search` "
            "(or `dagops marketplace catalogs refresh`)"
        )
    return package


SORTS = ("relevance", "downloads", "installs", "rating", "name")
ORDERS = ("desc", "asc")


def search(query: str, *, limit: int = 20, sort: str = "relevance", order: str | None = None) -> list[dict]:
    """Ranked matches over name, tags, summary and description (typo-tolerant); an empty query lists all. `sort`
    orders the matches by relevance (the default), downloads (installs + updates, marketplace/stats.py), current
    installs, rating, or name; ties keep the relevance order. `order` turns a sort around: by default counts and
    ratings come highest first (`desc`) and names A to Z (`asc`); relevance has one order only."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 500:
        raise InvalidInput(f"limit must be a whole number from 1 to 500, got {limit!r}")
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    if order is not None and (order not in ORDERS or sort == "relevance"):
        raise InvalidInput(f"order must be one of {', '.join(ORDERS)}, with a sort other than relevance; got {order!r}")
    if len(query or "") > 200:
        raise InvalidInput("a search query has at most 200 characters")
    with reads.reading() as reader:
        packages = _read_packages(reader)
        docs = {
            name: ranking.Document(
                name=name,
                tags=tuple(p.current.meta.get("tags") or []),
                summary=p.current.meta.get("summary") or "",
                description=p.current.meta.get("description") or "",
            )
            for name, p in packages.items()
        }
        ranked = ranking.rank(query or "", list(docs.values()), limit=limit if sort == "relevance" else len(docs) or 1)
        stats = _Stats.read(reader)
        results = [{**_summary(packages[doc.name], stats), "score": round(value, 2)} for doc, value in ranked]
    if sort != "relevance":
        # Stable in both directions (reverse=True keeps equal items in their order): ties keep the relevance order.
        reverse = order is not None and order != _NATURAL_ORDER[sort]
        results.sort(key=_SORT_KEYS[sort], reverse=reverse)
    return results[:limit]


_SORT_KEYS = {
    "downloads": lambda item: -item["downloads"]["downloads"],
    "installs": lambda item: -item["installs"],
    "rating": lambda item: (-(item["rating"] or 0), -item["ratings_count"]),
    "name": lambda item: item["name"],
}
_NATURAL_ORDER = {"downloads": "desc", "installs": "desc", "rating": "desc", "name": "asc"}  # what _SORT_KEYS give


def package_info(name: str) -> dict:
    """Everything about one package: the search fields, its files, versions, README, reviews and ratings."""
    with reads.reading() as reader:
        package = _named(_read_packages(reader), name)
        stats = _Stats.read(reader)
        meta = package.current.meta
        newest = "WHERE package = :package ORDER BY created_at DESC, id DESC"
        reviews = reader.rows("dagops_marketplace_review", newest, package=package.name)
        ratings = "SELECT stars FROM dagops_marketplace_rating WHERE package = :package"
        stars = Counter(row[0] for row in reader.tuples(ratings, package=package.name))
        download_counts = stats_module.per_version(reader, package.name)
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
            "downloads_by_version": [
                {"version": v.version, **download_counts.get(v.version, stats_module.per_version_empty())}
                for v in package.versions
            ],
        }


@dataclass
class _Stats:
    """Ratings, install counts, active installs and badges, read once per request for every package."""

    ratings: dict[str, tuple[float, int]]
    installs: dict[str, int]
    namespaces: dict[str, str]
    badges: dict[tuple[str, str], MarketplaceBadge]
    downloads: dict[str, dict]  # package -> installs, updates, uninstalls, downloads (marketplace/stats.py)

    @classmethod
    def read(cls, reader: Reader) -> _Stats:
        ratings = {
            package: (float(average), count)
            for package, average, count in reader.tuples(
                "SELECT package, AVG(stars), COUNT(*) FROM dagops_marketplace_rating GROUP BY package"
            )
        }
        installs = dict(
            reader.tuples(
                "SELECT package, COUNT(*) FROM dagops_marketplace_install WHERE status != 'blocked' GROUP BY package"
            )
        )
        namespaces = dict(
            reader.tuples("SELECT package, namespace FROM dagops_marketplace_install WHERE removed_at IS NULL")
        )
        badges = {(b.catalog, b.package): b for b in reader.rows("dagops_marketplace_badge")}
        return cls(ratings, installs, namespaces, badges, stats_module.per_package(reader))


def _summary(package: Package, stats: _Stats) -> dict:
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
        "downloads": stats_module.totals_of(stats.downloads, package.name),
        "badge": badge_dict(stats.badges.get((package.catalog.name, package.name))),
        "installed_namespace": stats.namespaces.get(package.name),
    }


def list_installed() -> list[dict] | None:
    """The installed packages (installs.py `list_installed`), read without the ORM; None when an install's repository
    is gone: installs.py records that, and answers."""
    with reads.reading() as reader:
        packages = _read_packages(reader)
        result = []
        for active in reader.rows("dagops_marketplace_install", "WHERE removed_at IS NULL ORDER BY package"):
            repo = reader.first("dagops_repository", "WHERE name = :name", name=active.repository)
            if repo is None:
                return None
            result.append(install_dict(active, reads.repository_info(reader, repo), packages.get(active.package)))
        return result


def install_dict(active: Any, info: RepositoryInfo, package: Package | None) -> dict:
    """An install as the faces show it (an install row, ORM or plain; its repository; the package it came from)."""
    latest = package.current.version if package else None
    return {
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
        "update_available": bool(latest and manifest.version_key(latest) > manifest.version_key(active.version)),
    }


def _install_status(recorded: str, info: RepositoryInfo) -> str:
    """An install registered without a sync (the REST face) is settled later by dagops_sync: read the outcome
    from its repository."""
    if recorded != "registered":
        return recorded
    if info.live_commit:
        return "published"
    return "blocked" if info.status == "failed" else "registered"


def list_catalogs() -> list[dict]:
    """The catalogs, by priority, with how many packages each provides."""
    with reads.reading() as reader:
        counts = dict(
            reader.tuples("SELECT catalog_id, COUNT(DISTINCT name) FROM dagops_marketplace_package GROUP BY catalog_id")
        )
        catalogs = reader.rows("dagops_marketplace_catalog", "ORDER BY priority, name")
        return [catalog_dict(row, counts.get(row.id, 0)) for row in catalogs]


def catalog_dict(row: MarketplaceCatalog, packages: int) -> dict:
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


def badge_dict(badge: MarketplaceBadge | None) -> dict:
    """A package's badge as the faces show it; `unknown` until the first check."""
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


def missing_requirements(requirements: list[str]) -> list[str]:
    """The requirements (provider or package distributions) the Airflow environment does not satisfy."""
    # Here, not at the top: a package's page asks; search and lists do not (their start-up, issue 19).
    import importlib.metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

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
