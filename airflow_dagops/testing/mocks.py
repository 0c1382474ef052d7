"""Replace what a task does, not how Airflow runs it: a mock swaps the `execute` of one task or one operator class.

The task still goes through Airflow's whole task runner (templating, XCom push of the return value, state
changes), so a DAG run with mocks tests the DAG's wiring, not a copy of it. Every mock is undone by the
fixture that ran the test (`get_dag`, `dag`, `run_dag`), or when its `with` block ends.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from airflow_dagops.errors import InvalidInput

_MISSING = object()
_active: list[Mock] = []  # newest last: undone in reverse order, so nested mocks restore the original


class Mock:
    """One replaced `execute`; undo() puts the original back. Also a context manager."""

    def __init__(self, target: Any, *, label: str):
        self.target = target
        self.label = label
        # An instance attribute `execute` shadows the class's method; a class may have none of its own.
        self._previous = target.__dict__.get("execute", _MISSING)
        self.calls: list[dict] = []  # the context of each call, for assertions

    def install(self, execute: Callable) -> Mock:
        self.target.execute = execute
        _active.append(self)
        return self

    def undo(self) -> None:
        if self not in _active:
            return
        _active.remove(self)
        if self._previous is _MISSING:
            delattr(self.target, "execute")
        else:
            self.target.execute = self._previous

    def __enter__(self) -> Mock:
        return self

    def __exit__(self, *exc_info) -> None:
        self.undo()

    def __repr__(self) -> str:
        return f"<dagops mock of {self.label}: {len(self.calls)} call(s)>"


def mock_task(dag, task_id: str, result: Any = None) -> Mock:
    """Make task `task_id` of `dag` return `result` (or call it, if it is callable) instead of running.

    `result` may be a value (pushed as the task's XCom return value), a callable taking the task context
    (or nothing) whose return value is used, or an exception instance/class, which the task raises.
    """
    check_task(dag, task_id)
    mock = Mock(dag.task_dict[task_id], label=f"{dag.dag_id}.{task_id}")
    return mock.install(_replacement(result, mock))


def check_task(dag, task_id: str) -> None:
    if task_id not in dag.task_dict:
        known = ", ".join(sorted(dag.task_dict)) or "none"
        raise InvalidInput(f"DAG {dag.dag_id!r} has no task {task_id!r} to mock; its tasks: {known}")


def mock_operator(operator_class: type, result: Any = None) -> Mock:
    """Make every task of `operator_class` (and of subclasses that do not override `execute`) return `result`."""
    if not isinstance(operator_class, type) or not callable(getattr(operator_class, "execute", None)):
        raise InvalidInput(f"mock_operator needs an operator class with an execute method, not {operator_class!r}")
    mock = Mock(operator_class, label=operator_class.__name__)
    replacement = _replacement(result, mock)

    def execute(self, context=None, **_kwargs):  # a method: bound to each task of the class
        return replacement(context)

    return mock.install(execute)


def undo_all() -> None:
    """Undo every mock still active (a test's fixtures call this when the test ends)."""
    for mock in reversed(list(_active)):
        mock.undo()


def _replacement(result: Any, mock: Mock) -> Callable:
    def execute(context=None, **_kwargs):
        mock.calls.append(context)
        if isinstance(result, BaseException) or (isinstance(result, type) and issubclass(result, BaseException)):
            raise result
        if callable(result):
            return result(context) if _takes_an_argument(result) else result()
        return result

    return execute


def _takes_an_argument(function: Callable) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume they take the context
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters)
