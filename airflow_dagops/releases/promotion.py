"""Safe rollout: a repository with `promotion: {stages: [staging, prod], soak_runs: 3}` takes each new
release through its stages. The last stage is the repository's own namespace (prod); every earlier stage S
publishes the release through its own link `<namespace>--<S>` (to a hard-linked view of the release folder),
whose namespace meta tells the cluster policy to append `__<S>` to every dag_id and to create the DAGs
paused (docs/promotion.md).

    sync validates a release -> live in the first stage, a Promotion row starts "soaking"
    check (dagops_promote, every few minutes): the stage's DAG runs since it went live, from a RunSource
        a failed run                 -> "blocked" (names the dag_id and run_id; `dagops promote --force`)
        >= soak_runs successful runs -> the next stage; from the last early stage -> prod ("promoted")
    a newer release entering the first stage -> the open promotion is "superseded"

Prod keeps its release until a promotion reaches it; rollback, deploy and pin act on prod directly.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from airflow_dagops import paths, settings
from airflow_dagops.airflow import namespace_meta
from airflow_dagops.deploy import live_set
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.deploy.publish import current_target, publish, unpublish
from airflow_dagops.deploy.releases import link_tree, retire_release_dir
from airflow_dagops.errors import Conflict, DagOpsError, NotFound
from airflow_dagops.events import feed as events
from airflow_dagops.release_manifest import read_manifest
from airflow_dagops.releases.golive import go_live
from airflow_dagops.releases.promotion_status import HISTORY as HISTORY
from airflow_dagops.releases.promotion_status import OPEN, blocked_reason, status_dict
from airflow_dagops.releases.promotion_status import failure as _failure
from airflow_dagops.releases.promotion_status import in_words as _in_words
from airflow_dagops.releases.promotion_status import status as status  # reads without the ORM
from airflow_dagops.releases.stages import (
    check_stage_namespaces,
    dag_id_suffix,
    repositories_with_promotion,
    stage_namespace,
    stage_namespaces,
    staged_dag_ids,
)
from airflow_dagops.statuses import PromotionStatus, SyncRunStatus
from airflow_dagops.store import reads
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Promotion, Release, Repository, SyncRun, iso_time, utcnow
from airflow_dagops.store.queries import get_row, load_repository

if TYPE_CHECKING:  # only the types: `dagops promotion` shows a status without loading an HTTP client
    from airflow_dagops.airflow.rest_client import RunOutcome, RunSource

log = logging.getLogger(__name__)


# -- sync: a validated release enters the first stage ----------------------------------------------------------
def stage_new_release(session: Session, repo: Repository, release: Release, run_id: int, *, actor: str) -> str | None:
    """Called by a sync (releases/rollout.py, in the transaction that would publish) once a release passed
    validation. Without promotion stages returns None (the sync publishes to prod itself); else puts the release
    live in the first stage, starts its promotion (superseding an open one), finishes the sync run and returns what
    happened in words."""
    if not repo.promotion:
        return None
    name = repo.name
    stage = repo.promotion["stages"][0]
    # Again at publish time: a repository registered since may have taken the stage's namespace.
    check_stage_namespaces(session, repo.name, repo.namespace, repo.promotion)
    _go_live_in_stage(session, repo, release, stage)
    superseded = _supersede_open(session, repo, release)
    now = utcnow()
    session.add(
        Promotion(
            repository_id=repo.id,
            release_id=release.id,
            stage=stage,
            status=PromotionStatus.SOAKING,
            started_at=now,
            updated_at=now,
            successes=0,
            detail={"stages": [_step(stage, actor, now)]},
        )
    )
    repo.last_seen_commit = release.commit_sha
    run = get_row(session, SyncRun, run_id)
    run.status, run.commit_sha, run.release_id, run.ended_at = (
        SyncRunStatus.SUCCESS,
        release.commit_sha,
        release.id,
        now,
    )
    soak = repo.promotion["soak_runs"]
    next_stage = repo.promotion["stages"][1]
    how = f"after {soak} successful DAG runs there" if soak else "by hand (`dagops promote`)"
    events.record_sync_run(run_id, session=session)
    events.record_staged(session, name, release, stage, actor=actor)
    note = f"; superseded the promotion of release {superseded}" if superseded else ""
    return (
        f"{name}: {release.commit_sha[:12]} is live in stage {stage} ({stage_namespace(repo.namespace, stage)}), "
        f"goes to {next_stage} {how}; prod keeps its release{note}"
    )


def describe_staged(repository_id: int, commit: str) -> str | None:
    """For a sync that finds nothing new: where the commit stands in the promotion stages, if it entered them."""
    with session_scope() as session:
        found = session.execute(
            select(Promotion, Release, Repository)
            .join(Release, Release.id == Promotion.release_id)
            .join(Repository, Repository.id == Promotion.repository_id)
            .where(Promotion.repository_id == repository_id, Release.commit_sha == commit)
            .order_by(Promotion.id.desc())
        ).first()
        if found is None:
            return None
        promotion, _release, repo = found
        return f"{repo.name} is up to date at {commit[:12]}: {_in_words(repo, promotion)}"


def _go_live_in_stage(session: Session, repo: Repository, release: Release, stage: str) -> None:
    require_on_disk(release)
    namespace = stage_namespace(repo.namespace, stage)
    meta = {
        "repository": repo.name,
        "stage": stage,
        "dag_id_suffix": dag_id_suffix(stage),
        "paused": True,
        "access_control": repo.access_control,
    }
    publish_view(session, repo, release, namespace, meta)
    log.info("%s: release %s is live in stage %s (%s)", repo.name, release.commit_sha[:12], stage, namespace)


def publish_view(session: Session, repo: Repository, release: Release, namespace: str, meta: dict) -> None:
    """Publish `release` in a namespace other than its own, through a view of it: a promotion stage, or the
    candidate of an A/B experiment (airflow_dagops/experiments). Meta first, then the link: the dag-processor must
    never parse the copy without its dag_id suffix."""
    link = paths.namespace_link(namespace)
    before = current_target(link)
    view = _stage_view(Path(release.path), paths.release_dir(namespace, release.commit_sha))
    namespace_meta.write(namespace, meta)
    publish(link, view)
    live_set.record(session, namespace, repository_id=repo.id, release_id=release.id, release_dir=view)
    if before is not None and before != view and before.parent == view.parent:
        retire_release_dir(before)  # deleted by the next sense step's empty_trash, off this path


def take_down_view(session: Session, namespace: str) -> None:
    """The reverse of `publish_view`: the link, the live set's row, the meta, the views."""
    unpublish(paths.namespace_link(namespace))
    live_set.forget(session, namespace)
    namespace_meta.remove(namespace)
    shutil.rmtree(paths.namespace_releases_dir(namespace), ignore_errors=True)


