"""The promotion flow with run outcomes served by a fake source: stage, soak, promote, block, supersede."""

from __future__ import annotations

import json

import pytest

from airflow_dagops.deploy.publish import current_target
from airflow_dagops.errors import Conflict
from airflow_dagops.releases import promotion
from airflow_dagops.releases.rollback import get_release, pin, unpin
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository, update_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import DeployEvent, Repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source
from tests.releases.conftest import long_ago


def _check(runs):
    return promotion.check(lambda: runs)


def _link(dagops_env, namespace):
    return current_target(dagops_env.dags_folder / namespace)


def test_a_validated_release_goes_live_in_the_first_stage_and_prod_keeps_its_own(dagops_env, staged_repo):
    _remote, outcome = staged_repo
    assert "stage staging (team--staging)" in outcome.message
    release = get_release(outcome.release_id)
    # The stage's own view of the release (hard links), not a second link to the release folder.
    view = dagops_env.dagops_home / "releases" / "team--staging" / release["commit"]
    assert _link(dagops_env, "team--staging") == view
    staged_file = dagops_env.dags_folder / "team--staging" / "dags" / "a.py"
    release_file = dagops_env.dagops_home / "releases" / "team" / release["commit"] / "dags" / "a.py"
    assert staged_file.stat().st_ino == release_file.stat().st_ino
    assert _link(dagops_env, "team") is None  # nothing was ever promoted: prod is empty
    meta = json.loads((dagops_env.dagops_home / "namespaces" / "team--staging.json").read_text())
    assert meta == {
        "repository": "team",
        "stage": "staging",
        "dag_id_suffix": "__staging",
        "paused": True,
        "access_control": None,
    }
    status = promotion.status("team")
    assert status["current"]["status"] == "soaking" and status["current"]["release_id"] == outcome.release_id
    assert [(s["stage"], s["namespace"], s["release_id"]) for s in status["stages"]] == [
        ("staging", "team--staging", outcome.release_id),
        ("prod", "team", None),
    ]
    # The sync is finished and the commit seen: the next sync has nothing to do.
    assert sync_repository("team").status == "unchanged"


def test_enough_successful_runs_promote_to_prod(dagops_env, staged_repo, runs):
    _remote, outcome = staged_repo
    runs.add("a__staging", "success")
    (result,) = _check(runs)
    assert (result["status"], result["successes"]) == ("soaking", 1)
    assert "1 of 2 successful runs" in result["message"]
    assert runs.asked[0][0] == ["a__staging", "b__staging"]  # the suffixed dag_ids of the release
    assert _link(dagops_env, "team") is None

    runs.add("b__staging", "success")
    (result,) = _check(runs)
    assert (result["status"], result["stage"], result["successes"]) == ("promoted", "prod", 2)
    assert result["detail"]["promoted_by"] == "dagops_promote" and result["detail"]["forced"] is False
    info = get_repository("team")
    assert info.live_release_id == outcome.release_id
    assert _link(dagops_env, "team").name == _link(dagops_env, "team--staging").name
    with session_scope() as session:
        (event,) = session.query(DeployEvent).all()
        assert (event.reason, event.to_release_id, event.actor) == ("promotion", outcome.release_id, "dagops_promote")
    assert _check(runs) == []  # nothing soaks any more


def test_runs_from_before_the_stage_went_live_do_not_count(dagops_env, staged_repo, runs):
    runs.add("a__staging", "failed", when=long_ago())
    runs.add("a__staging", "success", when=long_ago())
    (result,) = _check(runs)
    assert (result["status"], result["successes"]) == ("soaking", 0)


def test_a_failed_run_blocks_and_names_the_run(dagops_env, staged_repo, runs):
    runs.add("a__staging", "success")
    runs.add("b__staging", "failed", run_id="scheduled__2026-11-28T01:00:00")
    runs.add("a__staging", "success")
    (result,) = _check(runs)
    assert result["status"] == "blocked"
    assert result["detail"]["failed_dag_id"] == "b__staging"
    assert result["detail"]["failed_run_id"] == "scheduled__2026-11-28T01:00:00"
    assert "run scheduled__2026-11-28T01:00:00 of b__staging failed in stage staging" in result["message"]
    assert "dagops promote team --force" in result["message"]
    assert _link(dagops_env, "team") is None  # prod untouched
    assert _check(runs) == []  # blocked is not checked again

    with pytest.raises(Conflict, match="--force") as caught:
        promotion.promote("team", actor="cli:dana")
    assert caught.value.details["failed_run_id"] == "scheduled__2026-11-28T01:00:00"
    assert _link(dagops_env, "team") is None


def test_promote_by_hand_force_over_a_failure(dagops_env, staged_repo, runs):
    _remote, outcome = staged_repo
    runs.add("b__staging", "failed", run_id="r1")
    _check(runs)
    result = promotion.promote("team", actor="cli:dana", force=True)
    assert (result["status"], result["detail"]["promoted_by"], result["detail"]["forced"]) == (
        "promoted",
        "cli:dana",
        True,
    )
    assert get_repository("team").live_release_id == outcome.release_id
    assert [s["stage"] for s in result["detail"]["stages"]] == ["staging", "prod"]


