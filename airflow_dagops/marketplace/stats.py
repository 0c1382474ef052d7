"""The marketplace's download statistics: every install, update and uninstall of a package version, recorded by
those use cases (installs.py, updates.py) in `dagops_marketplace_event`, and counted per package and per version for
search results (`sort=downloads`) and the package page.

A *download* is an install or an update: each brings one version of the package onto this Airflow. Uninstalls are
counted apart. A blocked install (its version did not pass validation) is still a download: it was fetched and
checked; what went live is `installs` in the search results (MarketplaceInstall rows that were not blocked).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from airflow_dagops.store.models import MarketplaceEvent

KINDS = ("install", "update", "uninstall")
_PLURAL = {"install": "installs", "update": "updates", "uninstall": "uninstalls"}


def record(
    session: Session,
    kind: str,
    package: str,
    version: str,
    *,
    actor: str,
    catalog: str | None = None,
    repository: str | None = None,
) -> None:
    """Count one install, update or uninstall, in the caller's transaction (so it is counted iff it happened)."""
    if kind not in KINDS:
        raise ValueError(f"unknown marketplace event {kind!r}; one of {', '.join(KINDS)}")
    session.add(
        MarketplaceEvent(
            kind=kind, package=package, version=version, catalog=catalog, repository=repository, actor=actor
        )
    )


def per_version_empty() -> dict:
    """The counts of a package or version nobody installed yet."""
    return {"installs": 0, "updates": 0, "uninstalls": 0, "downloads": 0}


_empty = per_version_empty


def per_package(session: Session) -> dict[str, dict]:
    """{package: {installs, updates, uninstalls, downloads}} for every package with an event."""
    counts: dict[str, dict] = {}
    query = select(MarketplaceEvent.package, MarketplaceEvent.kind, func.count()).group_by(
        MarketplaceEvent.package, MarketplaceEvent.kind
    )
    for package, kind, count in session.execute(query).tuples():
        entry = counts.setdefault(package, _empty())
        entry[_PLURAL[kind]] = count
    for entry in counts.values():
        entry["downloads"] = entry["installs"] + entry["updates"]
    return counts


def per_version(session: Session, package: str) -> dict[str, dict]:
    """{version: {installs, updates, uninstalls, downloads}} of one package."""
    counts: dict[str, dict] = {}
    query = (
        select(MarketplaceEvent.version, MarketplaceEvent.kind, func.count())
        .where(MarketplaceEvent.package == package)
        .group_by(MarketplaceEvent.version, MarketplaceEvent.kind)
    )
    for version, kind, count in session.execute(query).tuples():
        entry = counts.setdefault(version, _empty())
        entry[_PLURAL[kind]] = count
    for entry in counts.values():
        entry["downloads"] = entry["installs"] + entry["updates"]
    return counts


def totals_of(counts: dict[str, dict], package: str) -> dict:
    return dict(counts.get(package) or _empty())
