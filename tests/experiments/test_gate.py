"""The gate (airflow/experiment_gate.py): the split's arithmetic, one answer per logical date however many gates ask
at once (threads, and processes as Airflow's workers are), what a task does with the answer, and how the cluster
policy installs it on the DAGs Airflow parses."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from airflow_dagops.airflow import experiment_gate
from airflow_dagops.airflow.experiment_gate import Split, bucket
from airflow_dagops.errors import InvalidInput
from airflow_dagops.experiments import service
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import ExperimentRun
from tests.experiments.conftest import ask


# -- the split ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("alternate", {"mode": "alternate"}),
        ({"mode": "alternate"}, {"mode": "alternate"}),
        ({"percent": 30}, {"mode": "percent", "b": 30}),
        ({"mode": "percent", "b": 1}, {"mode": "percent", "b": 1}),
        ({"a": 70, "b": 30}, {"mode": "percent", "b": 30}),
        ({"a": 1, "b": 99}, {"mode": "percent", "b": 99}),
    ],
)
def test_splits_that_add_up(given, stored):
    assert Split.parse(given).to_dict() == stored
    assert Split.parse(stored) == Split.parse(given)  # what is stored reads back the same


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"a": 70, "b": 40}, "a 70 \\+ b 40 adds up to 110, not 100"),
        ({"a": 50, "b": 49}, "adds up to 99, not 100"),
        ({"a": 100, "b": 0}, "from 1 to 99"),
        ({"a": -10, "b": 110}, "a must be a whole number of percent from 0 to 100"),
        ({"a": 50.5, "b": 49.5}, "whole number"),
        ({"percent": 0}, "from 1 to 99"),
        ({"percent": True}, "from 1 to 99"),
        ({"percent": "30"}, "from 1 to 99"),
        ({"mode": "percent"}, "is not a split"),
        ({"a": 50, "b": 50, "c": 0}, "is not a split"),
        ("50/50", "is not a split"),
        (None, "is not a split"),
    ],
)
def test_splits_that_do_not_add_up_are_refused(given, message):
    with pytest.raises(InvalidInput, match=message):
        Split.parse(given)


def test_alternate_gives_odd_ordinals_to_a():
    split = Split("alternate")
    assert [split.owner(1, "any", n) for n in range(1, 7)] == ["A", "B", "A", "B", "A", "B"]


def test_percent_split_is_stable_and_near_its_share():
    split = Split("percent", 30)
    keys = [(datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(hours=h)).isoformat() for h in range(2000)]
    owners = [split.owner(7, key, 0) for key in keys]
    assert owners == [split.owner(7, key, 99) for key in keys]  # the ordinal plays no part: a hash of the date
    assert 0.26 < owners.count("B") / len(owners) < 0.34
    assert bucket(7, keys[0]) == bucket(7, keys[0]) and 0 <= bucket(7, keys[0]) < 100
    assert [bucket(8, key) for key in keys[:20]] != [bucket(7, key) for key in keys[:20]]  # per experiment


# -- one answer per logical date ---------------------------------------------------------------------------------
def _rows(experiment_id: int) -> list[tuple]:
    with session_scope() as session:
        return [
            (row.run_key, row.kind, row.owner, row.a_run_id, row.b_run_id)
            for row in session.query(ExperimentRun).filter_by(experiment_id=experiment_id).order_by(ExperimentRun.id)
        ]


def test_both_variants_record_their_run_ids_on_one_row(dagops_env, candidate):
    started = service.start("team", "report", actor="test")
    first = ask(started["id"], "B", 1, run_id="scheduled__b1")
    again = ask(started["id"], "B", 1, run_id="scheduled__b1")  # B's next task: read, not recorded again
    other = ask(started["id"], "A", 1, run_id="scheduled__a1")
    assert first.owner == again.owner == other.owner == "A"  # the first date split goes to A
    ((key, kind, owner, a_run, b_run),) = _rows(started["id"])
    assert (kind, owner, a_run, b_run) == ("split", "A", "scheduled__a1", "scheduled__b1")
    assert key.endswith("+00:00")  # the logical date in UTC


def test_many_threads_asking_for_one_date_get_one_answer(dagops_env, candidate):
    started = service.start("team", "report", actor="test", split={"percent": 50})
    day = datetime.now(timezone.utc) + timedelta(days=3)

    def one(index: int) -> str:
        variant = "AB"[index % 2]
        found = experiment_gate.assign(
            started["id"], variant, run_type="scheduled", logical_date=day, run_id=f"{variant}-{index}"
        )
        return found.owner

    with ThreadPoolExecutor(max_workers=8) as pool:
        owners = set(pool.map(one, range(16)))
    assert len(owners) == 1
    assert len(_rows(started["id"])) == 1


ASK_IN_A_PROCESS = """
import json, sys
from datetime import datetime
from airflow_dagops.airflow.experiment_gate import assign
experiment_id, variant, day = int(sys.argv[1]), sys.argv[2], datetime.fromisoformat(sys.argv[3])
found = assign(experiment_id, variant, run_type="scheduled", logical_date=day, run_id=f"{variant}-run")
print(json.dumps({"owner": found.owner}))
"""


def test_processes_asking_for_one_date_at_once_get_one_answer(dagops_env, candidate):
    """Airflow's workers are processes: each gate has its own connection and transaction."""
    started = service.start("team", "report", actor="test")
    days = [(datetime.now(timezone.utc) + timedelta(days=n)).isoformat() for n in (1, 2)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", ASK_IN_A_PROCESS, str(started["id"]), variant, day],
            env=dagops_env.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for day in days
        for variant in ("A", "B", "A", "B")
    ]
    answers = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
        answers.append(json.loads(out.strip().splitlines()[-1])["owner"])
    assert len(set(answers[:4])) == 1 and len(set(answers[4:])) == 1  # one owner per date
    rows = _rows(started["id"])
    assert len(rows) == 2 and sorted(row[2] for row in rows) == ["A", "B"]  # alternate: one date each


