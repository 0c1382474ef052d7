"""Experiments end to end over the state DB, the dags folder and a fake source of run outcomes: start, the split
recorded by the gates, the verdict, automatic and by-hand promotion, stop, abort, and everything a start refuses."""

from __future__ import annotations

import json

import pytest

from airflow_dagops import paths
from airflow_dagops.airflow import namespace_meta
from airflow_dagops.deploy.publish import current_target
from airflow_dagops.errors import AirflowApiUnavailable, Conflict, InvalidInput, NotFound
from airflow_dagops.experiments import service
from airflow_dagops.releases import promotion
from airflow_dagops.releases.rollback import pin, rollback
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import DeployEvent, Event, Experiment, ExperimentRun, Release
from airflow_dagops.sync.sync import sync_repository
from tests.experiments.conftest import FakeRuns, ask, dag_file, split_runs


def _start(**kwargs):
    return service.start("team", "report", actor="test", **kwargs)


def _feed(runs, experiment_id: int, owners: dict[int, str], *, failed_of: str | None = None, slow: str | None = None):
    """Airflow's outcomes of the runs each variant owned (and of the other's skipped copies, which never count)."""
    for day, owner in owners.items():
        for variant in ("A", "B"):
            dag_id = "report" if variant == "A" else "report__ab"
            run_id = ask(experiment_id, variant, day).owner and _run_id(experiment_id, variant, day)
            state = "failed" if variant == owner == failed_of else "success"
            runs.add(dag_id, run_id, state, seconds=(120.0 if variant == slow else 60.0) + day)


def _run_id(experiment_id: int, variant: str, day: int) -> str:
    with session_scope() as session:
        rows = session.query(ExperimentRun).filter_by(experiment_id=experiment_id).order_by(ExperimentRun.id).all()
        row = rows[day - 1]
        return row.a_run_id if variant == "A" else row.b_run_id


def _nothing_started(dagops_env):
    with session_scope() as session:
        assert session.query(Experiment).count() == 0
    assert current_target(paths.namespace_link("team--ab")) is None
    assert not (dagops_env.dagops_home / "experiments" / "team.json").exists()
    assert not (dagops_env.dagops_home / "namespaces" / "team--ab.json").exists()


def test_start_publishes_b_beside_prod_and_gates_a(dagops_env, validated_candidate):
    _remote, prod_id, candidate_id = validated_candidate
    started = _start()  # B defaults to the release waiting in staging
    assert started["status"] == "running" and started["split"] == {"mode": "alternate"}
    assert started["rule"] == {"min_runs": 10, "max_p": 0.05, "auto_promote": False}
    a, b = started["variants"]["A"], started["variants"]["B"]
    assert (a["dag_id"], a["namespace"], a["release_id"]) == ("report", "team", prod_id)
    assert (b["dag_id"], b["namespace"], b["release_id"]) == ("report__ab", "team--ab", candidate_id)
    # B: a view of the candidate in its own namespace; its meta says which DAG, with which suffix, unpaused.
    view = current_target(paths.namespace_link("team--ab"))
    assert view is not None and view.name == b["commit"]
    meta = json.loads((dagops_env.dagops_home / "namespaces" / "team--ab.json").read_text())
    assert meta["dag_id_suffix"] == "__ab" and meta["only_experiment_dags"] is True
    assert meta["experiments"] == {"report": {"id": started["id"], "variant": "B"}}
    # A: prod's link untouched, its gate entry in the experiments file, merged into the namespace's meta.
    assert get_repository("team").live_release_id == prod_id
    assert namespace_meta.read("team")["experiments"] == {"report": {"id": started["id"], "variant": "A"}}
    assert namespace_meta.read("team")["repository"] == "team"
    with session_scope() as session:
        (event,) = session.query(Event).filter_by(kind="experiment").all()
        assert event.outcome == "started" and event.detail["release_b_id"] == candidate_id


def test_alternate_split_and_a_verdict_that_waits_for_a_person(dagops_env, candidate, runs):
    started = _start(rule={"min_runs": 4})
    owners = split_runs(started["id"], range(1, 9))
    assert list(owners.values()) == ["A", "B"] * 4
    _feed(runs, started["id"], owners, failed_of="A")  # every run A owns fails, every run B owns succeeds

    (checked,) = service.check(lambda: runs)
    assert runs.asked == [["other", "report", "report__ab"]]  # prod's DAGs and the candidate's copy
    assert checked["status"] == "running"  # auto_promote is off: a person decides
    assert (checked["variants"]["A"]["runs"], checked["variants"]["A"]["failed"]) == (4, 4)
    assert (checked["variants"]["B"]["runs"], checked["variants"]["B"]["success"]) == (4, 4)
    verdict = checked["verdict"]
    assert (verdict["winner"], verdict["basis"], verdict["decided"]) == ("B", "success rate", True)
    assert verdict["success_p"] == pytest.approx(2 / 70, abs=1e-6)  # Fisher: 2 of the 70 tables are as extreme
    assert verdict["confidence"] == pytest.approx(1 - 2 / 70, abs=1e-6)
    assert checked["message"].startswith("B better")

    promoted = service.promote("team", actor="cli:dana")  # one click: the verdict's winner
    assert (promoted["status"], promoted["winner"]) == ("promoted", "B")
    repo = get_repository("team")
    assert repo.live_release_id == started["variants"]["B"]["release_id"]
    assert current_target(paths.namespace_link("team--ab")) is None
    assert "experiments" not in (namespace_meta.read("team") or {})
    with session_scope() as session:
        deploy = session.query(DeployEvent).order_by(DeployEvent.id.desc()).first()
        assert (deploy.reason, deploy.actor) == ("experiment", "cli:dana")
    # The candidate was soaking in staging: its promotion is done too.
    assert promotion.status("team")["current"] is None


