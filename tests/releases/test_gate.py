"""The one gate (releases/gate.py): every way a tree is judged runs the same steps, so a green pull request check,
an accepted proposal and a deploy mean what a sync means. Real repositories, real validation, real git."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from airflow_dagops.checks import service as checks
from airflow_dagops.errors import ValidationFailed
from airflow_dagops.proposals import service as proposals
from airflow_dagops.releases import environments as venvs
from airflow_dagops.releases import versions as versions_service
from airflow_dagops.releases.gate import GatePurpose, check_tree
from airflow_dagops.releases.rollback import get_release
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import CheckRun, Release
from airflow_dagops.store.queries import load_repository
from airflow_dagops.sync.sync import sync_repository
from benchmarks.venv_reuse import write_wheel
from tests.helpers.repos import dag_source, make_bare_repo

INSTALLED = version("packaging")  # a library Airflow's own environment has: pinning it passes validation
# `shared` is live with a pin Airflow's environment does not have, which its .dagops.yaml accepts (a warning):
# any other namespace that pins the installed version conflicts with it, and with nothing else.
SHARED_FILES = {
    "dags/shared.py": dag_source("shared"),
    "requirements.txt": "packaging==20.0\n",
    ".dagops.yaml": "severity: {dependency-version: warning}\n",
}
CONFLICTING = {"requirements.txt": f"packaging=={INSTALLED}\n"}
PASSING_TEST = {"tests/test_ok.py": "def test_ok():\n    assert True\n", ".dagops.yaml": "tests: required\n"}
FAILING_TEST = {"tests/test_ok.py": "def test_ok():\n    assert 41 == 42, 'off by one'\n"}


@pytest.fixture
def fast(monkeypatch):
    """Structure on (dag_ids), the slow scanners off: they are not what is tested here."""
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")


@pytest.fixture
def shared(dagops_env, git_remote, fast):
    """Repository `shared`, live, pinning packaging==20.0 in Airflow's shared environment."""
    remote = git_remote(SHARED_FILES, name="shared")
    add_repository("shared", remote.url, priority=10)
    outcome = sync_repository("shared")
    assert outcome.status == "published", outcome.message
    return remote


def _told(repository: str) -> list[dict]:
    """The dependency-conflict warnings on a repository's live release (what the other side is told)."""
    live = get_release(get_repository(repository).live_release_id)
    return [f for f in live["findings"] if f["rule"] == "dependency-conflict"]


def _rules(findings) -> set[str]:
    return {f["rule"] if isinstance(f, dict) else f.rule for f in findings}


# -- (a) the pull request whose green check used to turn red at sync -----------------------------------------------
def _queue_check(name: str, remote, number: int, sha: str) -> int:
    """What the webhook records: a check of the pull request head, kept where the host keeps it."""
    remote.git("update-ref", f"refs/pull/{number}/head", sha)
    with session_scope() as session:
        check = CheckRun(
            repository_id=load_repository(session, name).id,
            provider="github",
            number=number,
            ref=f"refs/pull/{number}/head",
            head_sha=sha,
            status="queued",
        )
        session.add(check)
        session.flush()
        return check.id


def test_a_pull_request_with_a_dependency_conflict_fails_its_check_as_the_sync_fails(shared, git_remote):
    team = git_remote({"dags/team.py": dag_source("team")}, name="team")
    add_repository("team", team.url)
    assert sync_repository("team").status == "published"
    team.git("checkout", "-q", "-b", "feature")
    head = team.commit("pin packaging", CONFLICTING)
    team.git("checkout", "-q", "main")

    result = checks.run_check(_queue_check("team", team, 1, head))

    assert result["status"] == "failure", result
    conflict = [f for f in result["findings"] if f["rule"] == "dependency-conflict"]
    assert conflict and conflict[0]["severity"] == "error" and "shared" in conflict[0]["message"]
    assert "error" in result["description"]
    assert _told("shared") == []  # a check only asks: the other side's live release is not written to

    # The same commit, merged: the sync refuses it for the same reason, and only now tells the other side.
    team.git("merge", "-q", "--ff-only", "feature")
    outcome = sync_repository("team")
    assert outcome.status == "failed" and outcome.commit == head
    assert "dependency-conflict" in _rules(outcome.findings)
    assert {f["message"] for f in outcome.findings if f["rule"] == "dependency-conflict"} == {
        f["message"] for f in conflict
    }
    assert len(_told("shared")) == 1


def test_a_pull_request_runs_the_repositorys_required_tests(dagops_env, git_remote, fast):
    team = git_remote({"dags/team.py": dag_source("team"), **PASSING_TEST}, name="team")
    add_repository("team", team.url)
    team.git("checkout", "-q", "-b", "feature")
    head = team.commit("break a test", FAILING_TEST)

    result = checks.run_check(_queue_check("team", team, 2, head))

    assert result["status"] == "failure"
    failed = [f for f in result["findings"] if f["rule"] == "test-failed"]
    assert failed and "off by one" in failed[0]["message"]


