"""Updating an installed marketplace package to another released version, structural diff first.

The new version is validated from the catalog mirror before anything moves (checks.validate_version); with
`dry_run` that and the diff from what is live are all. Then the install's repository is pointed at the new tag
and synced; if the sync blocks it, the repository goes back to the tag that is live.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from airflow_dagops.errors import ValidationFailed
from airflow_dagops.marketplace import stats
from airflow_dagops.marketplace.checks import validate_version
from airflow_dagops.marketplace.installs import load_install, sync_install
from airflow_dagops.marketplace.listing import load_package
from airflow_dagops.marketplace.users import user_name
from airflow_dagops.releases import diff as diff_module
from airflow_dagops.repositories.registry import update_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import MarketplaceInstall, MarketplacePackage, Release
from airflow_dagops.store.queries import get_row, load_repository
from airflow_dagops.validate import Report

log = logging.getLogger(__name__)


@dataclass
class _UpdatePlan:
    """What `update` reads from the DB in one transaction, so no session is held during git and validation."""

    package: str
    install_id: int
    repository: str
    from_version: str
    old_ref: str
    target: MarketplacePackage
    source: tuple[str, str, str | None, str]  # catalog name, url, conn_id, ref
    live: dict | None  # {id, commit, status} of the live release
    live_summary: dict | None


def update(name: str, *, version: str | None = None, dry_run: bool = False, actor: str) -> dict:
    """Move an installed package to another released version (default: the newest). The structural diff from
    what is live comes first; with `dry_run` that is all (the new version is validated in a scratch folder,
    nothing changes). A version that fails validation changes nothing live."""
    actor = user_name(actor, what="actor")
    plan = _plan_update(name, version)
    to_version = plan.target.version
    result = {
        "package": plan.package,
        "from_version": plan.from_version,
        "to_version": to_version,
        "repository": plan.repository,
        "dry_run": dry_run,
    }
    if to_version == plan.from_version:
        said = f"{plan.package} is already at {to_version}; nothing to update"
        return {**result, "status": "unchanged", "message": said}
    report = validate_version(*plan.source, plan.target.commit_sha, plan.target.folder, repository=plan.repository)
    structural = _diff(plan.live, plan.live_summary, plan.target, report)
    result.update(
        diff=structural,
        diff_lines=_diff_lines(structural, to_version),
        passed=report.passed,
        findings=[f.to_dict() for f in report.findings],
    )
    if dry_run:
        verdict = "passes validation" if report.passed else f"would be refused: {report.describe_errors()}"
        message = f"dry run: {plan.package} {plan.from_version} → {to_version} {verdict}; nothing was changed"
        return {**result, "status": "dry_run", "message": message}
    if not report.passed:
        raise ValidationFailed(
            f"{plan.package} {to_version} did not pass validation: {report.describe_errors()}. "
            f"Nothing changed; {plan.from_version} stays live.",
            details={"findings": result["findings"]},
        )
    synced = _move_to_version(plan, actor=actor)
    log.info("%s updated %s from %s to %s: %s", actor, name, plan.from_version, to_version, synced["status"])
    return {**result, **synced}


def _plan_update(name: str, version: str | None) -> _UpdatePlan:
    with session_scope() as session:
        active = load_install(session, name)
        package = load_package(session, active.package)
        repo = load_repository(session, active.repository)
        live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
        catalog = package.catalog
        return _UpdatePlan(
            package=active.package,
            install_id=active.id,
            repository=active.repository,
            from_version=active.version,
            old_ref=repo.ref,
            target=package.released(version),
            source=(catalog.name, catalog.url, catalog.conn_id, catalog.ref),
            live={"id": live.id, "commit": live.commit_sha, "status": live.status} if live else None,
            live_summary=dict(live.validation_summary or {}) if live else None,
        )


def _move_to_version(plan: _UpdatePlan, *, actor: str) -> dict:
    """Point the repository at the new tag and sync; if the sync blocks it, point it back at what is live."""
    update_repository(plan.repository, verify=False, ref=plan.target.tag)
    synced = sync_install(plan.install_id, plan.repository, trigger="manual")
    with session_scope() as session:
        record = get_row(session, MarketplaceInstall, plan.install_id, what="install")
        if synced["status"] == "blocked":
            record.status = "published" if plan.live else "blocked"
        else:
            record.version = plan.target.version
            stats.record(
                session,
                "update",
                plan.package,
                plan.target.version,
                actor=actor,
                catalog=plan.source[0],
                repository=plan.repository,
            )
    if synced["status"] == "blocked":
        update_repository(plan.repository, verify=False, ref=plan.old_ref)
    return synced


def _diff_lines(structural: dict, version: str) -> list[str]:
    live = structural["from"]
    source = f"release {live['id']} ({live['commit'][:12]})" if live else "nothing"
    lines = [f"{source} → {version} ({structural['to']['commit'][:12]})"]
    lines += [f"note: {note}" for note in structural["notes"]]
    changes = diff_module.describe(structural)
    if changes:
        return lines + changes
    return lines + (["no structural changes"] if structural["complete"] else [])


def _diff(live: dict | None, live_summary: dict | None, target: MarketplacePackage, report: Report) -> dict:
    """diff.py's structural diff from the live release to the validated (not yet published) version."""
    new_summary = report.summary()
    notes = []
    if live is None:
        notes.append("nothing is live: every DAG of the target is new")
    elif not diff_module.has_structure(live_summary):
        notes.append(f"no structure recorded for release {live['id']} (the structure step was skipped)")
    if not diff_module.has_structure(new_summary):
        notes.append(f"no structure recorded for {target.version} (the structure step was skipped)")
    known = (live is None or diff_module.has_structure(live_summary)) and diff_module.has_structure(new_summary)
    changes = diff_module.diff_summaries(live_summary or {}, new_summary) if known else {}
    return {
        "from": live,
        "to": {"id": None, "commit": target.commit_sha, "status": "validated" if report.passed else "failed"},
        "complete": known,
        "notes": notes,
        "dags_added": changes.get("dags_added", []),
        "dags_removed": changes.get("dags_removed", []),
        "changed": changes.get("changed", {}),
    }
