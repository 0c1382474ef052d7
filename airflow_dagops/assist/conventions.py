"""A repository's conventions, for an assistant to write DAGs that pass its gate the first time: the rules its
`.dagops.yaml` and the operator's rules file set (validate/config.py reads both, as the pipeline does), in words
an author acts on, and what its live DAGs actually do (owners, tags, retries, schedules, dag_id prefixes), from
the DAG list validation recorded for its live release.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from airflow_dagops import settings
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release
from airflow_dagops.store.queries import load_repository
from airflow_dagops.tempdirs import make_temp_dir
from airflow_dagops.validate.config import REPO_CONFIG_NAME, load_config

COMMON = 5  # the most common owners, tags, schedules shown


def conventions(name: str) -> dict:
    with session_scope() as session:
        repo = load_repository(session, name)
        live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
        root = Path(live.path) if live and os.path.isdir(live.path) else None
        dags = list((live.validation_summary or {}).get("dags") or []) if live else []
        namespace, subdir = repo.namespace, repo.subdir
    config, problems = _config(root)
    policy = asdict(config.policy)
    return {
        "repository": name,
        "namespace": namespace,
        "subdir": subdir,
        "policy_file": REPO_CONFIG_NAME if root is not None and (root / REPO_CONFIG_NAME).is_file() else None,
        "policy": policy,
        "rules": _rules_in_words(config.policy),
        "disabled_rules": sorted(config.disabled),
        "severity_overrides": dict(sorted(config.severity.items())),
        "on_invalid": config.on_invalid,
        "tests": config.tests,
        "policy_problems": [p.to_dict() for p in problems],
        "observed": _observed(dags),
    }


def _config(root: Path | None):
    """The effective config; a repository with nothing live is judged by the operator's rules alone."""
    operator_file = settings.get("validation_rules_file") or None
    if root is not None and not (root / REPO_CONFIG_NAME).is_symlink():
        return load_config(root, operator_file=operator_file)
    empty = make_temp_dir("conventions-")
    try:
        return load_config(empty, operator_file=operator_file)
    finally:
        empty.rmdir()


def _rules_in_words(policy) -> list[str]:
    rules = []
    if policy.require_owner:
        rules.append('every DAG names an owner other than "airflow" (default_args={"owner": "your-team"})')
    if policy.require_tags:
        rules.append("every DAG has tags (tags=[...])")
    if policy.min_retries:
        rules.append(f"tasks retry at least {policy.min_retries} times (default_args={{'retries': ...}})")
    if policy.require_explicit_schedule:
        rules.append("every DAG passes schedule= explicitly (None for manual runs)")
    if policy.forbid_dynamic_start_date:
        rules.append("start_date is a fixed date, never computed from now()")
    if policy.dag_id_pattern:
        rules.append(f"dag_ids match the regular expression {policy.dag_id_pattern!r}")
    if policy.max_tasks:
        rules.append(f"a DAG has at most {policy.max_tasks} tasks")
    rules.append(
        f"a DAG file imports in under {policy.import_time_warning:g} s (more is a warning, "
        f"{policy.import_time_error:g} s an error)"
    )
    return rules


def _observed(dags: list[dict]) -> dict:
    owners = Counter(o for d in dags for o in d.get("owners") or [])
    tags = Counter(t for d in dags for t in d.get("tags") or [])
    schedules = Counter(str(d.get("schedule")) for d in dags if d.get("schedule") is not None)
    retries = Counter(d.get("retries") for d in dags if d.get("retries") is not None)
    prefixes = Counter(d["dag_id"].split("_")[0] for d in dags if "_" in d.get("dag_id", ""))
    return {
        "dag_count": len(dags),
        "owners": [o for o, _ in owners.most_common(COMMON)],
        "tags": [t for t, _ in tags.most_common(COMMON)],
        "schedules": [s for s, _ in schedules.most_common(COMMON)],
        "retries": [r for r, _ in retries.most_common(COMMON)],
        "dag_id_prefixes": [p for p, n in prefixes.most_common(COMMON) if n > 1],
        "examples": sorted(d["dag_id"] for d in dags)[:10],
    }
