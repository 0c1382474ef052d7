"""The `auto_rollback` rule of a repository (`{max_failure_rate: 0.5, min_runs: 3}`): once the first `min_runs` DAG
runs of its live release have finished, if more than `max_failure_rate` of them failed, the release before it goes
live again, the repository is pinned to it, and an `auto_rollback` alert is sent.

`evaluate` runs right after DAG run outcomes are collected (the dagops_events DAG). It judges a release only when
it went live by itself (a sync, its tests passing, a promotion reaching prod): a release someone chose (a rollback,
a deploy, an earlier auto-rollback) is left alone, so one bad rule never rolls back a chain of releases. A pinned
repository is left alone too: someone decided what stays live.

Why it pins: the rolled-back commit is still the branch head. Unpinned, a forced or recovered sync would publish
it again; pinned, the repository is `paused` (its health says `pinned`) until someone pushes a fix and runs
`dagops unpin NAME`. The rollback is a by-hand move in the pin rule's terms (releases/pins.py), made by the actor
`dagops:auto_rollback` (the deploy log and the event feed say so).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from airflow_dagops.alerts import release_health, state
from airflow_dagops.alerts.send import Alert
from airflow_dagops.alerts.service import deliver
from airflow_dagops.releases.rollback import rollback
from airflow_dagops.statuses import AlertEvent
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release, Repository

log = logging.getLogger(__name__)

ACTOR = "dagops:auto_rollback"
# How a release went live by itself (DeployEvent.reason): a sync's publish, its deferred tests passing, a promotion.
AUTOMATIC = ("sync", "tests passed", "promotion")


@dataclass(frozen=True)
class Verdict:
    repository: str
    release_id: int
    previous_id: int
    runs: list[str]  # the outcomes judged, oldest first
    failure_rate: float
    rule: dict

    @property
    def summary(self) -> str:
        failed = self.runs.count("failed")
        return (
            f"{failed} of the first {len(self.runs)} DAG runs of release {self.release_id} failed "
            f"({self.failure_rate:.0%}, more than the {self.rule['max_failure_rate']:.0%} auto_rollback allows)"
        )


def evaluate() -> list[dict]:
    """Roll back every live release its repository's rule condemns; what was rolled back (or failed to)."""
    done = []
    for verdict in judge_all():
        done.append(apply(verdict))
    return done


def judge_all() -> list[Verdict]:
    with session_scope() as session:
        repos = session.scalars(
            select(Repository).where(
                Repository.auto_rollback.is_not(None),
                Repository.live_release_id.is_not(None),
                Repository.pinned_release_id.is_(None),
            )
        ).all()
        verdicts = [judge(session, repo) for repo in repos if repo.auto_rollback]
    return [v for v in verdicts if v is not None]


def judge(session, repo: Repository) -> Verdict | None:
    """The verdict on a repository's live release, or None while it stands (or is not the rule's to judge)."""
    rule, live_id = repo.auto_rollback or {}, repo.live_release_id
    if not rule or live_id is None:
        return None
    record = release_health.went_live(session, repo.id, live_id)
    if record is None or not record.reason.startswith(AUTOMATIC) or not record.from_release_id:
        return None
    if session.get(Release, record.from_release_id) is None:
        return None
    runs = release_health.first_runs(session, live_id, record.created_at, rule["min_runs"])
    if len(runs) < rule["min_runs"]:
        return None
    rate = runs.count("failed") / len(runs)
    if rate <= rule["max_failure_rate"]:
        return None
    return Verdict(repo.name, live_id, record.from_release_id, runs, rate, rule)


def apply(verdict: Verdict) -> dict:
    """Roll back, pin, alert: once per release (alerts/state.py claims it, whichever process judges first)."""
    with session_scope() as session:
        repo = session.scalar(select(Repository).where(Repository.name == verdict.repository))
        if repo is None or repo.live_release_id != verdict.release_id:
            return {"repository": verdict.repository, "release_id": verdict.release_id, "rolled_back": False}
        repo_id, rules = repo.id, repo.alerts
        release = session.get(Release, verdict.release_id)
        previous = session.get(Release, verdict.previous_id)
        commit = release.commit_sha if release else "?"
        back_to = previous.commit_sha if previous else "?"
    if not state.claim_rollback(repo_id, verdict.release_id):
        return {"repository": verdict.repository, "release_id": verdict.release_id, "rolled_back": False}
    answer = {"repository": verdict.repository, "release_id": verdict.release_id, "to_release_id": verdict.previous_id}
    try:
        rollback(verdict.repository, verdict.previous_id, actor=ACTOR, pin=True)
    except Exception as err:  # say so in the alert: someone must look
        log.exception("auto-rollback of %s failed", verdict.repository)
        error = f"{type(err).__name__}: {err}"
        alert = Alert(
            AlertEvent.AUTO_ROLLBACK,
            verdict.repository,
            f"dagops: auto-rollback of {verdict.repository} FAILED",
            f"{verdict.summary}, but rolling back to release {verdict.previous_id} failed: {error}. "
            f"Release {verdict.release_id} ({commit[:12]}) is still live.",
            {**answer, "runs": verdict.runs, "rolled_back": False, "error": error},
        )
        deliver(repo_id, rules, alert)
        return {**answer, "rolled_back": False, "error": error}
    log.warning("%s rolled %s back to release %s: %s", ACTOR, verdict.repository, verdict.previous_id, verdict.summary)
    alert = Alert(
        AlertEvent.AUTO_ROLLBACK,
        verdict.repository,
        f"dagops: {verdict.repository} rolled back to {back_to[:12]}",
        f"{verdict.summary}. Release {verdict.previous_id} ({back_to[:12]}) is live again and the repository is "
        f"pinned to it: push a fix, then `dagops unpin {verdict.repository}`.",
        {
            **answer,
            "commit": commit,
            "to_commit": back_to,
            "runs": verdict.runs,
            "failure_rate": round(verdict.failure_rate, 4),
            "rule": verdict.rule,
            "rolled_back": True,
        },
    )
    deliver(repo_id, rules, alert)
    return {**answer, "rolled_back": True}
