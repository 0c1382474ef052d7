"""The runs of an A/B experiment's two DAGs in the event feed (events/experiment_runs.py), collected from a fake of
Airflow's REST API: each against the release its variant runs, the copy of a date the gate skipped as `skipped`, and
the same records read by release health and by the experiment's comparison, each date counted once. Also: two
collectors at once record every run once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from airflow_dagops.alerts import release_health
from airflow_dagops.events import dag_runs as dag_run_events
from airflow_dagops.events import feed as events
from airflow_dagops.experiments import service
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import ExperimentRun, Repository, StoredState
from airflow_dagops.sync.sync import sync_repository
from tests.events.conftest import FakeAirflow, airflow_run
from tests.experiments.conftest import ask, make_candidate, split_runs
from tests.helpers.repos import dag_source


@pytest.fixture
def experiment(dagops_env, git_remote):
    """`team`'s experiment on `report`: (experiment id, prod's release id, the candidate's release id)."""
    _remote, prod_id, candidate_id = make_candidate(git_remote, real_structure=False)
    started = service.start("team", "report", actor="test", rule={"min_runs": 2})
    return started["id"], prod_id, candidate_id


def _assigned(experiment_id: int) -> list[tuple[str, str | None, str | None]]:
    """(owner, A's run id, B's run id) of each assignment the gates recorded, oldest first."""
    with session_scope() as session:
        rows = session.query(ExperimentRun).filter_by(experiment_id=experiment_id).order_by(ExperimentRun.id)
        return [(row.owner, row.a_run_id, row.b_run_id) for row in rows]


def _airflow_runs(assigned, start: datetime, *, failed: set[int] = frozenset()) -> list[dict]:
    """Both variants' runs of each assigned date as Airflow lists them: the owner's ran (failed for the dates whose
    index is in `failed`), the other's skipped every task, which Airflow calls a success."""
    runs = []
    for index, (owner, a_run, b_run) in enumerate(assigned):
        for variant, dag_id, run_id in (("A", "report", a_run), ("B", "report__ab", b_run)):
            state = "failed" if variant == owner and index in failed else "success"
            runs.append(airflow_run(dag_id, run_id, state, start + timedelta(minutes=index + 2)))
    return runs


def _recorded() -> dict[tuple[str, str], tuple[int, str]]:
    """(dag_id, run_id) -> (release id, outcome) of every `dag_run` event."""
    found = events.list_events(kinds=["dag_run"])["events"]
    return {(e["detail"]["dag_id"], e["detail"]["run_id"]): (e["release_id"], e["outcome"]) for e in found}


def test_both_variants_runs_go_to_their_releases_and_count_once(experiment, airflow_api):
    experiment_id, prod_id, candidate_id = experiment
    split_runs(experiment_id, range(1, 5))  # alternate: days 1 and 3 are A's, 2 and 4 B's
    ask(experiment_id, "B", 9, run_type="manual", run_id="manual__b")  # outside the split: B's own
    now = datetime.now(timezone.utc)
    scheduled = _assigned(experiment_id)[:4]
    FakeAirflow.runs = [
        *_airflow_runs(scheduled, now, failed={0}),  # A's first date fails
        airflow_run("report__ab", "manual__b", "success", now + timedelta(minutes=7)),
        airflow_run("report__ab", "scheduled__nobody", "success", now + timedelta(minutes=7)),  # no gate answered
        airflow_run("report", "manual__plain", "success", now + timedelta(minutes=7)),  # no gate answered: A's own
        airflow_run("other", "scheduled__x", "success", now + timedelta(minutes=7)),
    ]

    assert dag_run_events.collect(airflow_api, now=now) == 12
    recorded = _recorded()
    assert recorded[("report", scheduled[0][1])] == (prod_id, "failed")
    assert recorded[("report__ab", scheduled[0][2])] == (candidate_id, "skipped")
    assert recorded[("report", scheduled[1][1])] == (prod_id, "skipped")
    assert recorded[("report__ab", scheduled[1][2])] == (candidate_id, "success")
    assert recorded[("report__ab", "manual__b")] == (candidate_id, "success")
    assert recorded[("report__ab", "scheduled__nobody")] == (candidate_id, "skipped")
    assert recorded[("report", "manual__plain")] == (prod_id, "success")
    assert recorded[("other", "scheduled__x")] == (prod_id, "success")

    feed = {(e["detail"]["dag_id"], e["detail"]["run_id"]): e for e in events.list_events(kinds=["dag_run"])["events"]}
    skipped = feed[("report", scheduled[1][1])]
    assert skipped["detail"]["state"] == "success"  # what Airflow said, kept beside the outcome
    assert (skipped["detail"]["variant"], skipped["detail"]["owner"]) == ("A", "B")
    assert skipped["detail"]["experiment_id"] == experiment_id and skipped["detail"]["assignment"] == "split"
    assert "gave its date to variant B" in skipped["summary"]
    assert feed[("report__ab", scheduled[1][2])]["detail"]["namespace"] == "team--ab"
    assert "experiment_id" not in feed[("report", "manual__plain")]["detail"]  # an ordinary run of prod

    # Release health counts what each release ran: no skipped copy, so every date once.
    with session_scope() as session:
        repo_id = session.query(Repository.id).filter_by(name="team").scalar()
        prod = release_health.stats(session, repo_id, prod_id)
        candidate = release_health.stats(session, repo_id, candidate_id)
    assert (prod.success, prod.failed) == (3, 1)  # day 3, manual__plain, other; day 1
    assert (candidate.success, candidate.failed) == (3, 0)  # days 2 and 4, manual__b

    # The comparison reads the same records: the split dates each variant owned (the check collects nothing new).
    (checked,) = service.check(airflow_api)
    a, b = checked["variants"]["A"], checked["variants"]["B"]
    assert (a["runs"], a["success"], a["failed"]) == (2, 1, 1)
    assert (b["runs"], b["success"], b["failed"]) == (2, 2, 0)
    assert checked["unsplit"] == {"A": 0, "B": 1}
    assert len(events.list_events(kinds=["dag_run"])["events"]) == 12


