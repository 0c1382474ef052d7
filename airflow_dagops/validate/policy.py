"""Policy: the house rules an operator sets for every DAG (owner, tags, retries, schedule, start_date, dag_id
pattern, size, import time). They read what the structure step learned about each DAG, plus one AST rule
for start dates computed at parse time."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

from airflow_dagops.validate.config import PolicyConfig
from airflow_dagops.validate.report import Finding

RULES = {
    "policy-owner": "Every DAG names an owner other than Airflow's default 'airflow'.",
    "policy-tags": "Every DAG has at least one tag.",
    "policy-retries": "Every task retries at least the configured number of times.",
    "policy-schedule": "Every DAG passes `schedule=` explicitly (None for manual-only DAGs).",
    "policy-dynamic-start-date": "start_date is not computed at parse time (datetime.now(), days_ago(), ...).",
    "policy-dag-id-pattern": "dag_ids match the operator's pattern.",
    "policy-max-tasks": "A DAG has at most the configured number of tasks.",
    "import-time-budget": "A DAG file imports within the time budget (warning above 1 s, error above 10 s).",
}

_DYNAMIC_CALLS = {"now", "utcnow", "today", "days_ago"}


def check_dags(dags: Iterable, policy: PolicyConfig) -> list[Finding]:
    """Rules over the DAGs the structure step loaded (objects with dag_id, file, line, owners, tags, ...)."""
    findings = []
    pattern = re.compile(policy.dag_id_pattern) if policy.dag_id_pattern else None
    for dag in dags:
        where = {"file": dag.file, "line": dag.line}
        if policy.require_owner and not [o for o in dag.owners if o and o != "airflow"]:
            findings.append(
                Finding(
                    "policy-owner",
                    "warning",
                    f"DAG {dag.dag_id!r} has no owner",
                    hint='Set default_args={"owner": "your-team"}.',
                    **where,
                )
            )
        if policy.require_tags and not dag.tags:
            findings.append(
                Finding(
                    "policy-tags",
                    "warning",
                    f"DAG {dag.dag_id!r} has no tags",
                    hint='Add tags=["team", "domain"] to the DAG.',
                    **where,
                )
            )
        if policy.min_retries and (dag.retries is None or dag.retries < policy.min_retries):
            findings.append(
                Finding(
                    "policy-retries",
                    "error",
                    f"DAG {dag.dag_id!r} has tasks with {dag.retries or 0} retries; "
                    f"at least {policy.min_retries} required",
                    hint=f'Set default_args={{"retries": {policy.min_retries}}}.',
                    **where,
                )
            )
        if policy.require_explicit_schedule and not dag.schedule_explicit:
            findings.append(
                Finding(
                    "policy-schedule",
                    "warning",
                    f"DAG {dag.dag_id!r} does not pass schedule= explicitly",
                    hint="Pass schedule=... (a cron, an asset, or None for manual runs).",
                    **where,
                )
            )
        if pattern and not pattern.fullmatch(dag.dag_id):
            findings.append(
                Finding(
                    "policy-dag-id-pattern",
                    "error",
                    f"dag_id {dag.dag_id!r} does not match {policy.dag_id_pattern!r}",
                    hint="Rename the DAG to follow the naming convention.",
                    **where,
                )
            )
        if policy.max_tasks and dag.task_count > policy.max_tasks:
            findings.append(
                Finding(
                    "policy-max-tasks",
                    "error",
                    f"DAG {dag.dag_id!r} has {dag.task_count} tasks (limit {policy.max_tasks})",
                    hint="Split the DAG, or use dynamic task mapping.",
                    **where,
                )
            )
    return findings


def check_import_times(import_seconds: dict[str, float], policy: PolicyConfig) -> list[Finding]:
    findings = []
    for file, seconds in sorted(import_seconds.items()):
        if seconds > policy.import_time_error:
            severity, budget = "error", policy.import_time_error
        elif seconds > policy.import_time_warning:
            severity, budget = "warning", policy.import_time_warning
        else:
            continue
        findings.append(
            Finding(
                "import-time-budget",
                severity,
                # The budget, not the measured time: a report must read the same on every run of the same tree
                # (the time itself is in the report's stats).
                f"importing this file took longer than the {budget:g} s budget",
                file=file,
                hint="Move heavy imports and work into tasks; the dag-processor imports every DAG file every 30 s.",
            )
        )
    return findings


def check_dynamic_start_date(root: Path, files: list[str]) -> list[Finding]:
    """start_date=datetime.now() makes every parse see a new start date: runs never get scheduled as meant."""
    findings = []
    for file in files:
        if not file.endswith(".py"):
            continue
        try:
            tree = ast.parse((root / file).read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue  # the syntax check reports it
        for node in _start_date_values(tree):
            if _calls_dynamic(node):
                findings.append(
                    Finding(
                        "policy-dynamic-start-date",
                        "error",
                        "start_date is computed when the file is parsed",
                        file=file,
                        line=node.lineno,
                        hint='Use a fixed date, e.g. pendulum.datetime(2024, 1, 1, tz="UTC").',
                    )
                )
    return findings


def _start_date_values(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "start_date":
            yield node.value
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "start_date":
                    yield value


def _calls_dynamic(node: ast.AST) -> bool:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call):
            func = inner.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _DYNAMIC_CALLS:
                return True
    return False
