"""A repository's health, derived from what the state DB already records: its sync runs, when the poll last
checked its remote (`last_checked_at`), and its options. Nothing is stored; every face asks here.

The states, first match wins (docs/operations.md draws the transitions):

    paused   disabled, or pinned: dagops does not follow the branch, on purpose
    failing  the last `[dagops] health_failing_after` (3) finished syncs all failed (a `rejected` retry of a commit
             that was refused counts as a failure); `reason` is the newest failure's (auth, unreachable,
             validation, tests, no_space, other)
    stale    no successful check of the remote within `[dagops] health_stale_factor` (3) poll intervals, the
             interval being the repository's own or at least the period of `[dagops] sync_schedule`
    ok       none of the above; a failure or two below the threshold show in `last_failure`

A check of the remote succeeded when a sync read it (it published, found nothing new, or fetched a commit that
then failed validation, its tests or the disk), or when the poll's `ls-remote` answered. The poll records only
that it ran (`last_checked_at`); when syncs that could not reach the remote (auth, unreachable, other) followed the
last sync that did, the poll's answers since the first of them are not counted: no check has succeeded since
then, give or take one poll.

`since` is when the repository entered its state: failing, the end of the failure that crossed the threshold;
stale, the moment the last successful check became too old; paused, the last pin/deploy/rollback record (pinned)
or the last change of the repository (disabled); ok, the end of the first successful sync after the newest failure
before it (or its registration). The overall answer: failing if one repository fails, degraded if one is stale,
else ok (a pause is someone's decision, not a fault).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_dagops import settings
from airflow_dagops.errors import DagOpsError, InvalidInput
from airflow_dagops.health.reasons import REACHED_CODES, failure_reason
from airflow_dagops.statuses import FailureReason, HealthState, OverallHealth, SyncRunStatus
from airflow_dagops.store import reads
from airflow_dagops.store.reads import Reader, one_of
from airflow_dagops.store.values import aware, iso_time, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

GOOD = (SyncRunStatus.SUCCESS, SyncRunStatus.UNCHANGED)
BAD = (SyncRunStatus.FAILED, SyncRunStatus.REJECTED)
# The state DB is read without the ORM (store/reads.py): `dagops status` is a new process each time.
_GOOD, _GOOD_PARAMS = one_of("good", GOOD)
_BAD, _BAD_PARAMS = one_of("bad", BAD)
_REACHED, _REACHED_PARAMS = one_of("reached", REACHED_CODES)
_REACHED_STATUS, _REACHED_STATUS_PARAMS = one_of("seen", (*GOOD, SyncRunStatus.REJECTED))
DEFAULT_SCHEDULE_PERIOD = 60  # seconds: the default sync_schedule, `* * * * *`


@dataclass(frozen=True)
class HealthRules:
    """The settings health is judged by, read once per answer."""

    stale_factor: float = 3.0
    failing_after: int = 3
    schedule_period: int = DEFAULT_SCHEDULE_PERIOD  # seconds between polls of the dagops_sync DAG; 0: unknown
    default_poll_interval: int = 60

    @classmethod
    def from_settings(cls) -> HealthRules:
        raw_factor, raw_after = settings.get("health_stale_factor"), settings.get("health_failing_after")
        try:
            factor = float(raw_factor)
        except ValueError:
            factor = math.nan
        if not math.isfinite(factor) or factor <= 0:
            raise InvalidInput(f"[dagops] health_stale_factor must be a number above 0, got {raw_factor!r}")
        if not raw_after.strip().isdigit() or int(raw_after) < 1:
            raise InvalidInput(f"[dagops] health_failing_after must be an integer of at least 1, got {raw_after!r}")
        return cls(
            stale_factor=factor,
            failing_after=int(raw_after),
            schedule_period=schedule_period(settings.get("sync_schedule")),
            default_poll_interval=settings.get_int("default_poll_interval"),
        )


def schedule_period(schedule: str) -> int:
    """Seconds between two runs of a cron schedule (the longest of the next few gaps); 0 when it has none."""
    schedule = (schedule or "").strip()
    if not schedule:
        return 0
    try:
        from croniter import croniter  # type: ignore[import-untyped]  # Airflow's own dependency

        it = croniter(schedule, utcnow())
        times = [it.get_next(datetime) for _ in range(4)]
    except Exception:  # not a cron expression Airflow could have meant (e.g. @once, @continuous)
        return 0
    return int(max((b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)))


@dataclass
class RepositoryHealth:
    repository: str
    state: HealthState
    since: datetime | None
    message: str
    reason: str | None = None  # a FailureReason when failing; disabled / pinned when paused
    consecutive_failures: int = 0
    last_success_at: datetime | None = None  # the last successful check of the remote (see the module docstring)
    last_failure: dict | None = None  # {at, reason, code, message} of the newest failed sync, if after the last good
    poll_interval: int = 0  # seconds, as judged (the repository's own, at least the schedule's period)
    stale_after: int = 0  # seconds without a successful check before the repository is stale

    def to_dict(self) -> dict:
        return {
            "repository": self.repository,
            "state": self.state.value,
            "reason": self.reason,
            "since": iso_time(self.since),
            "message": self.message,
            "consecutive_failures": self.consecutive_failures,
            "last_success_at": iso_time(self.last_success_at),
            "last_failure": self.last_failure,
            "poll_interval": self.poll_interval,
            "stale_after": self.stale_after,
        }


@dataclass
class HealthReport:
    repositories: list[RepositoryHealth] = field(default_factory=list)

    @property
    def overall(self) -> OverallHealth:
        states = {h.state for h in self.repositories}
        if HealthState.FAILING in states:
            return OverallHealth.FAILING
        if HealthState.STALE in states:
            return OverallHealth.DEGRADED
        return OverallHealth.OK

    def counts(self) -> dict[str, int]:
        return {state.value: sum(1 for h in self.repositories if h.state == state) for state in HealthState}

    def to_dict(self) -> dict:
        return {
            "overall": self.overall.value,
            "counts": self.counts(),
            "repositories": [h.to_dict() for h in self.repositories],
        }


# -- reading -----------------------------------------------------------------------------------------------------
def health_report(*, now: datetime | None = None, rules: HealthRules | None = None) -> HealthReport:
    """The health of every registered repository, by priority then name (as `dagops repos list`)."""
    rules = rules or HealthRules.from_settings()
    with reads.reading() as reader:
        repos = reader.rows("dagops_repository", "ORDER BY priority, name")
        return HealthReport([judge(reader, repo, rules, now=now) for repo in repos])


def health_of(names: list[str], *, now: datetime | None = None) -> dict[str, dict]:
    """{name: health dict} of these repositories, for answers that show repositories (the REST repository list,
    the page). Never fails them: with health settings that cannot be read, or a state DB that cannot answer, it
    logs why and answers nothing (`dagops status` and GET /health do report the error)."""
    if not names:
        return {}
    try:
        rules = HealthRules.from_settings()
        named, params = one_of("name", names)
        with reads.reading() as reader:
            repos = reader.rows("dagops_repository", f"WHERE name {named}", **params)
            return {repo.name: judge(reader, repo, rules, now=now).to_dict() for repo in repos}
    except DagOpsError as err:
        log.warning("no repository health in this answer: %s", err)
        return {}


def repository_health(name: str, *, now: datetime | None = None, rules: HealthRules | None = None) -> RepositoryHealth:
    rules = rules or HealthRules.from_settings()
    with reads.reading() as reader:
        return judge(reader, reads.repository_row(reader, name), rules, now=now)


def judge(source: Reader | Session, repo: Any, rules: HealthRules, *, now: datetime | None = None) -> RepositoryHealth:
    """One repository's health (the module docstring says how), from its row (`dagops_repository`), read through a
    Reader or in an ORM session's transaction."""
    now = now or utcnow()
    reader = source if isinstance(source, Reader) else reads.core_reader(source)
    history = _History.read(reader, repo)
    interval = max(repo.poll_interval or rules.default_poll_interval, rules.schedule_period)
    stale_after = math.ceil(interval * rules.stale_factor)
    last_success = history.last_success(repo.last_checked_at)
    health = RepositoryHealth(
        repository=repo.name,
        state=HealthState.OK,
        since=None,
        message="",
        consecutive_failures=history.streak,
        last_success_at=last_success,
        last_failure=history.last_failure_dict(),
        poll_interval=interval,
        stale_after=stale_after,
    )
    if not repo.enabled:
        health.state, health.reason, health.since = HealthState.PAUSED, "disabled", aware(repo.updated_at)
        health.message = f"disabled: scheduled checks do not sync it (`dagops repos update {repo.name} --enabled`)"
    elif repo.pinned_release_id:
        pinned = reader.first("dagops_release", "WHERE id = :id", id=repo.pinned_release_id)
        newest = reader.first("dagops_deploy_event", "WHERE repository_id = :id ORDER BY created_at DESC", id=repo.id)
        health.state, health.reason = HealthState.PAUSED, "pinned"
        health.since = aware(newest.created_at if newest is not None else repo.updated_at)
        commit = pinned.commit_sha[:12] if pinned is not None else "a release"
        health.message = f"pinned to {commit}: new commits are not followed (`dagops unpin {repo.name}`)"
    elif history.streak >= rules.failing_after:
        reason = history.newest_reason()
        health.state, health.reason, health.since = HealthState.FAILING, reason.value, history.crossed(rules)
        detail = (history.newest_failed_error or "").splitlines()[0][:300] if history.newest_failed_error else ""
        health.message = f"{history.streak} syncs in a row failed ({reason})" + (f": {detail}" if detail else "")
    elif now - (last_success or aware(repo.created_at)) > timedelta(seconds=stale_after):
        reference = last_success or aware(repo.created_at)
        health.state, health.since = HealthState.STALE, reference + timedelta(seconds=stale_after)
        checked = f"since {iso_time(last_success)}" if last_success else "ever"
        health.message = (
            f"no successful check of the remote {checked} (stale after {stale_after} s): is the dagops_sync DAG "
            "unpaused and the scheduler running?"
        )
    else:
        health.since = history.good_since() or aware(repo.created_at)
        health.message = "ok"
        if history.streak:
            health.message = (
                f"ok; the last {history.streak} sync(s) failed ({history.newest_reason()}), failing after "
                f"{rules.failing_after}"
            )
    return health


