"""The marketplace's scheduled check (the dagops_marketplace_check DAG): validate each package's shown version
with the pipeline and store its badge, passing or failing, per step passed / failed / skipped.

`validate_version` (a package version exported from its catalog mirror, through the validation pipeline) is
also what `update` runs before it moves an install.
"""

from __future__ import annotations

import importlib

from sqlalchemy import select

from airflow_dagops import settings
from airflow_dagops.errors import DagOpsError, NotFound
from airflow_dagops.marketplace import catalog_reader as catalog_git
from airflow_dagops.marketplace import manifest
from airflow_dagops.marketplace.catalogs import catalog_mirror, catalog_rows
from airflow_dagops.marketplace.listing import badge_dict, current_version
from airflow_dagops.releases.gate import GatePurpose, check_tree
from airflow_dagops.safety import redact
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import MarketplaceBadge, MarketplacePackage, utcnow
from airflow_dagops.store.queries import load_repository
from airflow_dagops.validate import Finding, Report

# The pipeline's steps, as a badge shows them; each rule belongs to the module (step) that reports it.
BADGE_STEPS = ("files", "syntax", "security", "compat", "imports", "structure", "policy", "dependencies")


def check_packages(names: list[str] | None = None) -> list[dict]:
    """Validate the shown version of every package of every catalog (or only `names`) with the pipeline and
    store its badge: passing or failing, and per step passed / failed / skipped."""
    with session_scope() as session:
        work = []
        for catalog in catalog_rows(session):
            per_name: dict[str, list[MarketplacePackage]] = {}
            for row in catalog.packages:
                per_name.setdefault(row.name, []).append(row)
            for package, rows in sorted(per_name.items()):
                if names and package not in names:
                    continue
                rows.sort(key=lambda r: manifest.version_key(r.version), reverse=True)
                row = current_version(rows)
                work.append(
                    (
                        catalog.name,
                        catalog.url,
                        catalog.conn_id,
                        catalog.ref,
                        package,
                        row.version,
                        row.commit_sha,
                        row.folder,
                    )
                )
    if names:
        unknown = set(names) - {item[4] for item in work}
        if unknown:
            raise NotFound(f"no package named {', '.join(sorted(unknown))} in the catalogs")
    return [_check_one(*item) for item in work]


def _check_one(catalog, url, conn_id, ref, package, version, commit, folder) -> dict:
    try:
        report = validate_version(catalog, url, conn_id, ref, commit, folder)
    except DagOpsError as err:
        report = Report(findings=[Finding("package-export-failed", "error", redact(str(err)))])
    checks = badge_checks(report)
    errors = [f.to_dict() for f in report.errors]
    with session_scope() as session:
        badge = session.scalar(
            select(MarketplaceBadge).where(MarketplaceBadge.catalog == catalog, MarketplaceBadge.package == package)
        )
        if badge is None:
            badge = MarketplaceBadge(catalog=catalog, package=package)
            session.add(badge)
        badge.version, badge.commit_sha = version, commit
        badge.status = "passing" if report.passed else "failing"
        badge.checks, badge.findings, badge.warnings = checks, len(errors), len(report.warnings)
        badge.detail, badge.checked_at = errors[:20], utcnow()
        session.flush()
        return {"catalog": catalog, "package": package, **badge_dict(badge)}


def badge_checks(report: Report) -> dict[str, str]:
    """Per pipeline step: failed (an error from that step), skipped ([dagops] validation_skip) or passed."""
    step_of = {}
    # Each step is a module of airflow_dagops.validate with its RULES, loaded on the first badge rather than with
    # the marketplace (the security step brings detect-secrets).
    for step in BADGE_STEPS:
        step_of.update(dict.fromkeys(importlib.import_module(f"airflow_dagops.validate.{step}").RULES, step))
    skipped = {s.strip() for s in settings.get("validation_skip").split(",") if s.strip()}
    failed = {step_of.get(f.rule, "files") for f in report.errors}
    return {step: "failed" if step in failed else "skipped" if step in skipped else "passed" for step in BADGE_STEPS}


def validate_version(
    catalog: str,
    url: str,
    conn_id: str | None,
    ref: str,
    commit: str,
    folder: str,
    *,
    repository: str | None = None,
) -> Report:
    """Put one package version, exported from the catalog mirror into a tmp folder, through the release gate. With
    the `repository` it is installed as (an update), it is judged among the live releases too: dag_id clashes and
    dependency conflicts, read-only, as the sync that installs it would."""
    repository_id, namespace = None, None
    if repository is not None:
        with session_scope() as session:
            repo = load_repository(session, repository)
            repository_id, namespace = repo.id, repo.namespace
    mirror = catalog_mirror(catalog, url, conn_id)
    try:
        mirror.commit_info(commit)
    except DagOpsError:
        mirror.fetch_catalog(ref)  # the mirror is gone or older than the index (another machine refreshed)
    with catalog_git.exported_package(mirror, commit, folder, max_size=settings.get_int("max_repo_size")) as path:
        return check_tree(
            path, repository_id=repository_id, namespace=namespace, purpose=GatePurpose.MARKETPLACE_INSTALL
        )