# -- (b) a proposal with the same conflict ----------------------------------------------------------------------------
def test_a_proposal_with_a_dependency_conflict_is_refused_and_pushes_nothing(shared, git_remote, tmp_path):
    source = git_remote({"dags/team.py": dag_source("team")}, name="team")
    bare = make_bare_repo(tmp_path, "team.git", source.path)
    add_repository("team", f"file://{bare}")
    assert sync_repository("team").status == "published"

    with pytest.raises(proposals.ProposalRefused) as refused:
        proposals.propose(
            "team",
            [{"path": "requirements.txt", "content": CONFLICTING["requirements.txt"]}],
            title="Pin packaging",
            actor="assistant",
        )

    conflict = [f for f in refused.value.details["findings"] if f["rule"] == "dependency-conflict"]
    assert conflict and conflict[0]["severity"] == "error" and "shared" in conflict[0]["message"]
    recorded = proposals.get_proposal(refused.value.details["proposal_id"])
    assert recorded["status"] == "refused" and recorded["branch"] is None
    assert _told("shared") == []  # nothing written onto the other repository's live release


# -- (c) deploy goes through the same gate, and prunes -----------------------------------------------------------------
def test_a_deploy_with_a_dependency_conflict_is_refused(shared, git_remote):
    team = git_remote({"dags/team.py": dag_source("team")}, name="team")
    add_repository("team", team.url)
    live = sync_repository("team").commit
    bad = team.commit("pin packaging", CONFLICTING)

    with pytest.raises(ValidationFailed, match="conflicts with") as refused:
        versions_service.deploy_version("team", bad, actor="ops")

    assert "dependency-conflict" in _rules(refused.value.details["findings"])
    info = get_repository("team")
    assert info.live_commit == live and info.pinned_release_id is None


def test_a_deploy_with_a_blocked_dag_id_clash_is_refused(shared, git_remote):
    team = git_remote({"dags/team.py": dag_source("team")}, name="team")
    add_repository("team", team.url, on_conflict="block")  # default priority: below `shared`
    live = sync_repository("team").commit
    bad = team.commit("take shared's dag_id", {"dags/copy.py": dag_source("shared")})

    with pytest.raises(ValidationFailed) as refused:
        versions_service.deploy_version("team", bad, actor="ops")

    assert "dag-id-taken" in _rules(refused.value.details["findings"])
    assert get_repository("team").live_commit == live


def test_a_deploy_runs_the_required_tests(dagops_env, git_remote, fast):
    team = git_remote({"dags/team.py": dag_source("team"), **PASSING_TEST}, name="team")
    add_repository("team", team.url)
    live = sync_repository("team").commit
    bad = team.commit("break a test", FAILING_TEST)

    with pytest.raises(ValidationFailed, match="held back by its tests failed") as refused:
        versions_service.deploy_version("team", bad, actor="ops")

    assert "test-failed" in _rules(refused.value.details["findings"])
    assert get_repository("team").live_commit == live