@dataclass
class _History:
    """What the health of one repository needs from its sync runs, in a few aggregate queries."""

    reader: Reader
    repo_id: int
    last_good_id: int | None
    streak: int  # failed or rejected runs after the last good one
    reached_id: int | None  # the newest run that read the remote
    reached_end: datetime | None
    not_reached_start: datetime | None  # the first run after it that could not read the remote
    newest_failed_error: str | None = None
    newest_failed: Any | None = None  # a `dagops_sync_run` row

    @classmethod
    def read(cls, reader: Reader, repo: Any) -> _History:
        last_good_id = reader.scalar(
            f"SELECT MAX(id) FROM dagops_sync_run WHERE repository_id = :id AND status {_GOOD}",  # noqa: S608
            id=repo.id,
            **_GOOD_PARAMS,
        )
        streak = reader.scalar(
            f"SELECT COUNT(*) FROM dagops_sync_run WHERE repository_id = :id AND status {_BAD} AND id > :after",  # noqa: S608
            id=repo.id,
            after=last_good_id or 0,
            **_BAD_PARAMS,
        )
        reached = f"status {_REACHED_STATUS} OR (status = :failed AND error_code {_REACHED})"
        reached_run = reader.first(
            "dagops_sync_run",
            f"WHERE repository_id = :id AND ({reached}) ORDER BY id DESC",
            id=repo.id,
            failed=SyncRunStatus.FAILED.value,
            **_REACHED_STATUS_PARAMS,
            **_REACHED_PARAMS,
        )
        not_reached = reader.first(
            "dagops_sync_run",
            f"WHERE repository_id = :id AND status = :failed AND (error_code IS NULL OR error_code NOT {_REACHED}) "
            "AND id > :after ORDER BY started_at",
            id=repo.id,
            failed=SyncRunStatus.FAILED.value,
            after=reached_run.id if reached_run else 0,
            **_REACHED_PARAMS,
        )
        newest_failed = reader.first(
            "dagops_sync_run",
            "WHERE repository_id = :id AND status = :failed ORDER BY id DESC",
            id=repo.id,
            failed=SyncRunStatus.FAILED.value,
        )
        return cls(
            reader=reader,
            repo_id=repo.id,
            last_good_id=last_good_id,
            streak=streak or 0,
            reached_id=reached_run.id if reached_run else None,
            reached_end=_end(reached_run) if reached_run else None,
            not_reached_start=aware(not_reached.started_at) if not_reached else None,
            newest_failed_error=newest_failed.error if newest_failed else None,
            newest_failed=newest_failed,
        )

    def last_success(self, last_checked_at: datetime | None) -> datetime | None:
        polled = aware(last_checked_at) if last_checked_at else None
        if polled is not None and self.not_reached_start is not None:
            polled = min(polled, self.not_reached_start)  # polls since the remote stopped answering do not count
        found = [t for t in (self.reached_end, polled) if t is not None]
        return max(found) if found else None

    def newest_reason(self) -> FailureReason:
        """The reason of the newest failure; a `rejected` run has none of its own, so the failed run that refused
        its commit (the newest failed one) speaks for it."""
        if self.newest_failed is None:
            return FailureReason.VALIDATION  # only rejected runs: commits refused by validation before
        return failure_reason(self.newest_failed.error_code, self.newest_failed.error)

    def last_failure_dict(self) -> dict | None:
        run = self.newest_failed
        if run is None or (self.last_good_id is not None and run.id < self.last_good_id):
            return None
        return {
            "at": iso_time(_end(run)),
            "reason": failure_reason(run.error_code, run.error).value,
            "code": run.error_code,
            "message": (run.error or "").splitlines()[0][:300] if run.error else None,
            "sync_id": run.id,
        }

    def crossed(self, rules: HealthRules) -> datetime | None:
        """When the streak reached the threshold: the end of its `failing_after`-th run."""
        runs = self.reader.rows(
            "dagops_sync_run",
            f"WHERE repository_id = :id AND status {_BAD} AND id > :after ORDER BY id LIMIT 1 OFFSET :skip",
            id=self.repo_id,
            after=self.last_good_id or 0,
            skip=rules.failing_after - 1,
            **_BAD_PARAMS,
        )
        return _end(runs[0]) if runs else None

    def good_since(self) -> datetime | None:
        """The end of the first good run after the newest failure before the last good run."""
        if self.last_good_id is None:
            return None
        failure_before = self.reader.scalar(
            f"SELECT MAX(id) FROM dagops_sync_run WHERE repository_id = :id AND status {_BAD} AND id < :good",  # noqa: S608
            id=self.repo_id,
            good=self.last_good_id,
            **_BAD_PARAMS,
        )
        if failure_before is None:
            return None
        first_good = self.reader.first(
            "dagops_sync_run",
            f"WHERE repository_id = :id AND status {_GOOD} AND id > :failure ORDER BY id",
            id=self.repo_id,
            failure=failure_before,
            **_GOOD_PARAMS,
        )
        return _end(first_good) if first_good is not None else None


def _end(run: Any) -> datetime:
    return aware(run.ended_at or run.started_at)
