"""Look-ups every use case shares: a repository by name, a release by id or commit, the release before the live one."""

from __future__ import annotations

import logging
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from airflow_dagops.errors import Conflict, NotFound
from airflow_dagops.statuses import ReleaseStatus
from airflow_dagops.store.models import Base, DeployEvent, Release, Repository
from airflow_dagops.store.reads import MAX_ID, only_match, release_ref

log = logging.getLogger(__name__)

_Row = TypeVar("_Row", bound=Base)


def get_row(session: Session, model: type[_Row], row_id: int, *, what: str | None = None) -> _Row:
    """`session.get` for a row the caller expects: NotFound (the API's 404) instead of None when it is gone
    (deleted meanwhile, with its repository). `what` names it in the message (default: the model's name)."""
    row = session.get(model, row_id)
    if row is None:
        raise NotFound(f"{what or model.__name__} {row_id} not found")
    return row


def newest_first(session: Session, model, repo: Repository, limit: int, offset: int) -> tuple[list, int]:
    """One page of a repository's rows (sync runs, releases), newest first, and how many there are."""
    where = model.repository_id == repo.id
    total = session.scalar(select(func.count()).select_from(model).where(where))
    rows: list = list(session.scalars(select(model).where(where).order_by(model.id.desc()).limit(limit).offset(offset)))
    return rows, total or 0


def find_release(session: Session, repo: Repository, ref: int | str) -> Release:
    """A release of this repository by id, or by commit sha (7 or more hex digits)."""
    query = select(Release).where(Release.repository_id == repo.id)
    kind, value = release_ref(ref)
    if kind == "sha":
        found = session.scalars(query.where(Release.commit_sha.startswith(str(value)))).all()
    else:
        found = session.scalars(query.where(Release.id == int(value))).all() if 0 < int(value) <= MAX_ID else []
    return only_match(list(found), repo.name, ref)


def previous_good_release(session: Session, repo: Repository) -> Release:
    """The release that was live before the current one (from the deploy log), or the newest other good one."""
    events = session.scalars(
        select(DeployEvent).where(DeployEvent.repository_id == repo.id).order_by(DeployEvent.id.desc())
    )
    for event in events:
        if event.from_release_id and event.from_release_id != repo.live_release_id:
            candidate = session.get(Release, event.from_release_id)
            if candidate is not None and candidate.status != ReleaseStatus.FAILED:
                return candidate
    raise Conflict(f"{repo.name!r} has no earlier release that passed validation to roll back to")


# -- reading --------------------------------------------------------------------------------------------
def load_repository(session: Session, name: str) -> Repository:
    repo = session.scalar(select(Repository).where(Repository.name == name))
    if repo is None:
        raise NotFound(f"no repository named {name!r} is registered; see `dagops repos list`")
    return repo


def live_release_path(session: Session, repo: Repository) -> str | None:
    if not repo.live_release_id:
        return None
    release = session.get(Release, repo.live_release_id)
    return release.path if release else None
