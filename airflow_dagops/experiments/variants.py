"""Where the two variants of an experiment live, and how they are put up and taken down.

- **A** is prod: the repository's own namespace, untouched but for one entry in its experiments file
  (`<dagops_home>/experiments/<namespace>.json`: `{"<dag_id>": {"id": N, "variant": "A"}}`), which tells the
  cluster policy to gate the DAG's tasks.
- **B** is the candidate release, published like an early promotion stage named `ab` (releases/promotion.py's
  `publish_view`): namespace `<namespace>--ab`, dag_ids suffixed `__ab`, the release's whole folder as a hard-linked
  view. Its meta names the experiment's DAG and says `only_experiment_dags`, so the policy skips every other DAG of
  the release there (`<other>__ab` never appears), and B's DAG is created unpaused.

In bundle mode the live set's rows carry the meta (deploy/live_set.py), so both are refreshed with it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from airflow_dagops import paths, settings
from airflow_dagops.airflow import namespace_meta
from airflow_dagops.deploy import live_set
from airflow_dagops.errors import Conflict, InvalidInput
from airflow_dagops.releases.promotion import publish_view, take_down_view
from airflow_dagops.releases.stages import AB_TESTING_STAGE, dag_id_suffix, stage_namespace, stage_namespaces
from airflow_dagops.safety import NAME_PATTERN
from airflow_dagops.store.models import Experiment, Release, Repository

AB = AB_TESTING_STAGE  # B's "stage": namespace `<namespace>--ab`, dag_ids `<dag_id>__ab`


def b_namespace(repo: Repository) -> str:
    return stage_namespace(repo.namespace, AB)


def b_dag_id(dag_id: str) -> str:
    return f"{dag_id}{dag_id_suffix(AB)}"


def dag_ids(dag_id: str) -> dict[str, str]:
    """Each variant's dag_id in Airflow."""
    return {"A": dag_id, "B": b_dag_id(dag_id)}


def airflow_names(repo: Repository, dag_id: str) -> dict[str, dict[str, str]]:
    """Each variant's dag_id and namespace in Airflow."""
    ids = dag_ids(dag_id)
    return {
        "A": {"dag_id": ids["A"], "namespace": repo.namespace},
        "B": {"dag_id": ids["B"], "namespace": b_namespace(repo)},
    }


def check_b_namespace(repo: Repository, others: list[Repository]) -> None:
    """`<namespace>--ab` must be a valid name that no repository uses (as its namespace or a promotion stage's,
    this repository's own stages included) and not a folder dagops does not manage."""
    wanted = b_namespace(repo)
    if not NAME_PATTERN.match(wanted):
        raise InvalidInput(
            f"an experiment publishes its candidate in namespace {wanted!r}, longer than 63 characters; a repository "
            "with a shorter namespace can run experiments"
        )
    if wanted in stage_namespaces(repo):
        raise Conflict(f"{repo.name!r} has a promotion stage named {AB!r}, whose namespace {wanted!r} experiments use")
    for other in others:
        if wanted == other.namespace or wanted in stage_namespaces(other):
            raise Conflict(
                f"namespace {wanted!r}, where an experiment of {repo.name!r} publishes its candidate, is used by "
                f"repository {other.name!r}"
            )
    link = paths.namespace_link(wanted)
    if link.exists() and not link.is_symlink():
        raise Conflict(f"{link} exists in the dags folder and is not managed by dagops; move it away")


def put_up(session: Session, repo: Repository, experiment: Experiment, candidate: Release) -> None:
    """A's gate first, then B: B's runs are never split against an ungated A."""
    _set_a(session, repo, experiment.dag_id, {"id": experiment.id, "variant": "A"})
    meta = {
        "repository": repo.name,
        "experiment": experiment.id,
        "dag_id_suffix": dag_id_suffix(AB),
        "only_experiment_dags": True,
        "experiments": {experiment.dag_id: {"id": experiment.id, "variant": "B"}},
        "access_control": repo.access_control,
    }
    publish_view(session, repo, candidate, b_namespace(repo), meta)


def take_down(session: Session, repo: Repository, dag_id: str) -> None:
    """B first, then A's gate: A runs every run again from the next task on."""
    take_down_view(session, b_namespace(repo))
    _set_a(session, repo, dag_id, None)


def take_down_leftovers(session: Session, running: set[int]) -> list[str]:
    """What experiments not in `running` left up: candidates' namespaces (their meta names the experiment) and A's
    gate entries. Returns the namespaces taken down."""
    home = settings.dagops_home()
    removed = []
    for meta_file in sorted((home / "namespaces").glob("*.json")):
        meta = namespace_meta.read(meta_file.stem) or {}
        if "experiment" in meta and meta["experiment"] not in running:
            take_down_view(session, meta_file.stem)
            removed.append(meta_file.stem)
    for gate_file in sorted((home / "experiments").glob("*.json")):
        entries = (namespace_meta.read(gate_file.stem) or {}).get("experiments") or {}
        kept = {dag_id: entry for dag_id, entry in entries.items() if entry.get("id") in running}
        if kept != entries:
            namespace_meta.write_experiments(gate_file.stem, kept)
            live_set.refresh(session, gate_file.stem)
    return removed


def _set_a(session: Session, repo: Repository, dag_id: str, entry: dict | None) -> None:
    experiments = dict((namespace_meta.read(repo.namespace) or {}).get("experiments") or {})
    if entry is None:
        experiments.pop(dag_id, None)
    else:
        experiments[dag_id] = entry
    namespace_meta.write_experiments(repo.namespace, experiments)
    live_set.refresh(session, repo.namespace)
