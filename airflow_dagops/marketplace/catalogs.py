"""The marketplace's catalogs: register, list, remove and refresh them, and the bare mirror each is fetched into.

A catalog is a git repository with one folder per package (`<folder>/dagops-package.yaml`), versions by
`<package>/v<version>` tags. `refresh_catalogs` reads every version straight from git objects (catalog_reader.py)
into the state DB; everything else in the marketplace works on that index. The catalog rows and mirrors are
shared with the other use cases through `catalog_rows`, `load_catalog` and `catalog_mirror`.

Every function returns JSON-able dicts; the faces (CLI, REST, UI, the dagops_marketplace_check DAG) are thin.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from airflow_dagops import settings
from airflow_dagops.errors import Conflict, DagOpsError, InvalidInput, NotFound
from airflow_dagops.git.credentials import attached_origin, attaching
from airflow_dagops.marketplace import catalog_reader as catalog_git
from airflow_dagops.marketplace import listing
from airflow_dagops.safety import display_url, redact, validate_name, validate_ref, validate_url
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import MarketplaceBadge, MarketplaceCatalog, MarketplacePackage, utcnow
from airflow_dagops.store.queries import get_row
from airflow_dagops.wording import plural

log = logging.getLogger(__name__)


def add_catalog(
    name: str, url: str, *, priority: int = 100, ref: str = "main", conn_id: str | None = None, verify: bool = True
) -> dict:
    """Register a catalog. With `verify`, its remote and ref are reached first; bad input changes nothing."""
    from airflow_dagops.repositories.registry import validate_conn_id  # lazy: the catalogs' readers need no registry

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
            catalog_mirror(name, url, conn_id).ls_remote(ref)
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


list_catalogs = listing.list_catalogs  # read without the ORM (store/reads.py)
_catalog_dict = listing.catalog_dict


def remove_catalog(name: str) -> str:
    """Forget a catalog and its index. Packages installed from it stay installed (they are repositories)."""
    with session_scope() as session:
        row = load_catalog(session, name)
        session.execute(delete(MarketplaceBadge).where(MarketplaceBadge.catalog == name))
        session.delete(row)
    shutil.rmtree(_mirror_path(name), ignore_errors=True)
    return f"removed catalog {name!r}; packages installed from it stay installed"


def refresh_catalogs(names: list[str] | None = None) -> list[dict]:
    """Fetch each catalog (all of them, or `names`) and rebuild its package index. A catalog that cannot be
    fetched keeps its previous index and records the error; the others are refreshed anyway."""
    with session_scope() as session:
        rows = catalog_rows(session, names)
        wanted = [(row.id, row.name, row.url, row.ref, row.conn_id) for row in rows]
    return [_refresh_one(*item) for item in wanted]


def _refresh_one(catalog_id: int, name: str, url: str, ref: str, conn_id: str | None) -> dict:
    try:
        index = catalog_mirror(name, url, conn_id).fetch_catalog(ref)
    except DagOpsError as err:
        message = redact(str(err))
        with session_scope() as session:
            row = get_row(session, MarketplaceCatalog, catalog_id, what="catalog")
            row.last_error, row.last_refreshed_at = message, utcnow()
        return {"catalog": name, "status": "failed", "message": message}
    with session_scope() as session:
        row = get_row(session, MarketplaceCatalog, catalog_id, what="catalog")
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
        "message": f"{name}: {plural(len(packages), 'package')}, {plural(len(index.versions), 'version')} at "
        f"{index.commit.sha[:12]}" + (f"; {plural(len(index.problems), 'problem')}" if index.problems else ""),
    }


def catalog_repo_from_folder(src: str | Path, dest: str | Path) -> list[str]:
    """Turn a folder of package folders (examples/catalog) into a git repository with version tags."""
    return catalog_git.repo_from_folder(Path(src), Path(dest))


def catalog_rows(session: Session, names: list[str] | None = None) -> list[MarketplaceCatalog]:
    """Every catalog (or only `names`, NotFound for an unknown one), lowest priority number first."""
    query = select(MarketplaceCatalog).order_by(MarketplaceCatalog.priority, MarketplaceCatalog.name)
    rows = list(session.scalars(query))
    if names:
        unknown = set(names) - {r.name for r in rows}
        if unknown:
            raise NotFound(f"no catalog named {', '.join(sorted(unknown))}; see `dagops marketplace catalogs list`")
        rows = [r for r in rows if r.name in names]
    return rows


def load_catalog(session: Session, name: str) -> MarketplaceCatalog:
    """The catalog named `name`, or NotFound."""
    row = session.scalar(select(MarketplaceCatalog).where(MarketplaceCatalog.name == name))
    if row is None:
        raise NotFound(f"no catalog named {name!r}; see `dagops marketplace catalogs list`")
    return row


def _mirror_path(name: str) -> Path:
    return settings.dagops_home() / "catalogs" / f"{name}.git"


def catalog_mirror(name: str, url: str, conn_id: str | None) -> catalog_git.CatalogMirror:
    """The catalog's bare mirror under `<dagops_home>/catalogs`, fetched with the catalog's connection."""
    return catalog_git.CatalogMirror(path=_mirror_path(name), url=url, conn_id=conn_id)