def _stage_view(release_dir: Path, view: Path) -> Path:
    """A stage's own copy of a release: real folders, files hard-linked to the release's (no extra space).

    Not a second link to the release folder itself: Airflow walks the dags folder following symlinks and
    stops with "Detected recursive loop" when one real folder appears twice (prod and staging)."""
    if view.is_dir():
        return view  # built when this release entered the stage before; views never change
    view.parent.mkdir(parents=True, exist_ok=True)
    temp = view.with_name(f".{view.name}.tmp-{os.getpid()}")
    shutil.rmtree(temp, ignore_errors=True)
    link_tree(release_dir, temp)
    os.rename(temp, view)
    return view


def require_on_disk(release: Release) -> None:
    if read_manifest(Path(release.path)) is None:
        raise Conflict(
            f"the folder of release {release.id} ({release.commit_sha[:12]}) was pruned; sync the repository "
            "again with --force to re-export and stage it"
        )


def _supersede_open(session: Session, repo: Repository, release: Release) -> int | None:
    """The newest open promotion gives way to the release entering the first stage; returns its release id."""
    superseded = None
    for promotion in _open_promotions(session, repo.id):
        promotion.status = PromotionStatus.SUPERSEDED
        promotion.detail = {**(promotion.detail or {}), "superseded_by_release": release.id}
        superseded = promotion.release_id
    return superseded


def _open_promotions(session: Session, repository_id: int) -> list[Promotion]:
    return list(
        session.scalars(
            select(Promotion)
            .where(Promotion.repository_id == repository_id, Promotion.status.in_(OPEN))
            .order_by(Promotion.id)
        )
    )


def _step(stage: str, actor: str, at: datetime) -> dict:
    return {"stage": stage, "at": iso_time(at), "by": actor}


