"""The gate of an A/B experiment (airflow_dagops/experiments): which of the two variants of a DAG runs a DAG run.

An experiment runs two releases of one DAG side by side: A, prod's live release, as `<dag_id>`, and B, a candidate,
as `<dag_id>__ab` (namespace `<namespace>--ab`). Both have the same schedule, so Airflow makes a run of each for
every logical date. The cluster policy puts this gate in front of every task of both (from the namespace meta,
`namespace_meta.py`), as the task's `pre_execute` hook: the task runner of Airflow 3.3 parses the DAG file on the
worker with the policies applied (`BundleDagBag.bag_dag` calls `dag_policy`) and calls `task._pre_execute_hook`
before `execute` (for a mapped task, the `pre_execute` of its partial kwargs, which unmapping passes on).

At task start the gate asks the state DB which variant owns the run's logical date. The first gate to ask (either
variant) records it, one row per experiment and logical date (`dagops_experiment_run`, unique):
- `alternate`: by the count of dates split so far (odd: A, even: B);
- `percent`: B owns a date when a stable hash of (experiment, logical date) falls below B's share.
The variant that does not own the run raises AirflowSkipException, saying why; so each logical date runs once, in
one variant, and both variants' runs are recorded in Airflow and in the table. Runs that are not scheduled
(manual, backfill, asset-triggered) always run in the DAG they were started in, and are recorded as such. Scheduled
runs due before the experiment started (what Airflow creates for B's new DAG to catch up: A ran them already) are
A's and are not split (`before_start`).

Assignments are made one at a time: the first statement of the transaction that records one updates the
experiment's row, which locks it (a row lock in PostgreSQL, the write lock in SQLite), so two gates asking for one
date at once see one answer. If the state DB cannot be reached, A runs and B skips: prod never loses a run to the
experiment's bookkeeping.

The split arithmetic lives here, below the experiments package, because the gate (run by the cluster policy in a
worker) needs it and may import only the store.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update

from airflow_dagops.errors import InvalidInput
from airflow_dagops.statuses import ExperimentStatus

log = logging.getLogger(__name__)

VARIANTS = ("A", "B")
SPLIT_MODES = ("alternate", "percent")
SPLIT = "split"  # ExperimentRun.kind of a scheduled run split between the variants
BEFORE_START = "before_start"  # ExperimentRun.kind of a scheduled run due before the experiment started: A's
GATE_MARK = "dagops_experiment_gate"  # an attribute of the hook: the gate is never wrapped twice


# -- the split -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """How the scheduled runs are shared: `alternate`, or `percent` with B's share (1 to 99)."""

    mode: str
    b_percent: int | None = None

    @classmethod
    def parse(cls, value: Any) -> Split:
        """`"alternate"`, `{"mode": "alternate"}`, `{"mode": "percent", "b": 30}`, `{"percent": 30}` or
        `{"a": 70, "b": 30}` (the two shares must add up to 100). Anything else is refused with InvalidInput."""
        if value == "alternate" or value == {"mode": "alternate"}:
            return cls("alternate")
        if not isinstance(value, dict):
            raise InvalidInput(
                f"split: {value!r} is not a split; use 'alternate', {{'percent': N}} (B's share, 1 to 99) or "
                "{'a': N, 'b': M} adding up to 100"
            )
        if value.get("mode") == "percent" and set(value) == {"mode", "b"}:
            return cls("percent", _percent(value["b"]))
        if set(value) == {"percent"}:
            return cls("percent", _percent(value["percent"]))
        if set(value) == {"a", "b"}:
            a, b = _share(value["a"], "a"), _share(value["b"], "b")
            if a + b != 100:
                raise InvalidInput(f"split: a {a} + b {b} adds up to {a + b}, not 100; nothing was changed")
            return cls("percent", _percent(b))
        raise InvalidInput(
            f"split: {value!r} is not a split; use 'alternate', {{'percent': N}} (B's share, 1 to 99) or "
            "{'a': N, 'b': M} adding up to 100"
        )

    def to_dict(self) -> dict:
        return {"mode": "alternate"} if self.mode == "alternate" else {"mode": "percent", "b": self.b_percent}

    def describe(self) -> str:
        if self.mode == "alternate":
            return "alternate scheduled runs (A, B, A, ...)"
        return f"{100 - (self.b_percent or 0)}% A / {self.b_percent}% B of scheduled runs"

    def owner(self, experiment_id: int, run_key: str, ordinal: int) -> str:
        """The variant owning the `ordinal`-th scheduled run split (1-based) whose logical date is `run_key`."""
        if self.mode == "alternate":
            return "A" if ordinal % 2 == 1 else "B"
        return "B" if bucket(experiment_id, run_key) < (self.b_percent or 0) else "A"


