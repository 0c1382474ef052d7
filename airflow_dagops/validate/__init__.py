"""The validation gate: `validate(release_dir) -> Report`. A release with an error is never published.

Checks (see docs/validation.md): syntax, security (bandit, detect-secrets, import-time side effects),
Airflow 3 compatibility (ruff AIR rules), imports, structure (DAGs imported in a sandbox), policy.
"""

from __future__ import annotations

from pathlib import Path

from airflow_dagops.validate.report import Finding, Report

__all__ = ["Finding", "Report", "validate"]


def validate(
    release_dir,
    *,
    extra_findings: list[Finding] | None = None,
    dag_owners: dict[str, str] | None = None,
    use_cache: bool = True,
    cache_path: Path | None = None,
    only_files: set[str] | None = None,
    structure: bool = True,
) -> Report:
    """Run every check over a folder (a release, or any DAG folder) and collect the findings."""
    from airflow_dagops import settings
    from airflow_dagops.validate.pipeline import PipelineOptions, run_pipeline

    timeout = settings.get("import_timeout")
    skip = {step.strip() for step in settings.get("validation_skip").split(",") if step.strip()}
    options = PipelineOptions(
        cache_path=(cache_path or default_cache_path()) if use_cache else None,
        operator_rules_file=settings.get("validation_rules_file") or None,
        dag_owners=dag_owners or {},
        structure=structure and "structure" not in skip,
        skip=skip,
        only_files=only_files,
        timeout=float(timeout) if timeout else None,
        memory_limit=settings.get_int("import_memory_limit"),
    )
    return run_pipeline(Path(release_dir), options, extra_findings=extra_findings)


def default_cache_path() -> Path:
    from airflow_dagops import settings

    configured = settings.get("validation_cache")
    return Path(configured).expanduser() if configured else settings.dagops_home() / "cache" / "validation.db"