def test_runs_that_end_after_the_experiment_keep_their_variant_s_release(experiment, airflow_api):
    experiment_id, prod_id, candidate_id = experiment
    split_runs(experiment_id, range(1, 2))  # day 1: A's
    (assigned,) = _assigned(experiment_id)
    service.promote("team", actor="test", winner="B")  # B goes live while day 1's runs still run
    now = datetime.now(timezone.utc)
    FakeAirflow.runs = [
        *_airflow_runs([assigned], now),
        airflow_run("report", "scheduled__after", "success", now + timedelta(minutes=5)),  # B's code, in prod
    ]
    assert dag_run_events.collect(airflow_api, now=now) == 3
    recorded = _recorded()
    assert recorded[("report", assigned[1])] == (prod_id, "success")  # A ran it: prod's release of then
    assert recorded[("report__ab", assigned[2])] == (candidate_id, "skipped")
    assert recorded[("report", "scheduled__after")] == (candidate_id, "success")  # the live release now


def _published_etl(git_remote, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")  # lists the DAGs
    add_repository("team", git_remote({"dags/etl.py": dag_source("etl")}).url)
    sync_repository("team")


def test_collectors_at_once_record_each_run_once(dagops_env, git_remote, airflow_api, monkeypatch):
    """dagops_events and an experiment check may collect at the same moment: each waits for the other's record."""
    _published_etl(git_remote, monkeypatch)
    now = datetime.now(timezone.utc)
    FakeAirflow.runs = [airflow_run("etl", f"manual__{n}", "success", now - timedelta(seconds=n)) for n in range(20)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        counts = list(pool.map(lambda _: dag_run_events.collect(airflow_api, now=now), range(4)))
    assert sum(counts) == 20
    assert len(events.list_events(kinds=["dag_run"])["events"]) == 20


def test_a_cursor_of_the_earlier_format_still_says_what_was_recorded(dagops_env, git_remote, airflow_api, monkeypatch):
    _published_etl(git_remote, monkeypatch)
    now = datetime.now(timezone.utc)
    with session_scope() as session:  # recent runs as a list of keys, without their end dates
        session.add(StoredState(key="dag_run_events", value={"last_end": now.isoformat(), "recent": ["etl/manual__1"]}))
    FakeAirflow.runs = [airflow_run("etl", f"manual__{n}", "success", now - timedelta(seconds=n)) for n in (1, 2)]
    assert dag_run_events.collect(airflow_api, now=now) == 1
    assert [e["detail"]["run_id"] for e in events.list_events(kinds=["dag_run"])["events"]] == ["manual__2"]