def test_promote_by_hand_without_waiting_for_runs(dagops_env, staged_repo):
    _remote, outcome = staged_repo
    result = promotion.promote("team", actor="cli:dana")
    assert result["status"] == "promoted"
    assert get_repository("team").live_release_id == outcome.release_id
    with pytest.raises(Conflict, match="nothing of 'team' is waiting for promotion"):
        promotion.promote("team", actor="cli:dana")


def test_a_newer_release_supersedes_the_soaking_one(dagops_env, staged_repo, runs):
    remote, first = staged_repo
    promotion.promote("team", actor="cli:dana")  # the first release is prod
    remote.commit("second", {"dags/c.py": dag_source("c")})
    second = sync_repository("team")
    remote.commit("third", {"dags/d.py": dag_source("d")})
    third = sync_repository("team")
    assert "superseded the promotion of release" in third.message
    history = promotion.status("team")["history"]
    assert [(p["release_id"], p["status"]) for p in history] == [
        (third.release_id, "soaking"),
        (second.release_id, "superseded"),
        (first.release_id, "promoted"),
    ]
    assert history[1]["detail"]["superseded_by_release"] == third.release_id
    assert get_repository("team").live_release_id == first.release_id  # prod keeps its release
    staged = get_release(third.release_id)
    assert _link(dagops_env, "team--staging").name == staged["commit"]
    runs.add("d__staging")
    runs.add("a__staging")
    (result,) = _check(runs)
    assert result["status"] == "promoted" and get_repository("team").live_release_id == third.release_id


def test_soak_runs_zero_means_by_hand_only(dagops_env, git_remote, structure_on):
    remote = git_remote({"dags/a.py": dag_source("a")})
    add_repository("team", remote.url, promotion={"stages": ["staging", "prod"], "soak_runs": 0})
    outcome = sync_repository("team")

    def no_source():
        raise AssertionError("no run outcomes are needed when nothing soaks automatically")

    assert promotion.check(no_source) == []
    assert "promote it by hand" in promotion.status("team")["current"]["message"]
    assert promotion.promote("team", actor="cli:dana")["status"] == "promoted"
    assert get_repository("team").live_release_id == outcome.release_id


def test_three_stages_soak_in_each_before_prod(dagops_env, git_remote, structure_on, runs):
    remote = git_remote({"dags/a.py": dag_source("a")})
    stages = {"stages": ["staging", "canary", "prod"], "soak_runs": 1}
    add_repository("team", remote.url, promotion=stages)
    outcome = sync_repository("team")
    runs.add("a__staging")
    (result,) = _check(runs)
    assert (result["status"], result["stage"], result["successes"]) == ("soaking", "canary", 0)
    assert _link(dagops_env, "team--canary").name == _link(dagops_env, "team--staging").name
    meta = json.loads((dagops_env.dagops_home / "namespaces" / "team--canary.json").read_text())
    assert meta["dag_id_suffix"] == "__canary" and meta["stage"] == "canary"
    assert runs.asked[-1][0] == ["a__staging"]
    runs.add("a__canary")
    (result,) = _check(runs)
    assert result["status"] == "promoted"
    assert get_repository("team").live_release_id == outcome.release_id


def test_a_repository_without_stages_publishes_to_prod_as_before(dagops_env, git_remote):
    remote = git_remote({"dags/a.py": dag_source("a")})
    add_repository("plain", remote.url)
    outcome = sync_repository("plain")
    assert outcome.message == f"plain: published {outcome.commit[:12]}"
    assert get_repository("plain").live_release_id == outcome.release_id
    assert not (dagops_env.dags_folder / "plain--staging").is_symlink()


def test_a_pinned_repository_is_not_promoted_to_prod(dagops_env, staged_repo, runs):
    remote, first = staged_repo
    promotion.promote("team", actor="cli:dana")
    pin("team", actor="cli:dana")
    unpin("team", actor="cli:dana")
    remote.commit("second", {"dags/c.py": dag_source("c")})
    sync_repository("team")
    pin("team", actor="cli:dana")
    runs.add("a__staging")
    runs.add("c__staging")
    (result,) = _check(runs)
    assert result["status"] == "error" and "dagops unpin team" in result["message"]
    assert get_repository("team").live_release_id == first.release_id
    with pytest.raises(Conflict, match="pinned"):
        promotion.promote("team", actor="cli:dana")


def test_stage_links_nobody_declares_are_taken_down(dagops_env, staged_repo):
    update_repository("team", promotion=None)
    assert promotion.reconcile_stage_links() == ["team--staging"]
    assert not (dagops_env.dags_folder / "team--staging").is_symlink()
    assert not (dagops_env.dagops_home / "namespaces" / "team--staging.json").exists()
    assert promotion.status("team")["history"][0]["status"] == "superseded"
    with session_scope() as session:
        assert session.query(Repository).one().promotion is None