def test_a_deploy_prunes_old_release_folders(dagops_env, git_remote, fast, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__RELEASES_TO_KEEP", "1")
    team = git_remote({"dags/a.py": dag_source("a")}, name="team")
    add_repository("team", team.url)
    assert sync_repository("team").status == "published"
    team.commit("b", {"dags/b.py": dag_source("b")})
    previous = sync_repository("team")
    assert previous.status == "published"
    tagged = team.commit("c", {"dags/c.py": dag_source("c")})
    team.git("tag", "v3", tagged)

    info = versions_service.deploy_version("team", "v3", actor="ops")

    assert info.live_commit == tagged and info.pinned_release_id == info.live_release_id
    with session_scope() as session:
        pruned = session.get(Release, previous.release_id)
        assert pruned.pruned_at is not None and not Path(pruned.path).exists()
    with session_scope() as session:
        assert Path(session.get(Release, info.live_release_id).path).is_dir()


# -- (d) every purpose runs the documented steps ----------------------------------------------------------------------
def _tree(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    root = tmp_path / name
    for relative, content in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(content)
    return root


def _repository_id(name: str) -> int:
    with session_scope() as session:
        return load_repository(session, name).id


def test_every_purpose_judges_dag_ids_and_dependencies_and_only_a_release_going_live_tells_others(
    shared, git_remote, tmp_path
):
    team = git_remote({"dags/team.py": dag_source("team")}, name="team")
    add_repository("team", team.url, on_conflict="block")
    files = {"dags/team.py": dag_source("team"), "dags/copy.py": dag_source("shared"), **CONFLICTING}
    # The questions first: none of them writes onto `shared`'s live release; then the releases going live do.
    for purpose in sorted(GatePurpose, key=lambda p: p.goes_live):
        report = check_tree(
            _tree(tmp_path, purpose.name, files),
            repository_id=_repository_id("team"),
            namespace="team",
            purpose=purpose,
        )
        assert {"dag-id-taken", "dependency-conflict"} <= {f.rule for f in report.errors}, purpose
        assert len(_told("shared")) == (1 if purpose.goes_live else 0), purpose


def test_a_tree_of_no_repository_is_judged_on_its_own(shared, tmp_path):
    files = {"dags/copy.py": dag_source("shared"), **CONFLICTING}
    report = check_tree(
        _tree(tmp_path, "package", files),
        repository_id=None,
        namespace=None,
        purpose=GatePurpose.MARKETPLACE_INSTALL,
    )
    assert report.passed and not {"dag-id-taken", "dependency-conflict"} & {f.rule for f in report.findings}


TESTS_STEP = {
    GatePurpose.SYNC: "failed",
    GatePurpose.DEPLOY: "failed",
    GatePurpose.ROLLBACK: "failed",
    GatePurpose.PULL_REQUEST: "failed",
    GatePurpose.SYNC_DEFERRED_TESTS: "pending",
    GatePurpose.PROPOSAL: None,
    GatePurpose.MARKETPLACE_INSTALL: None,
}


def test_each_purpose_runs_plans_or_skips_the_repositorys_tests(dagops_env, git_remote, fast, tmp_path):
    team = git_remote({"dags/team.py": dag_source("team")}, name="team")
    add_repository("team", team.url)
    files = {"dags/team.py": dag_source("team"), **PASSING_TEST, **FAILING_TEST}
    assert set(TESTS_STEP) == set(GatePurpose)
    for purpose, expected in TESTS_STEP.items():
        report = check_tree(
            _tree(tmp_path, purpose.name, files),
            repository_id=_repository_id("team"),
            namespace="team",
            purpose=purpose,
        )
        assert (report.stats.get("tests") or {}).get("outcome") == expected, purpose
        assert report.passed == (expected != "failed"), purpose


@pytest.fixture
def wheelhouse(dagops_env, tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "wheelhouse"
    folder.mkdir()
    write_wheel(folder, "tinypkg", "1.0")
    monkeypatch.setenv("AIRFLOW__DAGOPS__WHEELHOUSE", str(folder))
    return folder


@pytest.mark.parametrize("purpose", [GatePurpose.PULL_REQUEST, GatePurpose.PROPOSAL, GatePurpose.MARKETPLACE_INSTALL])
def test_a_check_previews_the_isolated_environment_without_building_it(git_remote, fast, wheelhouse, tmp_path, purpose):
    team = git_remote({"dags/team.py": dag_source("team")}, name="team")
    add_repository("team", team.url, isolated_env=True)
    tree = _tree(tmp_path, "candidate", {"dags/team.py": dag_source("team"), "requirements.txt": "tinypkg==2.0\n"})

    report = check_tree(tree, repository_id=_repository_id("team"), namespace="team", purpose=purpose)

    failed = [f for f in report.errors if f.rule == "venv-build-failed"]
    assert failed and "tinypkg==2.0" in failed[0].message
    assert "dependency-missing" not in {f.rule for f in report.findings}  # the environment replaces Airflow's
    assert not venvs.venvs_dir("team").exists()  # nothing was built


def test_a_release_going_live_builds_its_isolated_environment(git_remote, fast, wheelhouse, tmp_path):
    team = git_remote({"dags/team.py": dag_source("team")}, name="team")
    add_repository("team", team.url, isolated_env=True)
    tree = _tree(tmp_path, "candidate", {"dags/team.py": dag_source("team"), "requirements.txt": "tinypkg==1.0\n"})

    built = check_tree(tree, repository_id=_repository_id("team"), namespace="team", purpose=GatePurpose.DEPLOY)
    assert built.passed and built.stats["venv"]["reused"] is False
    # A check afterwards knows the environment exists, still without building anything.
    preview = check_tree(tree, repository_id=_repository_id("team"), namespace="team", purpose=GatePurpose.PULL_REQUEST)
    assert "would be reused" in next(f.message for f in preview.findings if f.rule == "venv-ready")


# -- rollback to a release without a validation record ---------------------------------------------------------------
def test_a_rollback_to_a_release_still_waiting_for_its_tests_goes_through_the_gate(dagops_env, git_remote, fast):
    team = git_remote({"dags/team.py": dag_source("team"), **PASSING_TEST}, name="team")
    add_repository("team", team.url)
    live = sync_repository("team").commit
    team.commit("break a test", FAILING_TEST)
    waiting = sync_repository("team", defer_tests=True)
    assert waiting.status == "testing"

    with pytest.raises(ValidationFailed, match="no validation record"):
        versions_service.rollback("team", waiting.release_id, actor="ops")

    assert get_repository("team").live_commit == live
    with session_scope() as session:
        assert session.get(Release, waiting.release_id).status == "failed"
