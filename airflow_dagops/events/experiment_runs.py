"""The runs of an A/B experiment's two DAGs in the event feed: which release each ran, and whether it ran at all.

An experiment (airflow_dagops/experiments/) runs prod's DAG as variant A (`<dag_id>`, prod's live release) and a
candidate as variant B (`<dag_id>__ab` in namespace `<namespace>--ab`, the candidate release). Airflow makes a run
of both DAGs for every scheduled date; the gate (airflow/experiment_gate.py) lets the variant that owns the date run
it and skips every task of the other, which Airflow then calls a successful run. So a run's event says:

- the release of its variant, as the experiment recorded them (B's runs are the candidate's, never prod's);
- outcome `skipped` for the copy the gate skipped (Airflow's own state stays in the detail), so neither release
  health nor the experiment's comparison counts one date twice;
- `experiment_id`, `variant`, `owner` and `assignment` (split, before_start, manual, ...) in the detail: the
  comparison (experiments/compare.py) reads the experiment's runs back by `experiment_id`.

Who owns a run is what the gates recorded (`dagops_experiment_run`, found by the variant's run id). A run no gate
recorded belongs to A, the gate's own rule when it has no answer (the experiment ended, or the state DB could not be
read): B's copy skipped, since every task of B that starts asks the gate first; prod's is an ordinary run of the
live release, recorded as any other.

The two DAGs' names are stored with the experiment when it starts (`detail.variants`): this layer sits below the
promotion stages that name `__ab` and `--ab`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from airflow_dagops.airflow.experiment_gate import VARIANTS
from airflow_dagops.statuses import ExperimentStatus
from airflow_dagops.store.models import Experiment, ExperimentRun, Repository

FALLBACK_OWNER = "A"  # whose run a run without a recorded assignment is (the gate's rule without an answer)
ENDED_GRACE = timedelta(hours=6)  # how long after an experiment ends its DAGs' runs are still read: runs under way


@dataclass(frozen=True)
class VariantDag:
    """One variant's DAG in Airflow, and the release it runs."""

    experiment_id: int
    variant: str
    repository: str
    namespace: str
    dag_id: str
    release_id: int | None

    def key(self, run_id: str) -> tuple[int, str, str]:
        """How `assignments` names this variant's run `run_id`."""
        return (self.experiment_id, self.variant, run_id)


@dataclass(frozen=True)
class Assignment:
    owner: str  # the variant the gates let run it
    kind: str  # split, before_start, or the type of a run that is not split (manual, ...)


def variant_dags(session: Session, since: datetime) -> list[VariantDag]:
    """Both variants' DAGs of every experiment that runs, or ended less than ENDED_GRACE before `since` (runs it
    started may still end), oldest experiment first: for a DAG in two of them, the newer one's entry comes last."""
    rows = session.execute(
        select(Experiment, Repository.name)
        .join(Repository, Repository.id == Experiment.repository_id)
        .where(or_(Experiment.status == ExperimentStatus.RUNNING, Experiment.ended_at >= since - ENDED_GRACE))
        .order_by(Experiment.id)
    ).all()
    found = []
    for experiment, repository in rows:
        names = (experiment.detail or {}).get("variants") or {}
        releases = {"A": experiment.release_a_id, "B": experiment.release_b_id}
        for variant in VARIANTS:
            where = names.get(variant) or {}
            if where.get("dag_id") and where.get("namespace"):
                found.append(
                    VariantDag(
                        experiment.id, variant, repository, where["namespace"], where["dag_id"], releases[variant]
                    )
                )
    return found


def assignments(session: Session, runs: list[tuple[VariantDag, str]]) -> dict[tuple[int, str, str], Assignment]:
    """(experiment id, variant, run id) -> who owns it, for the given (variant's DAG, run id) pairs that a gate
    recorded."""
    if not runs:
        return {}
    experiment_ids = sorted({dag.experiment_id for dag, _ in runs})
    run_ids = sorted({run_id for _, run_id in runs})
    rows = session.execute(
        select(ExperimentRun.experiment_id, ExperimentRun.owner, ExperimentRun.kind, ExperimentRun.a_run_id,
               ExperimentRun.b_run_id)
        .where(
            ExperimentRun.experiment_id.in_(experiment_ids),
            or_(ExperimentRun.a_run_id.in_(run_ids), ExperimentRun.b_run_id.in_(run_ids)),
        )
    ).all()  # fmt: skip
    found: dict[tuple[int, str, str], Assignment] = {}
    for experiment_id, owner, kind, a_run_id, b_run_id in rows:
        for variant, run_id in (("A", a_run_id), ("B", b_run_id)):
            if run_id is not None:
                found[(experiment_id, variant, run_id)] = Assignment(owner, kind)
    return found


@dataclass(frozen=True)
class Attributed:
    """What a run's event says when the run belongs to an experiment."""

    release_id: int | None
    outcome: str
    detail: dict

    @property
    def why_skipped(self) -> str:
        return f"A/B experiment {self.detail['experiment_id']} gave its date to variant {self.detail['owner']}"


def attribute(dag: VariantDag, state: str, assignment: Assignment | None) -> Attributed | None:
    """The release, outcome and experiment facts of a finished run of `dag` in Airflow's `state`; None for a run of
    prod's DAG that no gate recorded: an ordinary run of the live release (before, after or beside the split)."""
    if assignment is None and dag.variant == FALLBACK_OWNER:
        return None
    owner = assignment.owner if assignment is not None else FALLBACK_OWNER
    return Attributed(
        release_id=dag.release_id,
        outcome=state if owner == dag.variant else "skipped",
        detail={
            "experiment_id": dag.experiment_id,
            "variant": dag.variant,
            "owner": owner,
            "assignment": assignment.kind if assignment is not None else None,
        },
    )
