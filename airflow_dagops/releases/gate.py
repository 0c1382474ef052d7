"""The one gate: may this tree go live, or get a green check? `check_tree` answers for every caller.

Every caller runs the same steps in the same order; a `GatePurpose` changes only what a caller must not do (a pull
request check builds no environment and writes nothing onto other repositories' releases) or cannot wait for.

    step (in order)              SYNC     SYNC_DEFERRED  DEPLOY   ROLLBACK*  PULL_REQUEST  PROPOSAL  MARKETPLACE
    1 validate (pipeline)        yes      yes            yes      yes        yes           yes       yes
    2 dag_id conflicts           yes      yes            yes      yes        yes           yes       registered**
    3 skip-files (on_invalid)    yes      yes            yes      yes        yes           yes       yes
    4 dependency conflicts       yes+     yes+           yes+     yes+       read-only     read-only registered**
    5 isolated env (uv)          build    build          build    build      preview       preview   registered**
    6 the repository's tests     run      planned        run      run        run           no        no

    yes+       the conflict blocks the release, and the other live release gets a warning naming it
    read-only  the same conflict blocks the check, and nothing is written anywhere
    build      the namespace's venv is built or reused (airflow_dagops/releases/environments.py)
    preview    never built: an environment that already exists is named, and with `[dagops] wheelhouse` a
               requirement no wheel there satisfies is the `venv-build-failed` the build would raise
    planned    the modules are listed for the dagops_test system DAG (status `testing`), which runs them
    run        `tests: required` failures are errors, `tests: optional` failures warnings (releases/tests.py)
    no         PROPOSAL: it runs inside an API request, and the pull request it opens gets this gate's check,
               tests included. MARKETPLACE: the pre-check of an update; the sync that installs it runs them.
    *          ROLLBACK only gates a release without a validation record (one still waiting for its tests);
               a release that passed the gate before goes back live without it (releases/rollback.py).
    **         with a registered repository; a catalog's badge check judges the package on its own.

Steps 1-3 judge the tree, 4-5 the tree among the live releases, 6 the repository's own expectations; a step after
a failing one still runs when it is cheap (so a check reports every problem at once), except the environment build
and the tests, which only run on a tree that passed everything before them.

What happens after the gate is not a tree step: promotion staging (sync only: releases/rollout.py) and pruning of
old release folders (every path that publishes a release directly: sync, deploy, rollback; releases/golive.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from sqlalchemy import select

from airflow_dagops import settings
from airflow_dagops.deploy import conflicts
from airflow_dagops.deploy.conflicts import claimant, live_pairs
from airflow_dagops.errors import DagOpsError
from airflow_dagops.releases import environments as venvs
from airflow_dagops.releases import perf as release_perf
from airflow_dagops.releases import tests_runner as release_tests
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import DEFAULT_ON_CONFLICT, Finding, Repository
from airflow_dagops.store.queries import get_row
from airflow_dagops.validate import Report, validate
from airflow_dagops.validate.config import ValidationConfig
from airflow_dagops.validate.declarations import DeclaredRequirement, requirements_from_summary
from airflow_dagops.validate.dependencies import conflicts_for
from airflow_dagops.validate.report import Finding as ValidationFinding
from airflow_dagops.validate.skip_files import apply_gate
from airflow_dagops.wording import plural

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
# a step reports what it is doing in a few words


ENVIRONMENT_RULES = {"dependency-missing", "dependency-version"}  # about Airflow's own environment
STAYS_LIVE = " The previous release stays live."
TEST_FAILED_HINT = "Run pytest in the repository to reproduce it; with `tests: optional` failures do not block."


class GatePurpose(Enum):
    """Why a tree is checked. See the module docstring for what each purpose changes."""

    SYNC = "sync"
    SYNC_DEFERRED_TESTS = "sync, tests deferred to dagops_test"
    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    PULL_REQUEST = "pull request check"
    PROPOSAL = "proposal"
    MARKETPLACE_INSTALL = "marketplace install"

    @property
    def goes_live(self) -> bool:
        """The tree is a release about to be published: its environment is built for real, and the other live
        releases are told about a dependency conflict. Anything else is a question, answered without side effects."""
        return self in _GOES_LIVE

    @property
    def tests(self) -> str:
        """run (here, on the tree), plan (listed for dagops_test) or skip."""
        return _TESTS.get(self, "run")


_GOES_LIVE = {GatePurpose.SYNC, GatePurpose.SYNC_DEFERRED_TESTS, GatePurpose.DEPLOY, GatePurpose.ROLLBACK}
_TESTS = {
    GatePurpose.SYNC_DEFERRED_TESTS: "plan",
    GatePurpose.PROPOSAL: "skip",
    GatePurpose.MARKETPLACE_INSTALL: "skip",
}


def check_tree(
    tree: Path,
    *,
    repository_id: int | None,
    namespace: str | None,
    purpose: GatePurpose,
    validator: Callable[..., Report] = validate,
    extra_findings: Iterable[ValidationFinding] = (),
    progress: Progress | None = None,
) -> Report:
    """The report the decision is made on: `report.passed` says whether the tree may go live (or get a green
    check). `repository_id` None: a tree that belongs to no registered repository, judged on its own."""
    progress = progress or _quiet
    progress("validating")
    report = validator(tree, extra_findings=list(extra_findings), dag_owners={})
    # Read once, after validation (which may take minutes): steps 2, 4 and 5 judge the tree against it.
    neighbours = Neighbours.read(repository_id) if repository_id is not None else None
    report = gate_dag_id_conflicts(neighbours, report)
    report = apply_gate(tree, report)
    report = gate_dependency_conflicts(neighbours, namespace, report, tell_others=purpose.goes_live)
    report = provide_isolated_env(neighbours, namespace, report, progress, build=purpose.goes_live)
    return gate_tests(tree, report, purpose, progress, repository_id=repository_id)


@dataclass(frozen=True)
class Neighbours:
    """The repository's own settings and what the other live releases claim and require: everything steps 2, 4
    and 5 read from the state DB, in one transaction (a sync used to open three)."""

    namespace: str
    rank: tuple[int, str]  # (priority, name): who wins a dag_id clash
    on_conflict: str
    isolated_env: bool
    claimants: list[conflicts.Claimant]  # every other live release, for its dag_ids
    # namespace -> (live release id, its declared requirements), for the other live releases in Airflow's own
    # environment (repositories with `isolated_env` take no part in dependency conflicts)
    shared_env: dict[str, tuple[int, list[DeclaredRequirement]]]

    @classmethod
    def read(cls, repository_id: int) -> Neighbours:
        with session_scope() as session:
            repo = get_row(session, Repository, repository_id)
            pairs = live_pairs(session, exclude_id=repository_id)
            return cls(
                namespace=repo.namespace,
                rank=(repo.priority, repo.name),
                on_conflict=repo.on_conflict or DEFAULT_ON_CONFLICT,
                isolated_env=bool(repo.isolated_env),
                claimants=[claimant(other, release) for other, release in pairs],
                shared_env={
                    other.namespace: (release.id, requirements_from_summary(release.validation_summary))
                    for other, release in pairs
                    if not other.isolated_env
                },
            )


def _quiet(_step: str) -> None:
    """No one listens to this caller's progress."""