def bucket(experiment_id: int, run_key: str) -> int:
    """0-99, the same on every machine and in every process for one experiment and logical date."""
    digest = hashlib.sha256(f"{experiment_id}:{run_key}".encode()).hexdigest()
    return int(digest[:8], 16) % 100


def _share(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise InvalidInput(f"split: {name} must be a whole number of percent from 0 to 100, got {value!r}")
    return value


def _percent(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 99:
        raise InvalidInput(
            f"split: B's share must be a whole number of percent from 1 to 99, got {value!r} (0 or 100 would give "
            "one variant every run: nothing to compare)"
        )
    return value


def run_key(logical_date: datetime) -> str:
    """How a scheduled run's logical date is stored: ISO 8601 in UTC, the same in both variants."""
    return _aware(logical_date).astimezone(timezone.utc).isoformat()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# -- the cluster policy's part ------------------------------------------------------------------------------------
def experiment_of(meta: dict, dag_id: str) -> dict | None:
    """`{"id": experiment id, "variant": "A" | "B"}` when the namespace meta puts `dag_id` (as its release defines
    it, before any suffix) in an experiment."""
    found = (meta.get("experiments") or {}).get(dag_id)
    if isinstance(found, dict) and isinstance(found.get("id"), int) and found.get("variant") in VARIANTS:
        return found
    return None


def install(dag: Any, experiment: dict) -> None:
    """Put the gate in front of every task of `dag` (the cluster policy, in the dag-processor and on the worker).
    B's DAG starts unpaused, so both variants get every scheduled run; A keeps whatever pause state it has."""
    if experiment["variant"] == "B":
        dag.is_paused_upon_creation = False
    for task in dag.tasks:
        if hasattr(task, "partial_kwargs"):  # a mapped task: unmapping passes its partial kwargs to the operator
            before = task.partial_kwargs.get("pre_execute")
            if not getattr(before, GATE_MARK, False):
                task.partial_kwargs["pre_execute"] = _gate(experiment["id"], experiment["variant"], before)
        elif not getattr(task._pre_execute_hook, GATE_MARK, False):
            task._pre_execute_hook = _gate(experiment["id"], experiment["variant"], task._pre_execute_hook)


def _gate(experiment_id: int, variant: str, before: Any):
    """The hook: a plain function (Airflow serializes a hook as its source, so every parse gives the same DAG
    version), then the task's own `pre_execute` hook, if it had one."""

    def dagops_experiment_gate(context):
        decide(context, experiment_id, variant)
        if before is not None:
            before(context)

    setattr(dagops_experiment_gate, GATE_MARK, True)
    return dagops_experiment_gate


# -- at task start -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Assignment:
    owner: str  # the variant that runs it
    kind: str  # split, or the run type of a run that is not split
    running: bool = True  # False: the experiment ended (or is gone): A runs, B skips


def decide(context: Any, experiment_id: int, variant: str) -> None:
    """Let the task run, or raise AirflowSkipException when the other variant owns the run."""
    from airflow.sdk.exceptions import AirflowSkipException

    dag_run = context["dag_run"]
    run_type = str(getattr(dag_run.run_type, "value", dag_run.run_type))
    logical_date = context.get("logical_date") or getattr(dag_run, "logical_date", None)
    due = getattr(dag_run, "run_after", None) or logical_date
    run_id = context["run_id"]
    try:
        found = assign(experiment_id, variant, run_type=run_type, logical_date=logical_date, due=due, run_id=run_id)
    except Exception as error:  # the state DB is down: prod keeps running, the candidate waits
        log.warning("A/B experiment %s: cannot reach the dagops state DB (%s)", experiment_id, type(error).__name__)
        found = Assignment(owner="A", kind="unrecorded", running=False)
    if found.owner == variant:
        log.info("A/B experiment %s: variant %s runs %s (%s)", experiment_id, variant, run_id, found.kind)
        return
    if not found.running:
        raise AirflowSkipException(
            f"A/B experiment {experiment_id} is not running (ended, or its state could not be read): only variant "
            "A (the prod DAG) runs; this is variant B"
        )
    raise AirflowSkipException(
        f"A/B experiment {experiment_id}: the run of {found.kind} logical date {logical_date} belongs to variant "
        f"{found.owner}; this is variant {variant}, so it skips (see `dagops ab status`)"
    )


def assign(
    experiment_id: int,
    variant: str,
    *,
    run_type: str,
    logical_date: datetime | None,
    run_id: str,
    due: datetime | None = None,
) -> Assignment:
    """Which variant owns the run: recorded by the first gate to ask, read by every later one. `due` is when the
    run was due (Airflow's `run_after`; default: the logical date)."""
    from airflow_dagops.store.db import session_scope  # lazy: the dag-processor loads the policy, never the DB

    split = run_type == "scheduled" and logical_date is not None
    key = run_key(logical_date) if split and logical_date is not None else f"{variant}:{run_id}"
    with session_scope() as session:
        found = _recorded(session, experiment_id, key, variant, run_id)
    if found is not None:
        return found
    with session_scope() as session:
        kind = SPLIT if split else run_type
        return _record(session, experiment_id, key, variant, run_id, kind, logical_date, due or logical_date)


def _recorded(session, experiment_id: int, key: str, variant: str, run_id: str) -> Assignment | None:
    """The assignment when it exists (a read: in SQLite it takes no lock), noting this variant's run id on it."""
    from airflow_dagops.store.models import Experiment, ExperimentRun  # lazy: as assign

    run = ExperimentRun
    columns = (run.id, run.owner, run.kind, run.a_run_id, run.b_run_id)
    row = session.execute(
        select(*columns).where(ExperimentRun.experiment_id == experiment_id, ExperimentRun.run_key == key)
    ).first()
    if row is None:
        return None
    status = session.scalar(select(Experiment.status).where(Experiment.id == experiment_id))
    mine = ExperimentRun.a_run_id if variant == "A" else ExperimentRun.b_run_id
    if (row.a_run_id if variant == "A" else row.b_run_id) is None:
        session.execute(update(ExperimentRun).where(ExperimentRun.id == row.id, mine.is_(None)).values({mine: run_id}))
    return Assignment(owner=row.owner, kind=row.kind, running=status == ExperimentStatus.RUNNING)


def _record(
    session,
    experiment_id: int,
    key: str,
    variant: str,
    run_id: str,
    kind: str,
    logical_date: datetime | None,
    due: datetime | None,
) -> Assignment:
    from airflow_dagops.store.models import Experiment, ExperimentRun, utcnow  # lazy: as assign

    # First a write to the experiment's row: it locks the row (SQLite: the DB) until this transaction ends, so the
    # check below and the insert after it are one step for every gate of this experiment.
    touched = session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.status == ExperimentStatus.RUNNING)
        .values(updated_at=utcnow())
    )
    if not touched.rowcount:  # ended, or gone with its repository
        return Assignment(owner="A", kind=kind, running=False)
    found = _recorded(session, experiment_id, key, variant, run_id)
    if found is not None:  # the other variant's gate recorded it while this one waited for the lock
        return found
    experiment = session.get(Experiment, experiment_id)
    if kind == SPLIT and due is not None and _aware(due) < _aware(experiment.started_at):
        kind, owner = BEFORE_START, "A"
    elif kind == SPLIT:
        experiment.assigned += 1
        owner = Split.parse(experiment.split).owner(experiment_id, key, experiment.assigned)
    else:
        owner = variant  # not split: it runs where it was started
    runs = {"a_run_id": run_id} if variant == "A" else {"b_run_id": run_id}
    session.add(
        ExperimentRun(
            experiment_id=experiment_id, run_key=key, kind=kind, logical_date=logical_date, owner=owner, **runs
        )
    )
    session.flush()
    return Assignment(owner=owner, kind=kind)


__all__ = ["SPLIT_MODES", "VARIANTS", "Assignment", "Split", "assign", "decide", "experiment_of", "install", "run_key"]
