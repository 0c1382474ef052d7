"""What an experiment is given, checked before anything changes: its rule, the dag_id, and the two DAGs' schedules.

The rule: `min_runs` finished scheduled runs per variant before a verdict counts (default 10), `max_p` the p-value
at or below which a difference counts (default 0.05: 95% confidence), `auto_promote` whether the scheduled check
acts on a verdict by itself (default false: a person promotes with `dagops ab promote`).
"""

from __future__ import annotations

import re
from typing import Any

from airflow_dagops.errors import Conflict, InvalidInput
from airflow_dagops.store.models import Release

DEFAULT_RULE = {"min_runs": 10, "max_p": 0.05, "auto_promote": False}
MAX_MIN_RUNS = 10_000
DAG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,246}$")  # Airflow's dag_id characters; 250 with the `__ab` suffix
# Schedules that put the two variants' runs on the same logical dates: a cron expression or a cron preset. A timedelta
# does not (Airflow 3 counts it from when each DAG was unpaused, unless it catches up), nor do assets or @once.
PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually", "@midnight")
CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?#-]+$")


def parse_rule(value: Any) -> dict:
    """The rule with its defaults filled in; InvalidInput naming the first bad key."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise InvalidInput(f"rule: expected an object with min_runs, max_p, auto_promote; got {value!r}")
    unknown = sorted(set(value) - set(DEFAULT_RULE))
    if unknown:
        raise InvalidInput(f"rule: unknown key {unknown[0]!r}; the keys are min_runs, max_p and auto_promote")
    rule = {**DEFAULT_RULE, **value}
    min_runs, max_p, auto = rule["min_runs"], rule["max_p"], rule["auto_promote"]
    if isinstance(min_runs, bool) or not isinstance(min_runs, int) or not 1 <= min_runs <= MAX_MIN_RUNS:
        raise InvalidInput(f"rule: min_runs must be a whole number from 1 to {MAX_MIN_RUNS}, got {min_runs!r}")
    if isinstance(max_p, bool) or not isinstance(max_p, (int, float)) or not 0 < max_p <= 0.5:
        raise InvalidInput(f"rule: max_p must be a number above 0 and at most 0.5 (e.g. 0.05), got {max_p!r}")
    if not isinstance(auto, bool):
        raise InvalidInput(f"rule: auto_promote must be true or false, got {auto!r}")
    return {"min_runs": min_runs, "max_p": float(max_p), "auto_promote": auto}


def check_dag_id(dag_id: Any) -> str:
    if not isinstance(dag_id, str) or not DAG_ID.match(dag_id):
        raise InvalidInput(
            f"dag_id {dag_id!r}: letters, digits, '_', '.' and '-' only, at most 246 characters (the candidate's "
            "copy adds `__ab`)"
        )
    return dag_id


def dag_in(release: Release, dag_id: str, which: str) -> dict:
    """What validation recorded of `dag_id` in `release` (A: prod's live one, B: the candidate)."""
    summary = release.validation_summary or {}
    dags = summary.get("dags")
    if dags is None or summary.get("structure") is False:
        raise Conflict(
            f"release {release.id} ({which}) has no DAG list: the structure step of validation was skipped, so "
            f"dagops cannot check that it defines {dag_id!r} and with which schedule"
        )
    found = next((dag for dag in dags if dag.get("dag_id") == dag_id), None)
    if found is None:
        known = ", ".join(sorted(dag["dag_id"] for dag in dags)[:10]) or "none"
        raise Conflict(f"release {release.id} ({which}) defines no DAG {dag_id!r} (it defines: {known})")
    if found.get("file") in (release.hidden_files or {}):
        raise Conflict(
            f"{dag_id!r} of release {release.id} ({which}) is left out of Airflow: another repository with a higher "
            "priority owns that dag_id"
        )
    return found


def check_schedules(dag_id: str, in_a: dict, in_b: dict) -> str:
    """The schedule both variants share; Conflict when the split could not pair their runs by logical date."""
    schedule, other = in_a.get("schedule"), in_b.get("schedule")
    if not on_a_grid(schedule):
        raise Conflict(
            f"{dag_id!r} has schedule {schedule!r} in prod: an experiment pairs the two variants' scheduled runs by "
            "logical date, so the DAG needs a time-based schedule on a fixed grid: a cron expression or a preset such "
            "as @daily (a timedelta counts from when each DAG was unpaused; assets and @once have no grid)"
        )
    if other != schedule:
        raise Conflict(
            f"{dag_id!r} has schedule {schedule!r} in prod (A) but {other!r} in the candidate (B): the split pairs "
            "the two variants' runs by logical date, so both need the same schedule"
        )
    return str(schedule)


def on_a_grid(schedule: object) -> bool:
    """A cron expression (5 or 6 fields) or a cron preset, as validation records the DAG's schedule."""
    if not isinstance(schedule, str):
        return False
    text = schedule.strip()
    fields = text.split()
    return text in PRESETS or (len(fields) in (5, 6) and all(CRON_FIELD.match(field) for field in fields))