# -- 2. dag_id conflicts ---------------------------------------------------------------------------------------
def gate_dag_id_conflicts(neighbours: Neighbours | None, report: Report) -> Report:
    """The validation report with this repository's dag_id clashes judged by priority and its on_conflict
    (airflow_dagops/deploy/conflicts.py). A tree of no repository has no priority to judge by."""
    if neighbours is None:
        return report
    above, below = _claims_around(neighbours)
    return conflicts.gate(report, above, below, neighbours.on_conflict)


def _claims_around(neighbours: Neighbours) -> tuple[dict, dict]:
    """What the other live repositories claim, split by rank: (dag_id -> the owning claim above this
    repository, dag_id -> the claims of the repositories below it that it would shadow)."""
    mine = neighbours.rank
    below: dict[str, list[conflicts.Claim]] = {}
    for other in neighbours.claimants:
        if other.rank > mine:
            for dag_id, file in other.dags:
                below.setdefault(dag_id, []).append(
                    conflicts.Claim(other.repository, other.namespace, other.priority, file)
                )
    return conflicts.owners_above(neighbours.claimants, mine), below


# -- 4. dependency conflicts -------------------------------------------------------------------------------------
def gate_dependency_conflicts(
    neighbours: Neighbours | None, namespace: str | None, report: Report, *, tell_others: bool = True
) -> Report:
    """Namespaces that share Airflow's environment must agree on library versions: a tree that pins a version
    another live namespace excludes is blocked. With `tell_others` (a release about to go live) that namespace's
    live release gets a warning too; a check only asks. Repositories with `isolated_env` take no part."""
    if neighbours is None or neighbours.isolated_env:
        return report
    namespace = namespace or neighbours.namespace  # every caller with a repository passes its namespace
    others = neighbours.shared_env
    mine = requirements_from_summary(report.summary())
    found = conflicts_for(namespace, mine, {ns: reqs for ns, (_id, reqs) in others.items()})
    if isinstance(report.config, ValidationConfig):
        found = report.config.apply(found)  # the repository's severity overrides hold here too
    if tell_others:
        _tell_others(namespace, mine, others)
    return replace(report, findings=[*report.findings, *found]) if found else report


