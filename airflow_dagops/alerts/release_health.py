"""Release health: how the DAG runs of a release went, from the `dag_run` events the dagops_events DAG records
(events/dag_runs.py, each tagged with the release that was live when it was collected), compared with the release
that was live before it.

Per release: runs recorded, successes, failures, success rate, mean duration (end minus start of the runs that
have both). The comparison: the release's numbers next to the previous live release's (the `from` of the deploy
record that made it live), with the differences. The page's releases table, `GET .../repositories/{name}/releases`
(a `run_health` field per release) and `GET .../repositories/{name}/release-health` show them; releases/
auto_rollback.py judges the first runs of a release with `first_runs`.

Only the runs that started after the release went live count for it: a run that started on the previous release
and ended after the switch is that release's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from airflow_dagops.alerts.state import read_state
from airflow_dagops.errors import NotFound
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import DeployEvent, Event, Release, Repository, aware, iso_time
from airflow_dagops.store.queries import load_repository

OUTCOMES = ("success", "failed")
MAX_RUNS = 10_000  # the newest runs read per release: enough for a rate, bounded for a page


@dataclass
class RunStats:
    release_id: int
    success: int = 0
    failed: int = 0
    mean_duration: float | None = None  # seconds
    went_live_at: datetime | None = None

    @property
    def runs(self) -> int:
        return self.success + self.failed

    @property
    def success_rate(self) -> float | None:
        return round(self.success / self.runs, 4) if self.runs else None

    def to_dict(self) -> dict:
        return {
            "release_id": self.release_id,
            "runs": self.runs,
            "success": self.success,
            "failed": self.failed,
            "success_rate": self.success_rate,
            "mean_duration_seconds": round(self.mean_duration, 3) if self.mean_duration is not None else None,
            "went_live_at": iso_time(self.went_live_at),
        }


def went_live(session: Session, repo_id: int, release_id: int) -> DeployEvent | None:
    """The newest record of `release_id` going live (a pin record moves nothing and is not one)."""
    return session.scalar(
        select(DeployEvent)
        .where(
            DeployEvent.repository_id == repo_id,
            DeployEvent.to_release_id == release_id,
            DeployEvent.reason.not_in(("pin", "unpin")),
        )
        .order_by(DeployEvent.id.desc())
        .limit(1)
    )


def outcomes(session: Session, release_id: int, since: datetime | None = None, *, limit: int = MAX_RUNS) -> list:
    """The release's finished runs (success or failed) as (outcome, start, end), oldest recorded first, only those
    that started at or after `since`."""
    rows = session.execute(
        select(Event.outcome, Event.detail)
        .where(Event.kind == "dag_run", Event.release_id == release_id, Event.outcome.in_(OUTCOMES))
        .order_by(Event.id.desc())
        .limit(limit)
    ).all()
    found = []
    for outcome, detail in reversed(rows):
        facts: dict = detail if isinstance(detail, dict) else {}
        start, end = _time(facts.get("start_date")), _time(facts.get("end_date"))
        if since is not None and start is not None and start < aware(since):
            continue
        found.append((outcome, start, end))
    return found


def first_runs(session: Session, release_id: int, since: datetime | None, count: int) -> list[str]:
    """The outcomes of the first `count` runs of a release since it went live (fewer when fewer finished)."""
    return [outcome for outcome, _start, _end in outcomes(session, release_id, since)[:count]]


def stats(session: Session, repo_id: int, release_id: int) -> RunStats:
    record = went_live(session, repo_id, release_id)
    since = record.created_at if record is not None else None
    found = RunStats(release_id, went_live_at=aware(since) if since else None)
    durations = []
    for outcome, start, end in outcomes(session, release_id, since):
        if outcome == "success":
            found.success += 1
        else:
            found.failed += 1
        if start is not None and end is not None and end >= start:
            durations.append((end - start).total_seconds())
    found.mean_duration = sum(durations) / len(durations) if durations else None
    return found


def previous_of(session: Session, repo_id: int, release_id: int) -> int | None:
    record = went_live(session, repo_id, release_id)
    return record.from_release_id if record is not None else None


def compare(current: RunStats, previous: RunStats | None) -> dict:
    """The release's numbers, the previous release's, and the differences (None where one side has no runs)."""
    answer: dict = {**current.to_dict(), "previous": previous.to_dict() if previous else None}
    rate, before = current.success_rate, previous.success_rate if previous else None
    answer["success_rate_change"] = round(rate - before, 4) if rate is not None and before is not None else None
    now, then = current.mean_duration, previous.mean_duration if previous else None
    answer["mean_duration_change_seconds"] = round(now - then, 3) if now is not None and then is not None else None
    return answer


def release_health(name: str, release_id: int | None = None) -> dict:
    """One release (default: the live one) against the release live before it."""
    with session_scope() as session:
        repo = load_repository(session, name)
        release_id = release_id or repo.live_release_id
        if release_id is None:
            return {"repository": name, "release": None}
        release = session.get(Release, release_id)
        if release is None or release.repository_id != repo.id:
            raise NotFound(f"{name} has no release {release_id}")
        current = stats(session, repo.id, release_id)
        previous_id = previous_of(session, repo.id, release_id)
        previous = stats(session, repo.id, previous_id) if previous_id else None
        return {"repository": name, "release": compare(current, previous), "auto_rollback": repo.auto_rollback}


def run_health_of(session: Session, repo: Repository, release_ids: list[int]) -> dict[int, dict]:
    """{release id: compared run health} for the releases of one page of the releases list; releases without runs
    (and without a previous one with runs) are left out."""
    found: dict[int, dict] = {}
    cache: dict[int, RunStats] = {}

    def of(release_id: int) -> RunStats:
        if release_id not in cache:
            cache[release_id] = stats(session, repo.id, release_id)
        return cache[release_id]

    for release_id in release_ids:
        current = of(release_id)
        previous_id = previous_of(session, repo.id, release_id)
        previous = of(previous_id) if previous_id else None
        if current.runs or (previous is not None and previous.runs):
            found[release_id] = compare(current, previous)
    return found


def _time(value) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def run_health_of_releases(name: str, release_ids: list[int]) -> dict[int, dict]:
    """`run_health_of` for one repository by name, in its own transaction (the REST releases list)."""
    with session_scope() as session:
        return run_health_of(session, load_repository(session, name), release_ids)


def alert_overview(name: str) -> dict:
    """A repository's alert rules, auto-rollback rule and what its alerts last said (GET .../alerts)."""
    with session_scope() as session:
        repo = load_repository(session, name)
        rules, auto, repo_id = repo.alerts, repo.auto_rollback, repo.id
    return {"repository": name, "alerts": rules, "auto_rollback": auto, "state": read_state(repo_id)}
