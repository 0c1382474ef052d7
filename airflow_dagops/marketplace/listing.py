"""Browsing the marketplace: search and a package's page (info, versions, README, reviews, ratings, badge).

Several catalogs may carry the same package name: the catalog with the lower priority number provides THE
package, the others show in its info as `other_catalogs`. `packages_by_name` makes that choice for every use
case (installs, updates, ratings read packages through it too).
"""

from __future__ import annotations

import importlib.metadata
from collections import Counter
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from airflow_dagops.errors import InvalidInput, NotFound
from airflow_dagops.marketplace import manifest
from airflow_dagops.marketplace import search as ranking
from airflow_dagops.marketplace import stats as stats_module
from airflow_dagops.marketplace.catalogs import catalog_rows
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import (
    MarketplaceBadge,
    MarketplaceCatalog,
    MarketplaceInstall,
    MarketplacePackage,
    MarketplaceRating,
    MarketplaceReview,
    iso_time,
)


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
    """Every package name, with the catalog that provides it (lowest priority number, then catalog name)."""
    by_name: dict[str, dict[int, list[MarketplacePackage]]] = {}
    for row in session.scalars(select(MarketplacePackage)):
        by_name.setdefault(row.name, {}).setdefault(row.catalog_id, []).append(row)
    catalogs = {c.id: c for c in catalog_rows(session)}
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
    package = packages_by_name(session).get((name or "").strip())
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
    with session_scope() as session:
        packages = packages_by_name(session)
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
        stats = _Stats.read(session)
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
    with session_scope() as session:
        package = load_package(session, name)
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
        download_counts = stats_module.per_version(session, package.name)
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
    def read(cls, session: Session) -> _Stats:
        ratings = {
            package: (float(avg), count)
            for package, avg, count in session.execute(
                select(MarketplaceRating.package, func.avg(MarketplaceRating.stars), func.count()).group_by(
                    MarketplaceRating.package
                )
            ).tuples()
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
        return cls(ratings, installs, namespaces, badges, stats_module.per_package(session))


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