def _tell_others(namespace: str, mine: list[DeclaredRequirement], others: dict) -> None:
    """The other side of a conflict: a warning on its live release, naming the release that was held back. A
    transaction only when there is something to tell."""
    told = {
        release_id: conflicts_for(other, requirements, {namespace: mine})
        for other, (release_id, requirements) in others.items()
    }
    told = {release_id: found for release_id, found in told.items() if found}
    if not told:
        return
    with session_scope() as session:
        for release_id, found in told.items():
            known = set(session.scalars(select(Finding.message).where(Finding.release_id == release_id)))
            for theirs in found:
                message = f"{theirs.message} (a new release of {namespace} was checked against it)"
                if message in known:
                    continue
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


# -- 5. isolated environment -------------------------------------------------------------------------------------
def provide_isolated_env(
    neighbours: Neighbours | None, namespace: str | None, report: Report, progress: Progress, *, build: bool = True
) -> Report:
    """For a repository with `isolated_env`: its namespace's virtual environment replaces the checks against
    Airflow's own environment. `build`: build (or reuse) it from the declared requirements, and a failed build
    blocks the release with uv's message; else only say what can be known without building (`_preview_env`)."""
    if neighbours is None or not neighbours.isolated_env:
        return report
    namespace = namespace or neighbours.namespace  # every caller with a repository passes its namespace
    report = replace(report, findings=[f for f in report.findings if f.rule not in ENVIRONMENT_RULES])
    if not report.passed:
        return report  # no environment for a tree that cannot go live anyway
    requirements = venvs.requirements_of(report.summary())
    if not build:
        return _preview_env(namespace, requirements, report)
    progress(f"preparing the isolated environment ({len(requirements)} requirements)")
    try:
        built = venvs.ensure_venv(namespace, requirements)
    except DagOpsError as err:
        failed = ValidationFinding("venv-build-failed", "error", str(err), hint=venvs.BUILD_HINT)
        return replace(report, findings=[*report.findings, failed])
    how = "reused" if built.reused else f"built in {built.seconds:.1f}s"
    ready = ValidationFinding("venv-ready", "info", f"isolated environment {built.path.name} {how}: {built.python}")
    report = replace(report, findings=[*report.findings, ready])
    report.stats["venv"] = {"python": str(built.python), "key": built.path.name, "reused": built.reused}
    return report


def _preview_env(namespace: str, requirements: list[str], report: Report) -> Report:
    """What a check can know of the environment without building it (a build takes minutes and writes into
    `<dagops_home>/venvs`): whether it exists already, and, with an offline wheelhouse, which requirement no
    wheel there satisfies, which is what the build would fail on."""
    wheelhouse = settings.get("wheelhouse") or None
    key = venvs.venv_key(requirements, wheelhouse=wheelhouse)
    if (venvs.venvs_dir(namespace) / key / venvs.COMPLETE_MARKER).is_file():
        ready = ValidationFinding("venv-ready", "info", f"isolated environment {key} exists and would be reused")
        return replace(report, findings=[*report.findings, ready])
    missing = [r for r in requirements if wheelhouse and not _in_wheelhouse(r, Path(wheelhouse))]
    if not missing:
        return report  # built at the sync; only the build itself can tell more
    failed = ValidationFinding(
        "venv-build-failed",
        "error",
        f"the isolated environment cannot be built: no wheel in [dagops] wheelhouse satisfies {', '.join(missing)}",
        hint=venvs.BUILD_HINT,
    )
    return replace(report, findings=[*report.findings, failed])


def _in_wheelhouse(requirement: str, wheelhouse: Path) -> bool:
    """Whether a wheel or sdist in the wheelhouse satisfies the requirement by name and version. Its own
    dependencies are not resolved: that needs the build."""
    try:
        wanted = Requirement(requirement)
    except InvalidRequirement:
        return True  # the declarations step reported it already
    if wanted.marker is not None and not wanted.marker.evaluate():
        return True  # uv skips it in this environment
    name = canonicalize_name(wanted.name)
    for path in wheelhouse.iterdir() if wheelhouse.is_dir() else ():
        found = _distribution_of(path.name)
        if found and found[0] == name and wanted.specifier.contains(found[1], prereleases=True):
            return True
    return False


