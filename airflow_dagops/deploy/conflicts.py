"""dag_id clashes between repositories, resolved by priority.

Two repositories may define the same dag_id. The one with the higher priority (the lower number; on equal
numbers, the repository whose name sorts first) keeps it. Every file of the other repository that defines
that dag_id is left out of Airflow through a managed section of its release's `.airflowignore`; with
`on_conflict: block`, a new release that would lose a file does not go live at all (the validation gate in
services turns those findings into errors).

The resolution is recomputed from what is live whenever a release goes live, a repository leaves or its
priority changes, so a file comes back by itself once the repository that shadowed it drops the dag_id.
Files are hidden before the winning release's link swaps in and shown again only after, so Airflow never
sees two files for one dag_id (at worst, for a moment, none).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from airflow_dagops import paths, settings
from airflow_dagops.deploy import live_set
from airflow_dagops.deploy.ignore_files import read_section, write_section
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.release_manifest import forget_in_manifest
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release, Repository
from airflow_dagops.validate.report import Finding

SECTION_START = "# >>> dagops: files left out because another repository owns their dag_ids (managed)"
SECTION_END = "# <<< dagops"


@dataclass(frozen=True)
class Claim:
    """One repository's claim on a dag_id, through one of its files."""

    repository: str
    namespace: str
    priority: int
    file: str

    def describe(self) -> str:
        return f"repository {self.repository!r} (namespace {self.namespace}, priority {self.priority}, {self.file})"


@dataclass
class Claimant:
    repository: str
    namespace: str
    priority: int
    dags: list[tuple[str, str]] = field(default_factory=list)  # (dag_id, file relative to the release root)

    @property
    def rank(self) -> tuple[int, str]:
        return self.priority, self.repository


def resolve(claimants: list[Claimant]) -> dict[str, dict[str, str]]:
    """repository -> {file: why it is left out}. Repositories are taken from the highest priority down; a file
    is left out when one of its dag_ids is already owned by a file of a higher-ranked repository. A file that is
    left out owns nothing, so a third repository's copy of its other dag_ids can still win."""
    owners: dict[str, Claim] = {}
    hidden: dict[str, dict[str, str]] = {}
    for claimant in sorted(claimants, key=lambda c: c.rank):
        by_file: dict[str, list[str]] = defaultdict(list)
        for dag_id, file in claimant.dags:
            by_file[file].append(dag_id)
        lost: dict[str, str] = {}
        for file, dag_ids in sorted(by_file.items()):
            taken = [(dag_id, owners[dag_id]) for dag_id in sorted(set(dag_ids)) if dag_id in owners]
            if taken:
                lost[file] = "; ".join(f"dag_id {dag_id!r} is owned by {owner.describe()}" for dag_id, owner in taken)
        for file, dag_ids in by_file.items():
            if file not in lost:
                claim = Claim(claimant.repository, claimant.namespace, claimant.priority, file)
                for dag_id in dag_ids:
                    owners.setdefault(dag_id, claim)
        hidden[claimant.repository] = lost
    return hidden


def owners_above(claimants: list[Claimant], rank: tuple[int, str]) -> dict[str, Claim]:
    """dag_id -> the claim that owns it among the repositories ranked above `rank` (what a new release of the
    repository with that rank may not take)."""
    above = [c for c in claimants if c.rank < rank]
    hidden = resolve(above)
    owners: dict[str, Claim] = {}
    for claimant in sorted(above, key=lambda c: c.rank):
        for dag_id, file in claimant.dags:
            if file not in hidden.get(claimant.repository, {}):
                owners.setdefault(dag_id, Claim(claimant.repository, claimant.namespace, claimant.priority, file))
    return owners


# -- the managed .airflowignore section ------------------------------------------------------------------
def hidden_in(release_dir: Path) -> list[str]:
    """The files the managed section of a release's `.airflowignore` leaves out."""
    return read_section(release_dir / ".airflowignore", SECTION_START, SECTION_END)


