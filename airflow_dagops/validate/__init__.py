"""The validation gate: `validate(release_dir) -> Report`. A release with an error is never published.

Checks (see docs/validation.md): syntax, security (bandit, detect-secrets, import-time side effects),
Airflow 3 compatibility (ruff AIR rules), imports, structure (DAGs imported in a sandbox), policy.

Findings quote what DAG code printed or raised (exception messages, tracebacks, sandbox log tails). Everything a
report says about the release is redacted here, at the one gate every caller passes, before it is stored or shown:
no value of this process's secrets (environment, connections, Airflow's sensitive settings) leaves `validate`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from airflow_dagops.validate.report import Finding, Report

__all__ = ["Finding", "Report", "sandbox_ahead", "validate"]
log = logging.getLogger(__name__)


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
    from airflow_dagops.redaction import install_log_redaction  # lazy: keeps the sandbox light
    from airflow_dagops.validate.pipeline import run_pipeline  # lazy: keeps the sandbox light

    install_log_redaction()  # the sandbox's own log lines quote DAG output too
    options = _options(
        cache_path=(cache_path or default_cache_path()) if use_cache else None,
        dag_owners=dag_owners or {},
        structure=structure,
        only_files=only_files,
    )
    return _redacted(run_pipeline(Path(release_dir), options, extra_findings=extra_findings))


@contextlib.contextmanager
def sandbox_ahead(releases_folder: Path) -> Iterator[None]:
    """Start the structure step's sandbox now for the release about to be exported into `releases_folder` (a
    namespace's folder of releases): its fresh zygote imports Airflow, most of a small change's validation, while
    the caller fetches and exports, and the `validate` of that release takes it over. Stopped on leaving if no
    validation did (nothing changed, every file's result cached). Never raises: without it, `validate` starts one."""
    from airflow_dagops.validate import structure as structure_step  # lazy: keeps the sandbox light

    try:
        options = _options(cache_path=None, dag_owners={}, structure=True, only_files=None)
        started = options.structure and structure_step.start_ahead(
            releases_folder, timeout=options.timeout, memory_limit=options.memory_limit
        )
    except Exception:  # noqa: BLE001 - a head start only; the validation starts its own sandbox or says why not
        log.warning("could not start the validation sandbox ahead of the release", exc_info=True)
        started = False
    try:
        yield
    finally:
        if started:
            structure_step.stop_ahead(releases_folder)


def _options(*, cache_path: Path | None, dag_owners: dict[str, str], structure: bool, only_files: set[str] | None):
    """The pipeline's options: the caller's, and the operator's settings."""
    from airflow_dagops import settings  # lazy: keeps the sandbox light
    from airflow_dagops.validate.pipeline import PipelineOptions  # lazy: keeps the sandbox light

    timeout = settings.get("import_timeout")
    skip = {step.strip() for step in settings.get("validation_skip").split(",") if step.strip()}
    return PipelineOptions(
        cache_path=cache_path,
        operator_rules_file=settings.get("validation_rules_file") or None,
        dag_owners=dag_owners,
        structure=structure and "structure" not in skip,
        skip=skip,
        only_files=only_files,
        timeout=float(timeout) if timeout else None,
        memory_limit=settings.get_int("import_memory_limit"),
    )


def _redacted(report: Report) -> Report:
    """The report without secret values in its findings or in what DAG files said about themselves."""
    from airflow_dagops.redaction import redact_dag_facts, redact_findings  # lazy: keeps the sandbox light

    report.findings = redact_findings(report.findings)
    report.dags = [redact_dag_facts(dag) for dag in report.dags]
    return report


def default_cache_path() -> Path:
    from airflow_dagops import settings  # lazy: keeps the sandbox light

    configured = settings.get("validation_cache")
    return Path(configured).expanduser() if configured else settings.dagops_home() / "cache" / "validation.db"
