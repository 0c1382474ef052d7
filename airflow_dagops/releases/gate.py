""""""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from airflow_dagops.deploy import conflicts
from airflow_dagops.deploy.conflicts import claimant, live_pairs
from airflow_dagops.errors import DagOpsError
from airflow_dagops.releases import environments as venvs
from airflow_dagops.repositories import options as repo_options
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Finding, Repository
from airflow_dagops.validate import Report
from airflow_dagops.validate.report import Finding as ValidationFinding

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
# a step reports what it is doing in a few words


ENVIRONMENT_RULES = {"dependency-missing", "dependency-version"}  # about Airflow's own environment


def gate_dependency_conflicts(repository_id: int, namespace: str, report: Report) -> Report:
    """Namespaces that share Airflow's environment must agree on library versions: a new release that pins a
    version another live namespace excludes is blocked, and that namespace's live release is told too.
    Repositories with `isolated_env` have their own environment and take no part."""
    from airflow_dagops.validate.dependencies import conflicts_for, requirements_from_summary

    with session_scope() as session:
        if session.get(Repository, repository_id).isolated_env:
            return report
        others = {
            repo.namespace: (release.id, requirements_from_summary(release.validation_summary))
            for repo, release in live_pairs(session, exclude_id=repository_id)
            if not repo.isolated_env
        }
        mine = requirements_from_summary(report.summary())
        found = conflicts_for(namespace, mine, {ns: reqs for ns, (_id, reqs) in others.items()})
        if report.config is not None:
            found = report.config.apply(found)  # the repository's severity overrides hold here too
        for other, (release_id, requirements) in others.items():
            # The other side: a warning on its live release, naming the release that was held back.
            known = set(session.scalars(select(Finding.message).where(Finding.release_id == release_id)))
            for theirs in conflicts_for(other, requirements, {namespace: mine}):
                message = f"{theirs.message} (a new release of {namespace} was checked against it)"
                if message not in known:
                    known.add(message)
                    session.add(
                        Finding(
                            release_id=release_id,
                            rule=theirs.rule,
                            severity="warning",
                            file=theirs.file,
                            line=theirs.line,
                            message=message,
                            hint=theirs.hint,
                        )
                    )
    return replace(report, findings=[*report.findings, *found]) if found else report


def provide_isolated_env(repository_id: int, namespace: str, report: Report, progress: Progress) -> Report:
    """For a repository with `isolated_env`: build (or reuse) its namespace's virtual environment from the
    declared requirements (airflow_dagops/venvs.py). The build replaces the checks against Airflow's own
    environment, and a failed build blocks the release with uv's message."""
    with session_scope() as session:
        if not session.get(Repository, repository_id).isolated_env:
            return report
    findings = [f for f in report.findings if f.rule not in ENVIRONMENT_RULES]
    if any(f.severity == "error" for f in findings):
        return replace(report, findings=findings)
    from airflow_dagops.validate.dependencies import requirements_from_summary

    requirements = [str(r.requirement) for r in requirements_from_summary(report.summary())]
    progress(f"preparing the isolated environment ({len(requirements)} requirements)")
    try:
        built = venvs.ensure_venv(namespace, requirements)
    except DagOpsError as err:
        failed = ValidationFinding("venv-build-failed", "error", str(err), hint=venvs.BUILD_HINT)
        return replace(report, findings=[*findings, failed])
    how = "reused" if built.reused else f"built in {built.seconds:.1f}s"
    ready = ValidationFinding("venv-ready", "info", f"isolated environment {built.path.name} {how}: {built.python}")
    report = replace(report, findings=[*findings, ready])
    report.stats["venv"] = {"python": str(built.python), "key": built.path.name, "reused": built.reused}
    return report


def gate_dag_id_conflicts(repository_id: int, report: Report) -> Report:
    """The validation report with this repository's dag_id clashes judged by priority and its on_conflict
    (airflow_dagops/conflicts.py); used for new releases and for pull request checks alike."""
    with session_scope() as session:
        above, below = _claims_around(session, repository_id)
        on_conflict = session.get(Repository, repository_id).on_conflict or repo_options.DEFAULT_ON_CONFLICT
    return conflicts.gate(report, above, below, on_conflict)


def _claims_around(session: Session, repository_id: int) -> tuple[dict, dict]:
    """What the other live repositories claim, split by rank: (dag_id -> the owning claim above this
    repository, dag_id -> the claims of the repositories below it that it would shadow)."""
    repo = session.get(Repository, repository_id)
    others = [claimant(r, rel) for r, rel in live_pairs(session, exclude_id=repository_id)]
    mine = (repo.priority, repo.name)
    below: dict[str, list[conflicts.Claim]] = {}
    for other in others:
        if other.rank > mine:
            for dag_id, file in other.dags:
                below.setdefault(dag_id, []).append(
                    conflicts.Claim(other.repository, other.namespace, other.priority, file)
                )
    return conflicts.owners_above(others, mine), below