def write_hidden(release_dir: Path, files: list[str]) -> bool:
    """Make the managed section list exactly `files` (the rest of the file is kept); True when it changed."""
    if not write_section(release_dir / ".airflowignore", SECTION_START, SECTION_END, sorted(files)):
        return False
    forget_in_manifest(release_dir, ".airflowignore")
    return True


# -- the gate a new release passes before it may go live -------------------------------------------------
def gate(report, above: dict[str, Claim], below: dict[str, list[Claim]], on_conflict: str):
    """The report the publish decision is made on. For each DAG of the new release whose dag_id a
    higher-ranked repository owns: an error with `on_conflict: block`, else a warning (the file is left out
    when the release goes live). For each dag_id it takes from lower-ranked repositories: an info."""

    findings = [f for f in report.findings if f.rule != "dag-id-taken"]
    for dag in report.dags:
        owner = above.get(dag.dag_id)
        if owner is not None:
            blocked = on_conflict == "block"
            findings.append(
                Finding(
                    "dag-id-taken",
                    "error" if blocked else "warning",
                    f"{'' if blocked else '[left out, not published] '}dag_id {dag.dag_id!r} is owned by "
                    f"{owner.describe()}, which has priority over this repository (on_conflict: {on_conflict})",
                    dag.file,
                    dag.line,
                    hint="Rename the DAG, or change the repositories' priorities in dagops.yaml.",
                )
            )
        for loser in below.get(dag.dag_id, []):
            findings.append(
                Finding(
                    "dag-id-shadows",
                    "info",
                    f"dag_id {dag.dag_id!r} is also defined by {loser.describe()}; that file is left out of "
                    "Airflow while this release is live",
                    dag.file,
                    dag.line,
                )
            )
    return replace(report, findings=findings)


# -- the live releases: who claims what, and applying the resolution to their folders ----------------
log = logging.getLogger(__name__)


def live_pairs(session: Session, exclude_id: int | None = None) -> list[tuple[Repository, Release]]:
    query = select(Repository, Release).join(Release, Release.id == Repository.live_release_id)
    if exclude_id is not None:
        query = query.where(Repository.id != exclude_id)
    return [(repo, release) for repo, release in session.execute(query)]


def claimant(repo: Repository, release: Release) -> Claimant:
    dags = [(d["dag_id"], d["file"]) for d in (release.validation_summary or {}).get("dags") or [] if d.get("file")]
    return Claimant(repo.name, repo.namespace, repo.priority, dags)


CONFLICTS_LOCK = "_dag-id-conflicts"  # not a valid repository name, so it never clashes with one


def reconcile_conflicts() -> None:
    """Re-resolve dag_id clashes among the live releases (after a repository left or a priority changed)."""
    with repository_lock(paths.locks_dir(), CONFLICTS_LOCK, timeout=settings.get_int("lock_timeout")):
        with session_scope() as session:
            pairs = live_pairs(session)
            apply_hidden(pairs, phase="hide")
            apply_hidden(pairs, phase="settle")


def apply_hidden(pairs: list[tuple[Repository, Release]], *, phase: str) -> None:
    """`hide`: leave out every file that must go (keeping what is hidden now); `settle`: exactly what must
    go, so files that are no longer shadowed come back. Recorded on each release as `hidden_files`."""
    wanted = resolve([claimant(repo, release) for repo, release in pairs])
    for repo, release in pairs:
        lost = wanted.get(repo.name, {})
        folder = Path(release.path)
        if not folder.is_dir():
            continue
        files = set(lost) | set(hidden_in(folder)) if phase == "hide" else set(lost)
        if write_hidden(folder, sorted(files)):
            log.info("%s: files left out because of dag_id clashes: %s", repo.name, ", ".join(sorted(files)) or "none")
            # The pairs are rows of the caller's session: the live set (bundle mode) follows in its transaction.
            session = object_session(release)
            if session is not None:
                live_set.refresh(session, repo.namespace)
        if phase == "settle":
            release.hidden_files = lost or None