def _distribution_of(filename: str):
    """(canonical name, version) of a wheel or sdist file name, or None."""
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return name, version
        if filename.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


# -- 6. the repository's own tests -------------------------------------------------------------------------------
@dataclass
class Verdict:
    """The repository's tests as the gate judges them: what is stored with the release, the findings, whether
    they block it, and what to say."""

    summary: dict
    findings: list[ValidationFinding]
    blocked: bool
    message: str


def gate_tests(
    tree: Path, report: Report, purpose: GatePurpose, progress: Progress, *, repository_id: int | None = None
) -> Report:
    """Run the repository's tests (`tests: required|optional` in .dagops.yaml) on a tree that passed every other
    step, or list them for dagops_test. `report.stats["tests"]` is what is stored with the release. What the tests
    measured is compared with the repository's live release (releases/perf.py)."""
    mode = getattr(report.config, "tests", "off")
    if purpose.tests == "skip" or mode == "off" or not report.passed:
        return report
    modules = release_tests.test_modules(tree)
    if not modules:
        return report
    if purpose.tests == "plan":
        report.stats["tests"] = {"mode": mode, "outcome": "pending", "modules_pending": modules}
        return report
    perf_limits = release_perf.limits(getattr(report.config, "perf", None))
    baseline = release_perf.live_baseline(repository_id)
    verdict = judge_tests(run_release_tests(tree, modules, progress), mode, baseline, perf_limits)
    report = replace(report, findings=[*report.findings, *verdict.findings])
    report.stats["tests"] = verdict.summary
    report.stats["tests_message"] = verdict.message
    return report


def run_release_tests(release_dir: Path, modules: list[str], progress: Progress | None = None) -> list:
    """Every test module of a tree, a few at a time, each in its own sandboxed pytest process."""
    progress = progress or _quiet
    progress(f"testing: {plural(len(modules), 'test module')}")
    workers = max(1, min(settings.get_int("test_concurrency"), len(modules)))
    timeout = float(settings.get_int("test_timeout"))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda m: release_tests.run_module(release_dir, m, timeout=timeout), modules))
    for result in results:
        failed = result.failed + result.errors
        progress(f"  {result.module}: {result.outcome} ({result.passed} passed, {failed} failed)")
    return results


def judge_tests(
    results: list,
    mode: str,
    perf_baseline: release_perf.Baseline | None = None,
    perf_limits: release_perf.PerfLimits | None = None,
) -> Verdict:
    """A `test-failed` finding per failing test and a `perf-regression` finding per measurement that got slower than
    the live release's (errors with `tests: required`, else warnings), and whether they block the release."""
    summary = release_tests.summarize(results, mode)
    severity = "error" if mode == "required" else "warning"
    failing = [
        ValidationFinding(
            "test-failed",
            severity,
            f"{failure['test']} {failure['kind']}: {failure['message'] or 'no message'}",
            failure["module"],
            hint=TEST_FAILED_HINT,
        )
        for failure in summary["failures"]
    ]
    regressions = release_perf.judge(summary, mode, perf_baseline, perf_limits)  # listed in the summary's failures
    blocked = mode == "required" and summary["outcome"] != "passed"
    counts = f"{summary['passed']} passed, {summary['failed']} failed, {plural(summary['errors'], 'error')}"
    first = f": {failing[0].message[:300]}" if failing else ""
    slower = f"; performance regressed: {regressions[0].message}" if regressions else ""
    if blocked and not failing:
        first = f": performance regressed: {regressions[0].message}"
        slower = f" ({plural(len(regressions), 'regression')})" if len(regressions) > 1 else ""
    message = (
        f"tests failed ({counts}){first}{slower}.{STAYS_LIVE}"
        if blocked
        else f"tests {summary['outcome']} ({counts}){slower}"
    )
    return Verdict(summary, [*failing, *regressions], blocked, message)


def tests_blocked(report: Report) -> str | None:
    """The tests' message when they are what holds the tree back (every other step passed), else None."""
    tests = report.stats.get("tests") or {}
    if report.passed or tests.get("mode") != "required" or tests.get("outcome") != "failed":
        return None
    return report.stats.get("tests_message")
