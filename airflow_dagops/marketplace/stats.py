"""The marketplace's download statistics: every install, update and uninstall of a package version, recorded by
those use cases (installs.py, updates.py) in `dagops_marketplace_event`, and counted per package and per version for
search results (`sort=downloads`) and the package page.

A *download* is an install or an update: each brings one version of the package onto this Airflow. Uninstalls are
counted apart. A blocked install (its version did not pass validation) is still a download: it was fetched and
checked; what went live is `installs` in the search results (MarketplaceInstall rows that were not blocked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow_dagops.store.reads import Reader

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
    from airflow_dagops.store.models import MarketplaceEvent  # lazy: the counts below are read without the ORM

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


_EVENTS = "dagops_marketplace_event"


def per_package(reader: Reader) -> dict[str, dict]:
    """{package: {installs, updates, uninstalls, downloads}} for every package with an event."""
    return _counted(
        reader.tuples("SELECT package, kind, COUNT(*) FROM dagops_marketplace_event GROUP BY package, kind")
    )


def per_version(reader: Reader, package: str) -> dict[str, dict]:
    """{version: {installs, updates, uninstalls, downloads}} of one package."""
    query = (
        "SELECT version, kind, COUNT(*) FROM dagops_marketplace_event WHERE package = :package GROUP BY version, kind"
    )
    return _counted(reader.tuples(query, package=package))


def _counted(rows: list[tuple]) -> dict[str, dict]:
    counts: dict[str, dict] = {}
    for key, kind, count in rows:
        entry = counts.setdefault(key, _empty())
        entry[_PLURAL[kind]] = count
    for entry in counts.values():
        entry["downloads"] = entry["installs"] + entry["updates"]
    return counts


def totals_of(counts: dict[str, dict], package: str) -> dict:
    return dict(counts.get(package) or _empty())