def test_auto_promote_makes_b_prod_when_the_rule_says_so(dagops_env, candidate, runs):
    started = _start(rule={"min_runs": 4, "auto_promote": True}, split={"a": 50, "b": 50})
    owners = split_runs(started["id"], range(1, 21))
    _feed(runs, started["id"], owners, failed_of="A")
    (checked,) = service.check(lambda: runs)
    assert (checked["status"], checked["winner"]) == ("promoted", "B")
    assert get_repository("team").live_release_id == started["variants"]["B"]["release_id"]
    assert service.check(lambda: runs) == []  # nothing runs any more
    with session_scope() as session:
        outcomes = [e.outcome for e in session.query(Event).filter_by(kind="experiment").order_by(Event.id)]
        assert outcomes == ["started", "promoted"]


def test_auto_promote_keeps_a_when_a_wins(dagops_env, candidate, runs):
    _remote, prod_id, _ = candidate
    started = _start(rule={"min_runs": 4, "auto_promote": True})
    owners = split_runs(started["id"], range(1, 9))
    _feed(runs, started["id"], owners, failed_of="B")
    (checked,) = service.check(lambda: runs)
    assert (checked["status"], checked["winner"]) == ("kept", "A")
    assert get_repository("team").live_release_id == prod_id
    assert current_target(paths.namespace_link("team--ab")) is None


def test_durations_decide_when_success_rates_do_not_differ(dagops_env, candidate, runs):
    started = _start(rule={"min_runs": 5})
    owners = split_runs(started["id"], range(1, 13))
    _feed(runs, started["id"], owners, slow="A")
    (checked,) = service.check(lambda: runs)
    verdict = checked["verdict"]
    assert (verdict["winner"], verdict["basis"]) == ("B", "duration")
    assert checked["variants"]["A"]["median_duration_seconds"] > checked["variants"]["B"]["median_duration_seconds"]


def test_a_check_that_cannot_read_airflow_says_so_and_judges_nothing(dagops_env, candidate):
    _start()

    class AirflowDown(FakeRuns):
        def finished_runs(self, dag_ids, *, end_date_gt):
            raise AirflowApiUnavailable("cannot reach Airflow's API at http://airflow:8080")

    (checked,) = service.check(AirflowDown)
    assert checked["status"] == "error" and "cannot reach Airflow's API" in checked["message"]
    (shown,) = service.status("team")
    assert shown["status"] == "running" and shown["verdict"] is None


def test_runs_not_finished_or_not_started_are_counted_apart(dagops_env, candidate, runs):
    started = _start()
    ask(started["id"], "A", 1)  # day 1 is A's (alternate): A's run has not finished
    ask(started["id"], "A", 2)  # day 2 is B's: A skipped it, B has not started it (queued, or paused)
    ask(started["id"], "B", 3, run_type="manual", run_id="manual__x")  # a manual run of B: not split
    (checked,) = service.check(lambda: runs)
    assert checked["pending"] == {"A": 1, "B": 0}
    assert checked["not_started"] == {"A": 0, "B": 1}
    assert checked["unsplit"] == {"A": 0, "B": 1}
    assert "a variant has no finished run yet" in checked["message"]


def test_promote_by_hand_without_a_winner_is_refused_then_chosen(dagops_env, candidate):
    _remote, prod_id, _ = candidate
    _start()
    with pytest.raises(Conflict, match="has no winner yet .* --winner B"):
        service.promote("team", actor="cli:dana")
    with pytest.raises(Conflict, match="runs on 'report', not 'other'; nothing changed"):
        service.promote("team", actor="cli:dana", winner="A", dag_id="other")
    kept = service.promote("team", actor="cli:dana", winner="A")
    assert (kept["status"], kept["winner"]) == ("kept", "A")
    assert get_repository("team").live_release_id == prod_id
    with pytest.raises(Conflict, match="runs no experiment"):
        service.promote("team", actor="cli:dana", winner="B")


