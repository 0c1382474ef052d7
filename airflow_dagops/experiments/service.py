"""The use cases of A/B experiments: start, check (the verdict, and the rule acting on it), promote by hand, stop,
and read. Faces (cli/experiments.py, api/experiments.py, the dagops_promote system DAG) call only these.

    start   A = prod's live release, B = a candidate that passed validation (default: the one waiting in a
            promotion stage); B goes up as `<dag_id>__ab` in `<namespace>--ab`; status running
    check   (dagops_promote, every few minutes) collect the DAG runs that ended into the event feed
            (events/dag_runs.py), then for each running experiment: prod changed under it -> aborted; else compare
            the variants' recorded runs (compare.py) and store the verdict; with `auto_promote`, a decided verdict
            ends it: B won -> B goes live in prod (promoted), A won -> prod keeps A (kept)
    promote by hand: the given winner, or the verdict's; B goes live through `go_live` like any release
    stop    no winner: B is taken down, prod keeps A (stopped)

Every change runs under the repository's lock, as promotion does, so an experiment and a sync or rollback of the same
repository never interleave.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from airflow_dagops import paths, settings
from airflow_dagops.airflow.experiment_gate import VARIANTS, Split
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.errors import Conflict, DagOpsError, InvalidInput, NotFound
from airflow_dagops.events import dag_runs
from airflow_dagops.events import feed as events
from airflow_dagops.experiments import compare as comparing
from airflow_dagops.experiments import variants
from airflow_dagops.experiments.rule import check_dag_id, check_schedules, dag_in, parse_rule
from airflow_dagops.releases.golive import go_live
from airflow_dagops.releases.promotion import require_on_disk
from airflow_dagops.statuses import ExperimentStatus, PromotionStatus, ReleaseStatus
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Experiment, Promotion, Release, Repository, iso_time, utcnow
from airflow_dagops.store.queries import find_release, get_row, load_repository

log = logging.getLogger(__name__)

HISTORY = 10
REASON = "experiment"  # the deploy log's reason when a winning B goes live


# -- start -------------------------------------------------------------------------------------------------------
def start(
    name: str,
    dag_id: str,
    *,
    actor: str,
    release: int | str | None = None,
    split: object = "alternate",
    rule: dict | None = None,
) -> dict:
    """Run the candidate `release` (B) of `dag_id` beside prod's (A) on a split of its scheduled runs. Every input is
    checked before anything changes (InvalidInput, Conflict, NotFound)."""
    chosen_split, chosen_rule, dag_id = Split.parse(split), parse_rule(rule), check_dag_id(dag_id)
    with repository_lock(paths.locks_dir(), name, timeout=settings.get_int("lock_timeout")):
        with session_scope() as session:
            repo = load_repository(session, name)
            prod, candidate = _variants_for(session, repo, dag_id, release)
            experiment = Experiment(
                repository_id=repo.id,
                dag_id=dag_id,
                release_a_id=prod.id,
                release_b_id=candidate.id,
                split=chosen_split.to_dict(),
                rule=chosen_rule,
                status=ExperimentStatus.RUNNING,
                assigned=0,
                actor=actor,
                started_at=utcnow(),
                # Where both variants run in Airflow: the event collector, below this package, reads it.
                detail={"variants": variants.airflow_names(repo, dag_id)},
            )
            session.add(experiment)
            session.flush()
            try:
                variants.put_up(session, repo, experiment, candidate)
            except BaseException:
                _undo_start(session, repo, dag_id)
                raise
            _record_event(session, repo, experiment, "started", actor=actor)
            return describe(session, experiment)


def _undo_start(session: Session, repo: Repository, dag_id: str) -> None:
    """Nothing of a start that failed half-way stays up (its row is rolled back with the transaction)."""
    try:
        variants.take_down(session, repo, dag_id)
    except Exception:  # the next check's reconcile takes down what is left; the first error is the one to show
        log.exception("%s: could not take down the half-started experiment on %s", repo.name, dag_id)


def _variants_for(session: Session, repo: Repository, dag_id: str, release: int | str | None) -> tuple:
    """(prod's live release, the candidate), after every check an experiment needs."""
    if repo.live_release_id is None:
        raise Conflict(f"nothing of {repo.name!r} is live in prod yet: variant A is prod's live release")
    if repo.pinned_release_id is not None:
        raise Conflict(
            f"{repo.name!r} is pinned to release {repo.pinned_release_id}: a winning candidate could not go live. "
            f"`dagops unpin {repo.name}` first"
        )
    running = _running(session, repo.id)
    if running is not None:
        raise Conflict(
            f"{repo.name!r} already runs experiment {running.id} on {running.dag_id!r}; one at a time per repository "
            f"(`dagops ab stop {repo.name}` ends it)"
        )
    prod = get_row(session, Release, repo.live_release_id)
    candidate = _candidate(session, repo, release)
    check_schedules(dag_id, dag_in(prod, dag_id, "A, prod"), dag_in(candidate, dag_id, "B, the candidate"))
    others = list(session.scalars(select(Repository).where(Repository.id != repo.id)))
    variants.check_b_namespace(repo, others)
    require_on_disk(candidate)
    return prod, candidate


def _candidate(session: Session, repo: Repository, release: int | str | None) -> Release:
    if release is None:
        waiting = session.scalars(
            select(Promotion)
            .where(Promotion.repository_id == repo.id, Promotion.status.in_(PromotionStatus.waiting()))
            .order_by(Promotion.id.desc())
        ).first()
        if waiting is None or waiting.release_id is None:
            raise InvalidInput(
                f"name the candidate release (--release ID or commit sha): no release of {repo.name!r} is waiting in "
                "a promotion stage"
            )
        release = waiting.release_id
    candidate = find_release(session, repo, release)
    if candidate.id == repo.live_release_id:
        raise Conflict(f"release {candidate.id} is prod's live release, variant A; pick another release as B")
    if candidate.status not in ReleaseStatus.deployable():
        raise Conflict(
            f"release {candidate.id} ({candidate.commit_sha[:12]}) is {candidate.status}: only a release that passed "
            "validation can be variant B"
        )
    return candidate


# -- check -------------------------------------------------------------------------------------------------------
def check(
    source_factory: Callable[[], dag_runs.FinishedRuns],
    names: Iterable[str] | None = None,
    *,
    actor: str = "dagops_promote",
) -> list[dict]:
    """Collect the DAG runs that ended into the event feed, then judge every running experiment (or those of
    `names`) from it and act on the rule. The source is only made when an experiment runs, so installations without
    experiments need no Airflow API connection."""
    reconcile()
    wanted = set(names) if names else None
    with session_scope() as session:
        rows = session.execute(
            select(Experiment.id, Repository.name)
            .join(Repository, Repository.id == Experiment.repository_id)
            .where(Experiment.status == ExperimentStatus.RUNNING)
            .order_by(Experiment.id)
        ).all()
    due = [(experiment_id, name) for experiment_id, name in rows if wanted is None or name in wanted]
    if not due:
        return []
    source = source_factory()
    try:
        dag_runs.collect(lambda: source)
    except DagOpsError as error:  # Airflow's API down: no verdict from runs that may not all be recorded
        log.warning("experiment check: cannot collect DAG runs: %s", error)
        return [{"id": i, "repository": name, "status": "error", "message": str(error)} for i, name in due]
    results = []
    for experiment_id, name in due:
        try:
            results.append(_check_one(experiment_id, name, actor))
        except DagOpsError as error:  # one repository's trouble (its lock) must not stop the others
            log.warning("experiment check of %s: %s", name, error)
            results.append({"id": experiment_id, "repository": name, "status": "error", "message": str(error)})
    return results


def _check_one(experiment_id: int, name: str, actor: str) -> dict:
    with repository_lock(paths.locks_dir(), name, timeout=settings.get_int("lock_timeout")):
        with session_scope() as session:
            experiment = get_row(session, Experiment, experiment_id)
            if experiment.status != ExperimentStatus.RUNNING:
                return describe(session, experiment)
            repo = get_row(session, Repository, experiment.repository_id)
            changed = _prod_changed(session, repo, experiment)
            if changed:
                _end(session, repo, experiment, ExperimentStatus.ABORTED, actor=actor, why=changed)
                return describe(session, experiment)
            comparison = comparing.compare(session, experiment)
            experiment.verdict = comparison.to_dict()
            winner = comparison.verdict.winner
            if experiment.rule.get("auto_promote") and winner:
                try:
                    _settle(session, repo, experiment, winner, actor=actor, by_hand=False)
                except Conflict as refused:  # pinned meanwhile, B pruned: a person decides (`dagops ab promote`)
                    experiment.detail = {**(experiment.detail or {}), "note": f"{winner} won, but: {refused}"}
            return describe(session, experiment)


def _prod_changed(session: Session, repo: Repository, experiment: Experiment) -> str | None:
    """Why the experiment cannot go on, or None: A must still be prod's live release and B must still exist."""
    if repo.live_release_id != experiment.release_a_id:
        return (
            f"prod's live release changed from {experiment.release_a_id} to {repo.live_release_id} (a rollback, "
            "deploy, sync or promotion): variant A is no longer what ran"
        )
    if experiment.release_b_id is None or session.get(Release, experiment.release_b_id) is None:
        return "the candidate release was deleted"
    return None


# -- promote, stop ------------------------------------------------------------------------------------------------
def promote(name: str, *, actor: str, winner: str | None = None, dag_id: str | None = None) -> dict:
    """End the running experiment with `winner` (default: the last verdict's): B goes live in prod, or prod keeps A.
    With `dag_id`, only when the experiment runs on that DAG (a guard against acting on another one)."""
    if winner is not None and winner not in VARIANTS:
        raise InvalidInput(f"winner must be A (prod's release) or B (the candidate), got {winner!r}")
    with repository_lock(paths.locks_dir(), name, timeout=settings.get_int("lock_timeout")):
        with session_scope() as session:
            repo = load_repository(session, name)
            experiment = _require_running(session, repo, dag_id)
            changed = _prod_changed(session, repo, experiment)
            if changed:
                _end(session, repo, experiment, ExperimentStatus.ABORTED, actor=actor, why=changed)
                raise Conflict(f"experiment {experiment.id} was aborted: {changed}")
            chosen = winner or ((experiment.verdict or {}).get("verdict") or {}).get("winner")
            if chosen is None:
                summary = ((experiment.verdict or {}).get("verdict") or {}).get("summary") or "no verdict yet"
                raise Conflict(
                    f"experiment {experiment.id} has no winner yet ({summary}); choose one: "
                    f"`dagops ab promote {name} --winner B` (or A)"
                )
            _settle(session, repo, experiment, chosen, actor=actor, by_hand=True)
            return describe(session, experiment)


def stop(name: str, *, actor: str, dag_id: str | None = None) -> dict:
    """End the running experiment without a winner: B is taken down, prod keeps A."""
    with repository_lock(paths.locks_dir(), name, timeout=settings.get_int("lock_timeout")):
        with session_scope() as session:
            repo = load_repository(session, name)
            experiment = _require_running(session, repo, dag_id)
            _end(session, repo, experiment, ExperimentStatus.STOPPED, actor=actor, why=f"stopped by {actor}")
            return describe(session, experiment)


def _settle(session: Session, repo: Repository, experiment: Experiment, winner: str, *, actor: str, by_hand: bool):
    how = "by hand" if by_hand else "by its rule"
    if winner == "A":
        _end(session, repo, experiment, ExperimentStatus.KEPT, actor=actor, why=f"A won ({how}): prod keeps it")
        return
    candidate = get_row(session, Release, experiment.release_b_id or 0, what="candidate release")
    require_on_disk(candidate)
    # B first goes live as prod, then its copy goes: A's dag_id runs B's code from the next parse on.
    go_live(session, repo, candidate, actor=actor, reason=REASON, by_hand=by_hand)
    _close_promotion_of(session, repo, candidate, experiment)
    _end(session, repo, experiment, ExperimentStatus.PROMOTED, actor=actor, why=f"B won ({how}): live in prod")


def _close_promotion_of(session: Session, repo: Repository, release: Release, experiment: Experiment) -> None:
    """A candidate that was soaking in a promotion stage has reached prod: its promotion is done."""
    stages = (repo.promotion or {}).get("stages") or []
    for promotion in session.scalars(
        select(Promotion).where(
            Promotion.repository_id == repo.id,
            Promotion.release_id == release.id,
            Promotion.status.in_(PromotionStatus.waiting()),
        )
    ):
        promotion.status = PromotionStatus.PROMOTED
        promotion.stage = stages[-1] if stages else promotion.stage
        promotion.detail = {**(promotion.detail or {}), "note": f"promoted to prod by A/B experiment {experiment.id}"}


def _end(session: Session, repo: Repository, experiment: Experiment, status: ExperimentStatus, *, actor: str, why: str):
    variants.take_down(session, repo, experiment.dag_id)
    experiment.status = status
    experiment.winner = {ExperimentStatus.PROMOTED: "B", ExperimentStatus.KEPT: "A"}.get(status)
    experiment.ended_at = utcnow()
    experiment.detail = {**(experiment.detail or {}), "ended_by": actor, "reason": why}
    session.flush()
    _record_event(session, repo, experiment, status, actor=actor)
    log.info("%s: experiment %d on %s %s: %s", repo.name, experiment.id, experiment.dag_id, status, why)


def _require_running(session: Session, repo: Repository, dag_id: str | None) -> Experiment:
    running = _running(session, repo.id)
    if running is None:
        raise Conflict(f"{repo.name!r} runs no experiment; start one with `dagops ab start {repo.name} DAG_ID`")
    if dag_id is not None and dag_id != running.dag_id:
        raise Conflict(f"the experiment of {repo.name!r} runs on {running.dag_id!r}, not {dag_id!r}; nothing changed")
    return running


def _running(session: Session, repository_id: int) -> Experiment | None:
    return session.scalars(
        select(Experiment).where(
            Experiment.repository_id == repository_id, Experiment.status == ExperimentStatus.RUNNING
        )
    ).first()


# -- reading -----------------------------------------------------------------------------------------------------
def status(name: str | None = None) -> list[dict]:
    """Running experiments first, then the newest ended ones (of one repository, or of all)."""
    with session_scope() as session:
        query = select(Experiment)
        if name is not None:
            query = query.where(Experiment.repository_id == load_repository(session, name).id)
        rows = session.scalars(query.order_by(Experiment.id.desc()).limit(HISTORY * 5)).all()
        running = [row for row in rows if row.status == ExperimentStatus.RUNNING]
        ended = [row for row in rows if row.status != ExperimentStatus.RUNNING][:HISTORY]
        return [describe(session, row) for row in running + ended]


def get(experiment_id: int) -> dict:
    with session_scope() as session:
        experiment = session.get(Experiment, experiment_id) if 0 < experiment_id < 2**31 else None
        if experiment is None:
            raise NotFound(f"no experiment with id {experiment_id}")
        return describe(session, experiment)


def describe(session: Session, experiment: Experiment) -> dict:
    repo = get_row(session, Repository, experiment.repository_id)
    releases = {
        variant: session.get(Release, release_id) if release_id else None
        for variant, release_id in (("A", experiment.release_a_id), ("B", experiment.release_b_id))
    }
    comparison = experiment.verdict or {}
    names = variants.airflow_names(repo, experiment.dag_id)
    return {
        "id": experiment.id,
        "repository": repo.name,
        "dag_id": experiment.dag_id,
        "status": experiment.status,
        "winner": experiment.winner,
        "split": experiment.split,
        "split_description": Split.parse(experiment.split).describe(),
        "rule": experiment.rule,
        "variants": {
            variant: {
                **names[variant],
                "release_id": release.id if release else None,
                "commit": release.commit_sha if release else None,
                **(comparison.get("variants") or {}).get(variant, {}),
            }
            for variant, release in releases.items()
        },
        "assigned": experiment.assigned,
        "pending": comparison.get("pending"),
        "not_started": comparison.get("not_started"),
        "unsplit": comparison.get("unsplit"),
        "verdict": comparison.get("verdict"),
        "detail": experiment.detail or {},
        "actor": experiment.actor,
        "started_at": iso_time(experiment.started_at),
        "updated_at": iso_time(experiment.updated_at),
        "ended_at": iso_time(experiment.ended_at),
        "message": _in_words(repo, experiment),
    }


def _in_words(repo: Repository, experiment: Experiment) -> str:
    verdict = (experiment.verdict or {}).get("verdict") or {}
    if experiment.status == ExperimentStatus.RUNNING:
        return verdict.get("summary") or "running: no run of either variant has finished yet"
    return f"{experiment.status}: {(experiment.detail or {}).get('reason', '')}".rstrip(": ")


def _record_event(session: Session, repo: Repository, experiment: Experiment, what: str, *, actor: str) -> None:
    verdict = ((experiment.verdict or {}).get("verdict") or {}).get("summary")
    summary = f"{repo.name}: A/B experiment {experiment.id} on {experiment.dag_id} {what}"
    events.record(
        "experiment",
        repository=repo.name,
        release_id=experiment.release_b_id,
        actor=actor,
        outcome=str(what),
        summary=f"{summary}: {verdict}" if verdict and what != "started" else summary,
        detail={
            "experiment_id": experiment.id,
            "dag_id": experiment.dag_id,
            "release_a_id": experiment.release_a_id,
            "release_b_id": experiment.release_b_id,
            "split": experiment.split,
            "rule": experiment.rule,
            "winner": experiment.winner,
            "reason": (experiment.detail or {}).get("reason"),
        },
        session=session,
    )


# -- housekeeping -------------------------------------------------------------------------------------------------
def reconcile() -> list[str]:
    """Take down what experiments that no longer run left up (ended by a crash half-way, or gone with their
    repository): candidates' namespaces and A's gate entries. Returns the namespaces taken down."""
    with session_scope() as session:
        running = set(session.scalars(select(Experiment.id).where(Experiment.status == ExperimentStatus.RUNNING)))
        return variants.take_down_leftovers(session, running)
