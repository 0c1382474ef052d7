"""A repository's own tests as a gate before publishing (`tests: required|optional` in its .dagops.yaml).

Running and judging them is step 6 of the one gate (releases/gate.py): `dagops sync`, a deploy, a rollback to an
untested release and a pull request check run them in place, a few modules at a time; the dagops_sync system DAG
hands the release to the dagops_test system DAG instead (status `testing`), which runs one mapped task per test
module and then calls `finish_release_tests` here. Either way the results and JUnit XML are stored with the release
(releases/tests_runner.py runs one module).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from airflow_dagops import paths, settings
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.errors import DagOpsError, InvalidInput, NotFound
from airflow_dagops.events import feed as events
from airflow_dagops.releases import perf as release_perf
from airflow_dagops.releases import tests_runner as release_tests
from airflow_dagops.releases.gate import judge_tests
from airflow_dagops.releases.rollout import publish_checked
from airflow_dagops.statuses import ReleaseStatus
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Finding, Release, Repository
from airflow_dagops.store.queries import MAX_ID, find_release, get_row, load_repository


def record_test_results(release_id: int, results: list, mode: str) -> dict:
    """Store the results (and JUnit XML) with the release, add a `test-failed` finding per failing test and a
    `perf-regression` finding per measurement slower than the live release's, and say whether they block it
    (`tests: required`); the judging is the gate's (releases/gate.py)."""
    with session_scope() as session:
        release = get_row(session, Release, release_id, what="release")
        repository_id, folder = release.repository_id, Path(release.path)
    # Measurements are judged against what is live now, with the limits the release's own .dagops.yaml sets.
    baseline = release_perf.live_baseline(repository_id, exclude=release_id)
    perf_limits = release_perf.limits_of_release(folder) if baseline is not None else None
    verdict = judge_tests(results, mode, baseline, perf_limits)
    with session_scope() as session:
        release = get_row(session, Release, release_id, what="release")
        release.tests = verdict.summary
        release.findings.extend(
            Finding(rule=f.rule, severity=f.severity, file=f.file, message=f.message, hint=f.hint)
            for f in verdict.findings
        )
        if verdict.blocked:
            release.status = ReleaseStatus.FAILED
    return {
        "blocked": verdict.blocked,
        "message": verdict.message,
        "summary": verdict.summary,
        "findings": [f.to_dict() for f in verdict.findings],
    }


def test_plan(repository: str | None = None, release: int | str | None = None) -> list[dict]:
    """The test modules to run: of the given release, or of every release waiting for its tests. A waiting
    release without test modules (they were removed meanwhile) is finished at once."""
    with session_scope() as session:
        if release is not None:
            if repository is None:
                raise InvalidInput("give the repository of the release to test")
            targets = [find_release(session, load_repository(session, repository), release)]
        else:
            query = select(Release).where(Release.status == ReleaseStatus.TESTING)
            if repository is not None:
                query = query.where(Release.repository_id == load_repository(session, repository).id)
            targets = list(session.scalars(query.order_by(Release.id)))
        wanted = [(t.id, get_row(session, Repository, t.repository_id).name, Path(t.path)) for t in targets]
    plan: list[dict] = []
    for release_id, name, folder in wanted:
        if not folder.is_dir():
            raise NotFound(f"release {release_id} of {name} is no longer on disk; roll back to it to re-export it")
        modules = release_tests.test_modules(folder)
        if not modules:
            finish_release_tests(release_id, [])
        plan.extend({"repository": name, "release_id": release_id, "module": m} for m in modules)
    return plan


def run_test_module(release_id: int, module: str) -> dict:
    with session_scope() as session:
        release = session.get(Release, release_id) if 0 < release_id <= MAX_ID else None
        if release is None:
            raise NotFound(f"no release with id {release_id}")
        folder = Path(release.path)
    return release_tests.run_module(folder, module, timeout=float(settings.get_int("test_timeout"))).to_dict()


def finish_release_tests(release_id: int, results: list[dict], *, actor: str = "dagops_test") -> str:
    """Record a release's test results; a release that was waiting for them goes live when they pass (or
    when `tests: optional`), unless a newer release of its repository came along meanwhile."""
    modules = [release_tests.ModuleResult.from_dict(r) for r in results]
    with session_scope() as session:
        release = get_row(session, Release, release_id, what="release")
        waiting = release.status == ReleaseStatus.TESTING
        mode = (release.tests or {}).get("mode", "required")
        run_id = (release.tests or {}).get("sync_run_id")
        repo = get_row(session, Repository, release.repository_id)
        name, commit = repo.name, release.commit_sha
        newer = session.scalar(
            select(func.count())
            .select_from(Release)
            .where(Release.repository_id == repo.id, Release.id > release.id, Release.status != ReleaseStatus.FAILED)
        )
    verdict = record_test_results(release_id, modules, mode)
    events.record_tests(name, release_id, commit, verdict, actor=actor)
    if not waiting or verdict["blocked"]:
        return f"{name} {commit[:12]}: {verdict['message']}"
    if newer:
        with session_scope() as session:
            get_row(session, Release, release_id, what="release").status = ReleaseStatus.VALIDATED
        return f"{name} {commit[:12]}: {verdict['message']}; not published: a newer release came along"
    if run_id is None:  # sync.await_tests records it with every release it hands to the tests
        raise DagOpsError(f"release {release_id} waits for its tests but records no sync run to finish")
    with repository_lock(paths.locks_dir(), name, timeout=settings.get_int("lock_timeout")):
        rollout = publish_checked(name, release_id, run_id, actor=actor, reason="tests passed")
    return f"{rollout.message} ({verdict['message']})"


def junit_xml(release_id: int) -> dict[str, str]:
    """module -> the JUnit XML its run wrote, as stored with the release."""
    with session_scope() as session:
        release = session.get(Release, release_id) if 0 < release_id <= MAX_ID else None
        if release is None:
            raise NotFound(f"no release with id {release_id}")
        return {m["module"]: m.get("junit_xml", "") for m in (release.tests or {}).get("modules", [])}