def test_stop_takes_b_down_and_the_gate_lets_a_run_everything(dagops_env, candidate):
    started = _start()
    stopped = service.stop("team", actor="cli:dana")
    assert (stopped["status"], stopped["winner"]) == ("stopped", None)
    assert stopped["detail"]["reason"] == "stopped by cli:dana"
    assert current_target(paths.namespace_link("team--ab")) is None
    assert "experiments" not in (namespace_meta.read("team") or {})
    # A task of B started before it was taken down skips; A runs.
    assert ask(started["id"], "B", 1).running is False
    assert ask(started["id"], "A", 2).owner == "A"


def test_prod_moving_away_from_a_aborts_the_experiment(dagops_env, candidate, runs):
    _remote, _prod_id, candidate_id = candidate
    _start()
    rollback("team", candidate_id, actor="cli:dana")  # someone puts a release live by hand
    (checked,) = service.check(lambda: runs)
    assert checked["status"] == "aborted" and "prod's live release changed" in checked["detail"]["reason"]
    assert current_target(paths.namespace_link("team--ab")) is None


def test_runs_before_the_start_are_a_s_and_not_split(dagops_env, candidate):
    started = _start()
    before = ask(started["id"], "B", -3)  # Airflow catching B's new DAG up on a date A ran already
    assert (before.owner, before.kind) == ("A", "before_start")
    with session_scope() as session:
        assert session.get(Experiment, started["id"]).assigned == 0


# -- refusals: each says why and changes nothing ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"split": {"a": 70, "b": 40}}, InvalidInput, "a 70 \\+ b 40 adds up to 110, not 100"),
        ({"split": {"percent": 0}}, InvalidInput, "from 1 to 99"),
        ({"split": {"percent": 100}}, InvalidInput, "from 1 to 99"),
        ({"split": "halves"}, InvalidInput, "is not a split"),
        ({"rule": {"min_runs": 0}}, InvalidInput, "min_runs must be a whole number from 1"),
        ({"rule": {"max_p": 0.9}}, InvalidInput, "max_p must be a number above 0 and at most 0.5"),
        ({"rule": {"max_p": 0.05, "confidence": 1}}, InvalidInput, "unknown key 'confidence'"),
        ({"rule": {"auto_promote": "yes"}}, InvalidInput, "auto_promote must be true or false"),
        ({"release": "999"}, NotFound, "has no release '999'"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(dagops_env, candidate, kwargs, error, message):
    with pytest.raises(error, match=message):
        _start(**kwargs)
    _nothing_started(dagops_env)


def test_refusals_about_the_dag_and_the_releases(dagops_env, validated_candidate):
    remote, prod_id, _candidate_id = validated_candidate
    with pytest.raises(Conflict, match="defines no DAG 'nope' \\(it defines: other, report\\)"):
        service.start("team", "nope", actor="test")
    with pytest.raises(InvalidInput, match="dag_id 'bad id'"):
        service.start("team", "bad id", actor="test")
    with pytest.raises(Conflict, match="is prod's live release, variant A"):
        _start(release=prod_id)
    _nothing_started(dagops_env)

    remote.commit("report hourly", {"dags/report.py": dag_file("report", schedule="@hourly")})
    hourly = sync_repository("team")  # the structure step records the new schedule
    with pytest.raises(Conflict, match="'@daily' in prod \\(A\\) but '@hourly' in the candidate"):
        _start(release=hourly.release_id)
    _nothing_started(dagops_env)


@pytest.mark.parametrize("schedule", [None, "@once", "@continuous", "assets: orders", "datetime.timedelta(seconds=20)"])
def test_a_dag_without_a_time_based_schedule_is_refused(dagops_env, candidate, schedule):
    with session_scope() as session:
        for release_id in candidate[1:]:
            release = session.get(Release, release_id)
            dags = [{**dag, "schedule": schedule} for dag in release.validation_summary["dags"]]
            release.validation_summary = {**release.validation_summary, "dags": dags}
    with pytest.raises(Conflict, match="needs a time-based schedule on a fixed grid"):
        _start()
    _nothing_started(dagops_env)


def test_one_experiment_at_a_time_and_not_on_a_pinned_repository(dagops_env, candidate):
    _start()
    with pytest.raises(Conflict, match="already runs experiment"):
        service.start("team", "other", actor="test", release=candidate[2])
    service.stop("team", actor="test")
    pin("team", actor="test")
    with pytest.raises(Conflict, match="is pinned to release"):
        _start()


def test_reconcile_takes_down_what_a_gone_experiment_left(dagops_env, candidate):
    _start()
    with session_scope() as session:
        session.query(Experiment).delete()  # as if its repository's rows went (the folders stay)
    assert service.reconcile() == ["team--ab"]
    assert current_target(paths.namespace_link("team--ab")) is None
    assert "experiments" not in (namespace_meta.read("team") or {})
