"""Installing marketplace packages into a namespace, listing the installs, and uninstalling them.

Installing makes a package an ordinary repository (`pkg-<name>`, ref = the version's tag, subdir = the
package folder), so it goes through the same validation pipeline and atomic publish as any repository. A
tag never moves: an installed package stays at its version until `update` (updates.py). When validation
blocks an install, the repository stays registered with nothing live (its findings are in `dagops repos
show`), so the user can read why and then `uninstall`, or `update` to a version that passes.

A package that declares providers or Python packages this Airflow lacks is not installed unless the caller
insists (`force`): its DAGs may well load, but their tasks fail at run time. `install_check` says beforehand what
an install would do (version, namespace, what is missing), so a face can ask before it installs.

Airflow creates new DAGs paused (`[core] dags_are_paused_at_creation`), so an installed package's DAGs often
wait for a click: `installed_dags` says which are paused, `unpause` unpauses them. Both take the function that
asks Airflow (the faces pass airflow/bridge.py's), so this module stays testable without Airflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from airflow_dagops.errors import Conflict, NotFound, RequirementsMissing
from airflow_dagops.marketplace import listing, stats
from airflow_dagops.marketplace.listing import load_package, missing_requirements, packages_by_name
from airflow_dagops.marketplace.users import user_name
from airflow_dagops.releases.history import live_dags
from airflow_dagops.repositories.registry import add_repository, remove_repository
from airflow_dagops.safety import validate_name
from airflow_dagops.statuses import SyncOutcomeStatus
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import MarketplaceInstall, MarketplacePackage, Repository, utcnow
from airflow_dagops.store.queries import get_row
from airflow_dagops.store.views import repository_info

log = logging.getLogger(__name__)

REPOSITORY_PREFIX = "pkg-"


def install_check(name: str, *, version: str | None = None, namespace: str | None = None) -> dict:
    """What installing would do, changing nothing: the version, the namespace (checked), the providers and
    packages this Airflow lacks, and whatever would refuse the install (already installed, namespace taken)."""
    with session_scope() as session:
        package = load_package(session, name)
        row = package.released(version)
        active = _active_install(session, package.name)
        chosen = validate_name(namespace or package.name, what="namespace")
        taken_by = session.scalar(select(Repository.name).where(Repository.namespace == chosen))
        result = _requirements(row)
        refusals = []
        if active is not None:
            refusals.append(f"{package.name} is already installed ({active.version}, namespace {active.namespace!r})")
        if taken_by is not None:
            refusals.append(f"namespace {chosen!r} is taken by repository {taken_by!r}; choose another")
        return {
            "package": package.name,
            "version": row.version,
            "namespace": chosen,
            "default_namespace": package.name,
            **result,
            "installable": not refusals,
            "needs_force": bool(result["missing_providers"] or result["missing_packages"]),
            "refusals": refusals,
        }


def _requirements(row: MarketplacePackage) -> dict:
    meta = row.meta or {}
    return {
        "providers": list(meta.get("providers") or []),
        "packages": list(meta.get("packages") or []),
        "missing_providers": missing_requirements(meta.get("providers") or []),
        "missing_packages": missing_requirements(meta.get("packages") or []),
    }


def install(
    name: str,
    *,
    version: str | None = None,
    namespace: str | None = None,
    actor: str,
    sync: bool = True,
    force: bool = False,
) -> dict:
    """Install a released version as the pinned repository `pkg-<name>` in `namespace` (default: the package
    name). With `sync`, validate and publish it now; without, the caller triggers the sync (REST: dagops_sync).
    A package needing providers or packages this Airflow lacks raises RequirementsMissing, unless `force`."""
    actor = user_name(actor, what="actor")
    with session_scope() as session:
        package = load_package(session, name)
        row = package.released(version)
        active = _active_install(session, package.name)
        if active is not None:
            raise Conflict(
                f"{package.name} is already installed ({active.version}, namespace {active.namespace!r}); "
                "use `dagops marketplace update` or uninstall it first"
            )
        catalog = package.catalog
        url, source = catalog.url, {"conn_id": catalog.conn_id, "tag": row.tag, "folder": row.folder}
        chosen, catalog_name = row.version, catalog.name
        requirements = _requirements(row)
    namespace = validate_name(namespace or package.name, what="namespace")
    missing, missing_packages = requirements["missing_providers"], requirements["missing_packages"]
    if (missing or missing_packages) and not force:
        raise RequirementsMissing(
            f"{package.name} {chosen} needs what this Airflow lacks: {', '.join(missing + missing_packages)}. "
            "Install them on every Airflow machine first (its tasks fail at run time without them), or install "
            'anyway (--force; REST: "force": true). Nothing was installed',
            providers=missing,
            packages=missing_packages,
        )
    repository = REPOSITORY_PREFIX + package.name
    add_repository(
        repository,
        url,
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
        stats.record(session, "install", package.name, chosen, actor=actor, catalog=catalog_name, repository=repository)
        session.flush()
        install_id = record.id
    result: dict[str, Any] = {
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
        "forced": bool(force and (missing or missing_packages)),
    }
    if sync:
        result.update(sync_install(install_id, repository, trigger="manual"))
    result["message"] += _providers_note(missing + missing_packages)
    return result


def sync_install(install_id: int, repository: str, *, trigger: str) -> dict:
    """Validate and publish an installed package now; record whether it went live or was blocked."""
    from airflow_dagops.sync.sync import sync_repository  # lazy: `marketplace list --installed` validates nothing

    outcome = sync_repository(repository, trigger=trigger)
    status = "published" if outcome.status in (SyncOutcomeStatus.PUBLISHED, SyncOutcomeStatus.UNCHANGED) else "blocked"
    if outcome.status == SyncOutcomeStatus.TESTING:
        status = "registered"  # its own tests run first (dagops_test), then it goes live
    with session_scope() as session:
        get_row(session, MarketplaceInstall, install_id, what="install").status = status
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


def _active_install(session: Session, package: str) -> MarketplaceInstall | None:
    """The current install of a package; one whose repository was removed by other means is closed first."""
    active = session.scalar(
        select(MarketplaceInstall).where(MarketplaceInstall.package == package, MarketplaceInstall.removed_at.is_(None))
    )
    if active is not None and session.scalar(select(Repository.id).where(Repository.name == active.repository)) is None:
        active.removed_at = utcnow()
        return None
    return active


def load_install(session: Session, name: str) -> MarketplaceInstall:
    """The current install of a package, or NotFound."""
    active = _active_install(session, (name or "").strip())
    if active is None:
        raise NotFound(f"package {name!r} is not installed; see `dagops marketplace list --installed`")
    return active


def uninstall(name: str, *, actor: str) -> str:
    """Remove an installed package: its repository goes, and with it its DAGs."""
    actor = user_name(actor, what="actor")
    with session_scope() as session:
        active = load_install(session, name)
        install_id, repository = active.id, active.repository
    said = remove_repository(repository)
    with session_scope() as session:
        record = get_row(session, MarketplaceInstall, install_id, what="install")
        record.removed_at = utcnow()
        stats.record(
            session,
            "uninstall",
            record.package,
            record.version,
            actor=actor,
            catalog=record.catalog,
            repository=repository,
        )
    log.info("%s uninstalled %s (%s)", actor, name, repository)
    return f"uninstalled {name}: {said}"


def list_installed() -> list[dict]:
    """The installed packages: version, namespace, repository status, and whether a newer version is released. An
    install whose repository is gone (removed by hand) is recorded as removed here, and left out."""
    found = listing.list_installed()  # without the ORM, when no install lost its repository
    if found is not None:
        return found
    with session_scope() as session:
        packages = packages_by_name(session)
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
            result.append(listing.install_dict(active, repository_info(session, repo), packages.get(active.package)))
        return result


# -- paused DAGs ----------------------------------------------------------------------------------------------------
PausedOf = Callable[[list[str]], dict[str, bool]]  # dag_ids -> paused, for the DAGs Airflow knows


def installed_dags(name: str, *, paused_of: PausedOf) -> dict:
    """The DAGs an installed package has live, each `paused` (True/False) or not yet known to Airflow (None)."""
    with session_scope() as session:
        active = load_install(session, name)
        package, repository = active.package, active.repository
    namespace, dags = live_dags(repository)
    paused = paused_of([dag["dag_id"] for dag in dags])
    items = [{"dag_id": dag["dag_id"], "file": dag.get("file"), "paused": paused.get(dag["dag_id"])} for dag in dags]
    return {
        "package": package,
        "repository": repository,
        "namespace": namespace,
        "items": items,
        "paused": [item["dag_id"] for item in items if item["paused"]],
    }


def unpause(name: str, *, actor: str, unpause_dags: Callable[[list[str]], list[str]]) -> dict:
    """Unpause every paused DAG of an installed package (Airflow creates new DAGs paused by default)."""
    actor = user_name(actor, what="actor")
    with session_scope() as session:
        repository = load_install(session, name).repository
    _namespace, dags = live_dags(repository)
    done = unpause_dags([dag["dag_id"] for dag in dags])
    log.info("%s unpaused %s of %s", actor, ", ".join(done) or "nothing", name)
    message = f"unpaused {', '.join(done)}" if done else f"no DAG of {name} was paused"
    return {"package": name, "unpaused": done, "message": message}
