"""The statuses dagops stores and returns, as enums of the strings they have always been.

Each member *is* its string (a `str` subclass): it is stored in the state DB, written to JSON and compared with
values read back from the DB (plain strings) unchanged, so neither the DB nor the API sees a difference.
`str(member)` and f-strings give the value too (`f"{ReleaseStatus.LIVE}"` is `live`), on every Python.

Foundation layer: this module imports nothing from the package.
"""

from __future__ import annotations

import sys
from enum import Enum

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, Enum):
        """Python 3.11's enum.StrEnum, reduced to what dagops needs: members are their values."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, format_spec: str) -> str:
            return str(self.value).__format__(format_spec)


__all__ = [
    "CheckStatus",
    "DiscoveryStatus",
    "ExperimentStatus",
    "FailureReason",
    "HealthState",
    "OverallHealth",
    "PromotionStatus",
    "ReleaseStatus",
    "RepositoryStatus",
    "StrEnum",
    "SyncOutcomeStatus",
    "SyncRunStatus",
]


class ReleaseStatus(StrEnum):
    """Release.status: where one exported commit stands."""

    LIVE = "live"  # the release its namespace points at
    VALIDATED = "validated"  # passed validation, not live
    RETIRED = "retired"  # was live
    FAILED = "failed"  # did not pass validation (or its tests): never published, cannot be rolled back to
    TESTING = "testing"  # passed validation, unpublished until the dagops_test DAG has run its tests

    @classmethod
    def deployable(cls) -> tuple[ReleaseStatus, ...]:
        """Releases a rollback or a deploy may make live: they passed validation once."""
        return (cls.VALIDATED, cls.LIVE, cls.RETIRED)


class SyncRunStatus(StrEnum):
    """SyncRun.status: one sync of one repository."""

    QUEUED = "queued"  # triggered in Airflow, the task has not started
    RUNNING = "running"
    SUCCESS = "success"  # published (or its live link restored), or handed to the tests
    UNCHANGED = "unchanged"  # nothing new (or pinned)
    REJECTED = "rejected"  # the head commit was refused before: not validated again
    FAILED = "failed"

    @classmethod
    def active(cls) -> tuple[SyncRunStatus, ...]:
        """Runs not finished yet: at most one per repository."""
        return (cls.QUEUED, cls.RUNNING)


class SyncOutcomeStatus(StrEnum):
    """SyncOutcome.status: what one sync did, as the CLI and the dagops_sync DAG report it (not stored)."""

    PUBLISHED = "published"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"
    FAILED = "failed"
    PINNED = "pinned"
    DISABLED = "disabled"
    TESTING = "testing"  # validated; published once the dagops_test DAG has run its tests

    @classmethod
    def not_ok(cls) -> tuple[SyncOutcomeStatus, ...]:
        return (cls.FAILED, cls.REJECTED)


class CheckStatus(StrEnum):
    """CheckRun.status: the validation of a pull/merge request head (git/host_api.py maps it to each host's
    commit status words)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"  # validation found errors
    ERROR = "error"  # the check could not run

    @classmethod
    def active(cls) -> tuple[CheckStatus, ...]:
        return (cls.QUEUED, cls.RUNNING)


class PromotionStatus(StrEnum):
    """Promotion.status: one release's way through a repository's promotion stages."""

    SOAKING = "soaking"  # live in a stage, counting successful DAG runs
    PROMOTED = "promoted"  # went through every stage
    BLOCKED = "blocked"  # a DAG run failed in the stage: waits for a person (or a newer release)
    SUPERSEDED = "superseded"  # a newer release took its place

    @classmethod
    def waiting(cls) -> tuple[PromotionStatus, ...]:
        """Promotions still waiting for something: at most one per repository."""
        return (cls.SOAKING, cls.BLOCKED)


class ExperimentStatus(StrEnum):
    """Experiment.status: an A/B test of two releases of one DAG (airflow_dagops/experiments)."""

    RUNNING = "running"  # both variants live, their scheduled runs split between them
    PROMOTED = "promoted"  # B won (by the rule or by hand) and went live in prod
    KEPT = "kept"  # A won (or was chosen by hand): prod keeps its release, B was taken down
    STOPPED = "stopped"  # stopped by hand without a winner
    ABORTED = "aborted"  # prod changed under it (rollback, deploy, sync, promotion) or a release went away

    @classmethod
    def ended(cls) -> tuple[ExperimentStatus, ...]:
        return (cls.PROMOTED, cls.KEPT, cls.STOPPED, cls.ABORTED)


class DiscoveryStatus(StrEnum):
    """DiscoveredRepository.status: a repository of a Git host organization that matched a discovery rule."""

    PROPOSED = "proposed"  # matches; not registered yet (`dagops discover --apply` or the source's `register`)
    REGISTERED = "registered"  # a dagops repository was registered for it (or already had its URL)
    REMOVED = "removed"  # matched once; gone from the organization or no longer matching: flagged, never deleted
    IGNORED = "ignored"  # someone said not to propose it again


class RepositoryStatus(StrEnum):
    """A repository's status in the API and the CLI: derived from its last sync and its options (not stored)."""

    SYNCED = "synced"
    FAILED = "failed"
    SYNCING = "syncing"
    PINNED = "pinned"
    PENDING = "pending"
    DISABLED = "disabled"


class HealthState(StrEnum):
    """A repository's health (airflow_dagops/health): derived from its sync history and options (not stored).
    When several apply, the first in this order wins: paused > failing > stale > ok."""

    OK = "ok"
    STALE = "stale"  # no successful check within `[dagops] health_stale_factor` poll intervals
    FAILING = "failing"  # `[dagops] health_failing_after` syncs in a row failed
    PAUSED = "paused"  # disabled, or pinned: dagops does not follow the branch on purpose


class OverallHealth(StrEnum):
    """All repositories together (`dagops status` exits 0 / 1 / 2, the REST health answer's `overall`)."""

    OK = "ok"  # every repository ok or paused (a pause is someone's decision, not a fault)
    DEGRADED = "degraded"  # one or more stale, none failing
    FAILING = "failing"  # one or more failing


class FailureReason(StrEnum):
    """Why a sync failed, in the few words an operator acts on (docs/operations.md has a runbook entry for each)."""

    AUTH = "auth"  # the remote refused the credentials (or dagops refused to send them to this host)
    UNREACHABLE = "unreachable"  # the remote, or the tracked branch or tag on it, could not be reached
    VALIDATION = "validation"  # the commit did not pass validation
    TESTS = "tests"  # the repository's own tests failed
    NO_SPACE = "no_space"  # the disk of dagops_home is full
    OTHER = "other"  # anything else: the error code says what


class AlertEvent(StrEnum):
    """What a repository's alerts are sent for (airflow_dagops/alerts; its `alerts` option picks which)."""

    FAILING = "failing"  # the repository's health entered failing
    VALIDATION_FAILED = "validation_failed"  # a pushed commit failed validation (or its required tests)
    RECOVERED = "recovered"  # a failing repository is ok again
    AUTO_ROLLBACK = "auto_rollback"  # its `auto_rollback` rule rolled a release back