# -- check: read the soaking stages' run outcomes ---------------------------------------------------------------
def check(
    source_factory: Callable[[], RunSource], names: Iterable[str] | None = None, *, actor: str = "dagops_promote"
) -> list[dict]:
    """Check every soaking promotion (or those of `names`): block on a failed run, move on after enough
    successful ones. The source is only made when something soaks, so an installation without promotions
    needs no Airflow API connection. Returns one status dict per promotion checked."""
    reconcile_stage_links()
    wanted = set(names) if names else None
    with session_scope() as session:
        rows = (
            session.execute(
                select(Promotion.id, Repository.name, Repository.promotion)
                .join(Repository, Repository.id == Promotion.repository_id)
                .where(Promotion.status == PromotionStatus.SOAKING)
                .order_by(Promotion.id)
            )
            .tuples()
            .all()
        )
    due = [(promotion_id, name) for promotion_id, name, config in rows if (config or {}).get("soak_runs")]
    due = [(promotion_id, name) for promotion_id, name in due if wanted is None or name in wanted]
    if not due:
        return []
    source = source_factory()
    results = []
    for promotion_id, name in due:
        try:
            results.append(_check_one(promotion_id, name, source, actor))
        except DagOpsError as error:  # one repository's trouble (pinned, pruned, lock) must not stop the others
            log.warning("promotion check of %s: %s", name, error)
            results.append({"id": promotion_id, "repository": name, "status": "error", "message": str(error)})
    return results


def _check_one(promotion_id: int, name: str, source: RunSource, actor: str) -> dict:
    with session_scope() as session:
        soaking = get_row(session, Promotion, promotion_id)
        release = session.get(Release, soaking.release_id) if soaking.release_id else None
        stage, since = soaking.stage, soaking.started_at
        dag_ids = staged_dag_ids(release, stage) if release else []
    if not dag_ids:
        # Validation listed no DAGs (the structure step is skipped, or the release has none): nothing to count.
        return _set_note(promotion_id, "no DAG list for this release (structure validation skipped?): promote by hand")
    since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)  # SQLite forgets the zone
    outcomes = source.runs(dag_ids, since)
    failed = sorted((o for o in outcomes if o.state == "failed"), key=lambda o: (o.ended_at is None, o.ended_at))
    successes = sum(1 for o in outcomes if o.state == "success")
    with repository_lock(paths.locks_dir(), name, timeout=settings.get_int("lock_timeout")):
        with session_scope() as session:
            promotion = session.get(Promotion, promotion_id)
            if promotion is None or promotion.status != PromotionStatus.SOAKING or promotion.stage != stage:
                return _status_dict(session, promotion) if promotion else {"id": promotion_id, "status": "gone"}
            repo = get_row(session, Repository, promotion.repository_id)
            promotion.successes = successes
            if failed:
                _block(promotion, failed[0])
                events.record_promotion(promotion, repo.name, actor=actor)
            elif successes >= _config(repo)["soak_runs"]:
                _advance(session, repo, promotion, actor=actor, forced=False)
            promotion.updated_at = utcnow()
            session.flush()
            return _status_dict(session, promotion)


def _set_note(promotion_id: int, note: str) -> dict:
    with session_scope() as session:
        promotion = get_row(session, Promotion, promotion_id)
        promotion.detail = {**(promotion.detail or {}), "note": note}
        session.flush()
        return _status_dict(session, promotion)


def _block(promotion: Promotion, run: RunOutcome) -> None:
    promotion.status = PromotionStatus.BLOCKED
    promotion.detail = {
        **(promotion.detail or {}),
        "failed_dag_id": run.dag_id,
        "failed_run_id": run.run_id,
        "failed_at": iso_time(run.ended_at),
    }
    log.warning("promotion %d blocked: run %s of %s failed", promotion.id, run.run_id, run.dag_id)


