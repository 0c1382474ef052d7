"""How a system DAG's task ends: its retries, and the Airflow exception it raises for a dagops error.

A task can fail before any dagops code runs: its worker cannot reach Airflow's execution API (the api-server is
still starting, or restarting) or is killed. Those tries are worth repeating, so every system DAG gets
`DEFAULT_ARGS` (two retries, 30 s apart). What dagops itself raises is sorted by `task_error`:

- skip, with the message as the reason: a feature that is not set up (`ConnectionMissing`). Nothing failed;
  the task log names the connection and the command that creates it;
- retry: what may pass by itself (the state DB or Airflow's API not answering, a busy lock, an unreachable
  remote);
- fail at once (`AirflowFailException`, no retry): a refusal that running again cannot change (a failed
  validation, an unknown version, a blocked promotion, bad conf).

Airflow is imported inside `task_error`: only tasks call it, and the core stays importable without Airflow.
"""

from __future__ import annotations

from datetime import timedelta

from airflow_dagops.errors import (
    AirflowApiUnavailable,
    AirflowUnavailable,
    ConnectionMissing,
    DagOpsError,
    GitTimeout,
    LockBusy,
    RemoteUnreachable,
    StateDBUnavailable,
)
from airflow_dagops.safety import redact

DEFAULT_ARGS = {"owner": "dagops", "retries": 2, "retry_delay": timedelta(seconds=30)}
TRANSIENT = (StateDBUnavailable, AirflowApiUnavailable, AirflowUnavailable, LockBusy, RemoteUnreachable, GitTimeout)


def task_error(error: DagOpsError) -> Exception:
    """The Airflow exception a system DAG's task raises for `error` (its message redacted)."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

    message = redact(str(error))
    if isinstance(error, ConnectionMissing):
        return AirflowSkipException(message)
    if isinstance(error, TRANSIENT):
        return AirflowException(message)
    return AirflowFailException(message)


def refusal(message: str) -> Exception:
    """A task failure that no retry can change (bad conf, a failed validation)."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(redact(message))
