"""The catalogue of every rule id the pipeline can report (for docs, SARIF metadata and tests)."""

from __future__ import annotations

import importlib

_MODULES = (
    "files",
    "syntax",
    "security",
    "compat",
    "imports",
    "structure",
    "policy",
    "config",
    "skip_files",
    "dependencies",
)
EXPORT_RULES = {
    "file-not-exported": "A repository entry (a submodule) is not published.",
}


def all_rules() -> dict[str, str]:
    rules = dict(EXPORT_RULES)
    for name in _MODULES:
        rules.update(importlib.import_module(f"airflow_dagops.validate.{name}").RULES)
    return rules