def _advance(session: Session, repo: Repository, promotion: Promotion, *, actor: str, forced: bool) -> None:
    """One stage on: the next early stage (soaking again from now), or prod (promoted)."""
    stages = _config(repo)["stages"]
    here = stages.index(promotion.stage) if promotion.stage in stages else len(stages) - 2
    target = stages[here + 1]
    if promotion.release_id is None:  # its release was deleted (the foreign key is SET NULL)
        raise NotFound(f"the release of promotion {promotion.id} no longer exists")
    release = get_row(session, Release, promotion.release_id)
    now = utcnow()
    if target == stages[-1]:
        if repo.pinned_release_id:
            raise Conflict(
                f"{repo.name!r} is pinned to release {repo.pinned_release_id}; `dagops unpin {repo.name}` before "
                "promoting to prod"
            )
        require_on_disk(release)
        # go_live resolves dag_id clashes with other repositories and writes the deploy log (reason "promotion").
        go_live(session, repo, release, actor=actor, reason="promotion")
        promotion.status = PromotionStatus.PROMOTED
        log.info("%s: release %s promoted to prod by %s", repo.name, release.commit_sha[:12], actor)
    else:
        _go_live_in_stage(session, repo, release, target)
        promotion.status, promotion.started_at, promotion.successes = PromotionStatus.SOAKING, now, 0
    promotion.stage = target
    detail = {k: v for k, v in (promotion.detail or {}).items() if k != "note"}
    detail["stages"] = [*detail.get("stages", []), {**_step(target, actor, now), "forced": forced}]
    if target == stages[-1]:
        detail["promoted_by"], detail["forced"] = actor, forced
    promotion.detail = detail
    events.record_promotion(promotion, repo.name, actor=actor)


# -- by hand ---------------------------------------------------------------------------------------------------
def promote(name: str, *, actor: str, force: bool = False) -> dict:
    """Move the open promotion of `name` one stage on now. A blocked one needs `force`."""
    with repository_lock(paths.locks_dir(), name, timeout=settings.get_int("lock_timeout")):
        with session_scope() as session:
            repo = load_repository(session, name)
            if not repo.promotion:
                raise Conflict(f"{name!r} has no promotion stages; its releases go live in prod directly")
            current = _open_promotions(session, repo.id)
            if not current:
                raise Conflict(
                    f"nothing of {name!r} is waiting for promotion; a new release enters stage "
                    f"{repo.promotion['stages'][0]} when a sync validates it"
                )
            promotion = current[-1]
            if promotion.status == PromotionStatus.BLOCKED and not force:
                raise Conflict(
                    f"{blocked_reason(repo, promotion)}. Push a fix (a new release supersedes this one), or promote "
                    f"anyway with `dagops promote {name} --force`",
                    details={"promotion_id": promotion.id, **_failure(promotion)},
                )
            _advance(session, repo, promotion, actor=actor, forced=force)
            promotion.updated_at = utcnow()
            session.flush()
            return _status_dict(session, promotion)


def _config(repo: Repository) -> dict:
    """The promotion settings of a repository the caller knows to have stages (they may have gone since)."""
    if not repo.promotion:
        raise Conflict(f"{repo.name!r} has no promotion stages any more")
    return repo.promotion


def _status_dict(session: Session, promotion: Promotion) -> dict:
    """The promotion as `status` shows it, read in the session's transaction (after the change it made)."""
    return status_dict(reads.core_reader(session), get_row(session, Repository, promotion.repository_id), promotion)


# -- housekeeping ----------------------------------------------------------------------------------------------
def reconcile_stage_links() -> list[str]:
    """Take down stage links nobody declares any more (the repository was removed, or its promotion
    changed) and end the open promotions of repositories without stages. Returns the namespaces removed."""
    removed = []
    with session_scope() as session:
        declared = {ns: repo.name for repo in repositories_with_promotion(session) for ns in stage_namespaces(repo)}
        for meta_file in sorted((settings.dagops_home() / "namespaces").glob("*.json")):
            namespace = meta_file.stem
            meta = namespace_meta.read(namespace) or {}
            if not meta.get("stage") or declared.get(namespace) == meta.get("repository"):
                continue
            take_down_view(session, namespace)
            removed.append(namespace)
            log.info("removed stage link %s: no repository declares it any more", namespace)
        for promotion in session.scalars(select(Promotion).where(Promotion.status.in_(OPEN))).all():
            repo = get_row(session, Repository, promotion.repository_id)
            if not repo.promotion:
                promotion.status = PromotionStatus.SUPERSEDED
                promotion.detail = {**(promotion.detail or {}), "note": "the repository no longer has promotion stages"}
    return removed
