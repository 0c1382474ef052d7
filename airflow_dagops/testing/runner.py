"""`run_dag`: one DAG run in this process with Airflow's own `dag.test()`, and what it produced."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from airflow_dagops.errors import InvalidInput
from airflow_dagops.testing import mocks

# For a mapped task (several instances), the state shown is the first of these any instance has.
_WORST_FIRST = ("failed", "upstream_failed", "up_for_retry", "skipped", "removed", "success")


@dataclass(frozen=True)
class TaskInstanceResult:
    task_id: str
    map_index: int
    state: str | None
    return_value: Any = None
    duration: float | None = None  # seconds, as Airflow recorded them for the instance


@dataclass
class DagRunResult:
    """A finished test run: `state`, per-task `task_states`, and `xcoms` (each task's return value)."""

    dag_id: str
    run_id: str
    state: str
    task_instances: list[TaskInstanceResult] = field(default_factory=list)
    mocks: dict[str, mocks.Mock] = field(default_factory=dict)
    execute_seconds: dict[str, float] = field(default_factory=dict)  # of the tasks asked for with `timed=`

    @property
    def succeeded(self) -> bool:
        return self.state == "success"

    @property
    def task_states(self) -> dict[str, str | None]:
        """task_id -> state; a mapped task shows its worst instance's state."""
        states: dict[str, list[str | None]] = {}
        for ti in self.task_instances:
            states.setdefault(ti.task_id, []).append(ti.state)
        return {task_id: _worst(values) for task_id, values in states.items()}

    @property
    def failed_tasks(self) -> list[str]:
        return sorted(task_id for task_id, state in self.task_states.items() if state == "failed")

    @property
    def task_durations(self) -> dict[str, float]:
        """task_id -> seconds Airflow recorded; a mapped task's instances added up."""
        totals: dict[str, float] = {}
        for ti in self.task_instances:
            totals[ti.task_id] = totals.get(ti.task_id, 0.0) + (ti.duration or 0.0)
        return totals

    @property
    def xcoms(self) -> dict[str, Any]:
        """task_id -> return value; a mapped task gives the list of its instances' values, by map index."""
        values: dict[str, Any] = {}
        for ti in sorted(self.task_instances, key=lambda ti: (ti.task_id, ti.map_index)):
            if ti.map_index < 0:
                values[ti.task_id] = ti.return_value
            else:
                values.setdefault(ti.task_id, []).append(ti.return_value)
        return values

    def assert_success(self) -> None:
        """Fail the test with every task's state when the run did not succeed."""
        if not self.succeeded:
            states = ", ".join(f"{task}={state}" for task, state in sorted(self.task_states.items()))
            raise AssertionError(f"DAG run {self.dag_id} ended {self.state}: {states}")


def _text(state) -> str | None:
    """Airflow's state enums as their plain names ("success"), so results compare with strings."""
    return None if state is None else str(getattr(state, "value", state))


def _run_state(state) -> str:
    """A DAG run's state as its plain name: a run always has one (it is created queued)."""
    return str(getattr(state, "value", state))


def _worst(states: list[str | None]) -> str | None:
    for state in _WORST_FIRST:
        if state in states:
            return state
    return states[0]


def run_dag(
    dag,
    *,
    conf: dict | None = None,
    mocks_by_target: dict | None = None,
    logical_date=None,
    timed: Iterable[str] = (),
) -> DagRunResult:
    """Run `dag` once with `dag.test()` (the metadata DB must be set up), mocks applied for this run only.
    `timed`: task ids whose `execute` (or its mock) is timed, for `DagRunResult.execute_seconds`."""
    if conf is not None and not isinstance(conf, dict):
        raise InvalidInput(f"conf must be a mapping (a DAG run's params), not {type(conf).__name__}")
    for task_id in timed:
        mocks.check_task(dag, task_id)
    applied = _apply_mocks(dag, mocks_by_target or {})
    seconds: dict[str, float] = {}
    try:
        kwargs = {"run_conf": conf}
        if logical_date is not None:
            kwargs["logical_date"] = logical_date
        with _params_kept(dag), _timed(dag, timed, seconds):
            dag_run = dag.test(**kwargs)
    finally:
        for mock in applied.values():
            mock.undo()
    result = _result(dag, dag_run, applied)
    result.execute_seconds = seconds
    return result


@contextmanager
def _timed(dag, task_ids: Iterable[str], seconds: dict[str, float]):
    """Time these tasks' `execute` (a mock's too) between Airflow's pre- and post-execute hooks: the task's own
    work, without the task runner's start-up, whose first call in a session builds Airflow's in-process API.
    Hooks, not a wrapped `execute`: the task runner executes a rendered copy of the task, which keeps the hooks.
    A mapped task has no hooks of its own to set here (its instances are made during the run): not timed."""
    saved = []
    for task_id in task_ids:
        task = dag.task_dict[task_id]
        if not hasattr(task, "_post_execute_hook"):
            continue
        before, after = task._pre_execute_hook, task._post_execute_hook
        starts: list[float] = []

        def pre(context, _before=before, _starts=starts):
            if _before is not None:
                _before(context)
            _starts.append(time.perf_counter())

        def post(context, result, _after=after, _starts=starts, _task_id=task_id):
            seconds[_task_id] = seconds.get(_task_id, 0.0) + time.perf_counter() - _starts.pop()
            if _after is not None:
                _after(context, result)

        saved.append((task, before, after))
        task._pre_execute_hook, task._post_execute_hook = pre, post
    try:
        yield
    finally:
        for task, before, after in saved:
            task._pre_execute_hook, task._post_execute_hook = before, after


@contextmanager
def _params_kept(dag):
    """Airflow resolves a run's conf into the DAG's own Param objects; in one process that would leak one
    run's conf into the next run of the same DAG object, so their values are put back after each run."""
    params = [*dag.params.values(), *(p for task in dag.tasks for p in (task.params or {}).values())]
    saved = [(param, copy.deepcopy(param.value)) for param in params if hasattr(param, "value")]
    try:
        yield
    finally:
        for param, value in saved:
            param.value = value


def _apply_mocks(dag, mocks_by_target: dict) -> dict[str, mocks.Mock]:
    """Keys are task ids, or operator classes (every task of the DAG that is one); checked before any applies."""
    targets: dict[str, Any] = {}
    for key, result in mocks_by_target.items():
        if isinstance(key, str):
            mocks.check_task(dag, key)
            targets[key] = result
        elif isinstance(key, type):
            matching = [task_id for task_id, task in dag.task_dict.items() if isinstance(task, key)]
            if not matching:
                raise InvalidInput(f"DAG {dag.dag_id!r} has no task of type {key.__name__} to mock")
            targets.update({task_id: result for task_id in matching if task_id not in mocks_by_target})
        else:
            raise InvalidInput(f"mocks keys are task ids or operator classes, not {key!r}")
    return {task_id: mocks.mock_task(dag, task_id, result) for task_id, result in targets.items()}


def _result(dag, dag_run, applied: dict[str, mocks.Mock]) -> DagRunResult:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import Select, select

    with create_session() as session:
        instances = dag_run.get_task_instances(session=session)
        xcoms = XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag.dag_id, key="return_value")
        # Airflow annotates it as SQLAlchemy 2.0's Select[tuple[XComModel]]: 2.1 reads that as one tuple column.
        rows = session.scalars(cast("Select[XComModel]", xcoms)).all()
        returned = {(row.task_id, row.map_index): XComModel.deserialize_value(row) for row in rows}
        run_state = session.scalar(select(type(dag_run).state).where(type(dag_run).id == dag_run.id))
    return DagRunResult(
        dag_id=dag.dag_id,
        run_id=dag_run.run_id,
        state=_run_state(run_state or dag_run.state),
        task_instances=[
            TaskInstanceResult(
                task_id=ti.task_id,
                map_index=ti.map_index,
                state=_text(ti.state),
                return_value=returned.get((ti.task_id, ti.map_index)),
                duration=ti.duration,
            )
            for ti in instances
        ],
        mocks=applied,
    )