def test_manual_runs_always_run_where_they_were_started(dagops_env, candidate):
    started = service.start("team", "report", actor="test")
    assert ask(started["id"], "B", 1, run_type="manual", run_id="manual__1").owner == "B"
    assert ask(started["id"], "A", 1, run_type="manual", run_id="manual__2").owner == "A"
    assert ask(started["id"], "A", 1, run_type="backfill", run_id="backfill__1").owner == "A"
    kinds = sorted((row[1], row[2]) for row in _rows(started["id"]))
    assert kinds == [("backfill", "A"), ("manual", "A"), ("manual", "B")]
    with session_scope() as session:
        from airflow_dagops.store.models import Experiment

        assert session.get(Experiment, started["id"]).assigned == 0  # nothing was split


# -- at task start -----------------------------------------------------------------------------------------------
class _DagRun:
    def __init__(self, run_type: str, logical_date: datetime):
        self.run_type, self.logical_date, self.run_after = run_type, logical_date, logical_date


def _context(variant: str, day: int) -> dict:
    """What Airflow's task context holds for a scheduled run of day `day` from now."""
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    logical_date = today + timedelta(days=day)
    return {
        "dag_run": _DagRun("scheduled", logical_date),
        "logical_date": logical_date,
        "run_id": f"scheduled__{variant}{day}",
    }


def test_the_variant_that_does_not_own_the_run_skips_and_says_why(dagops_env, candidate):
    from airflow.sdk.exceptions import AirflowSkipException

    started = service.start("team", "report", actor="test")
    experiment_gate.decide(_context("A", 1), started["id"], "A")  # day 1 is A's: runs
    with pytest.raises(AirflowSkipException, match="belongs to variant A; this is variant B, so it skips"):
        experiment_gate.decide(_context("B", 1), started["id"], "B")
    experiment_gate.decide(_context("B", 2), started["id"], "B")  # day 2 is B's
    with pytest.raises(AirflowSkipException, match="belongs to variant B; this is variant A"):
        experiment_gate.decide(_context("A", 2), started["id"], "A")


def test_without_the_state_db_prod_runs_and_the_candidate_skips(dagops_env, candidate, monkeypatch):
    from airflow.sdk.exceptions import AirflowSkipException

    from airflow_dagops.store import db

    started = service.start("team", "report", actor="test")
    monkeypatch.setenv("AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    db.dispose_engines()
    experiment_gate.decide(_context("A", 5), started["id"], "A")
    with pytest.raises(AirflowSkipException, match="not running \\(ended, or its state could not be read\\)"):
        experiment_gate.decide(_context("B", 5), started["id"], "B")
