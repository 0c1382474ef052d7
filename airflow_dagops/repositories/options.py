"""Per-repository options beyond where its DAGs come from: what happens when its dag_ids clash with another
repository's (`on_conflict`), who may see and edit its DAGs with the FAB auth manager (`access_control`), and
how a new release rolls out (`promotion`). Every face (dagops.yaml, CLI, REST API) checks them here, so a bad
value gives the same message everywhere and changes nothing.
"""

from __future__ import annotations

from typing import Any

from airflow_dagops.errors import InvalidInput
from airflow_dagops.safety import validate_name

# skip_files: the release goes live without the files whose dag_ids a higher-priority repository owns.
# block: such a release does not go live at all.
ON_CONFLICT = ("skip_files", "block")
DEFAULT_ON_CONFLICT = "skip_files"
# The DAG-level permissions Airflow's FAB auth manager knows (DAG.access_control).
DAG_PERMISSIONS = ("can_read", "can_edit", "can_delete")
MAX_STAGES = 5


def validate_on_conflict(value: Any) -> str:
    if value in (None, ""):
        return DEFAULT_ON_CONFLICT
    if value not in ON_CONFLICT:
        raise InvalidInput(f"on_conflict must be one of {', '.join(ON_CONFLICT)}, got {value!r}")
    return value


def validate_access_control(value: Any) -> dict[str, list[str]] | None:
    """`{role: [permission, ...]}` as DAG.access_control takes it; None or {} means Airflow's defaults."""
    if value in (None, {}):
        return None
    if not isinstance(value, dict):
        raise InvalidInput("access_control must map role names to lists of permissions, e.g. {data-eng: [can_read]}")
    clean: dict[str, list[str]] = {}
    for role, permissions in value.items():
        if not isinstance(role, str) or not role.strip() or len(role) > 64:
            raise InvalidInput(f"access_control: {role!r} is not a role name (1-64 characters)")
        if isinstance(permissions, str):
            permissions = [permissions]
        if not isinstance(permissions, list) or not permissions:
            raise InvalidInput(f"access_control: role {role!r} needs a list of permissions from {DAG_PERMISSIONS}")
        unknown = [p for p in permissions if p not in DAG_PERMISSIONS]
        if unknown:
            raise InvalidInput(
                f"access_control: role {role!r}: unknown permission {unknown[0]!r}; one of {', '.join(DAG_PERMISSIONS)}"
            )
        clean[role.strip()] = sorted(set(permissions))
    return clean


def validate_promotion(value: Any) -> dict | None:
    """`{stages: [staging, prod], soak_runs: 3}`: the last stage is the repository's own namespace; a new
    release goes live in the earlier ones first. soak_runs 0 means promotion by hand only."""
    if value in (None, {}):
        return None
    if not isinstance(value, dict):
        raise InvalidInput("promotion must be a mapping like {stages: [staging, prod], soak_runs: 3}")
    unknown = set(value) - {"stages", "soak_runs"}
    if unknown:
        raise InvalidInput(f"promotion: unknown key {sorted(unknown)[0]!r} (known: soak_runs, stages)")
    stages = value.get("stages")
    if not isinstance(stages, list) or not 2 <= len(stages) <= MAX_STAGES:
        raise InvalidInput(f"promotion: stages must list 2 to {MAX_STAGES} stage names, e.g. [staging, prod]")
    clean_stages = [validate_name(str(stage), what="promotion stage") for stage in stages]
    if len(set(clean_stages)) != len(clean_stages):
        raise InvalidInput("promotion: stage names must be unique")
    soak_runs = value.get("soak_runs", 1)
    if isinstance(soak_runs, bool) or not isinstance(soak_runs, int) or not 0 <= soak_runs <= 1000:
        raise InvalidInput(f"promotion: soak_runs must be a whole number from 0 to 1000, got {soak_runs!r}")
    return {"stages": clean_stages, "soak_runs": soak_runs}
