"""Promotion stages: how an early stage is named (its namespace link and its dag_id suffix), and the registry
rules that keep stage namespaces apart from every other repository's namespaces and stages. Kept apart from
promotion.py (the rollout itself) because the registry checks them on every add and update.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_dagops import paths
from airflow_dagops.errors import Conflict, InvalidInput
from airflow_dagops.safety import NAME_PATTERN

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow_dagops.store.models import Release, Repository

STAGE_SEPARATOR = "--"


# -- naming --------------------------------------------------------------------------------------------------
def stage_namespace(namespace: str, stage: str) -> str:
    """The dags-folder link of an early stage: `company` + `staging` -> `company--staging`."""
    return f"{namespace}{STAGE_SEPARATOR}{stage}"


def dag_id_suffix(stage: str) -> str:
    return f"__{stage}"


def early_stages(promotion: dict | None) -> list[str]:
    """Every stage before the last (the last is the repository's own namespace)."""
    return list(promotion["stages"][:-1]) if promotion else []


def stage_namespaces(repo: Repository | Any) -> dict[str, str]:
    """stage namespace -> stage, for a repository's early stages."""
    return {stage_namespace(repo.namespace, stage): stage for stage in early_stages(repo.promotion)}


def staged_dag_ids(release: Release, stage: str) -> list[str]:
    """The dag_ids a release's DAGs have in an early stage: validation found them, the policy suffixes them."""
    dags = (release.validation_summary or {}).get("dags") or []
    return sorted({f"{dag['dag_id']}{dag_id_suffix(stage)}" for dag in dags})


# -- registry checks (add_repository / update_repository / _ensure_free call these) ------------------
def check_stage_namespaces(session: Session, name: str, namespace: str, promotion: dict | None) -> None:
    """A repository's stage namespaces must be valid names that no other repository uses, as its own
    namespace or as one of its stages, and must not be folders dagops does not manage."""
    from sqlalchemy import select

    from airflow_dagops.store.models import Repository  # lazy: `dagops promotion` reads stages without the ORM

    others = session.scalars(select(Repository).where(Repository.name != name)).all()
    for stage in early_stages(promotion):
        wanted = stage_namespace(namespace, stage)
        if not NAME_PATTERN.match(wanted):
            raise InvalidInput(
                f"promotion: stage {stage!r} would publish into namespace {wanted!r}, longer than 63 characters; "
                "use a shorter stage name or namespace"
            )
        for other in others:
            if other.namespace == wanted:
                raise Conflict(
                    f"promotion: stage {stage!r} of {name!r} publishes into {wanted!r}, the namespace of repository "
                    f"{other.name!r}; rename the stage"
                )
            if wanted in stage_namespaces(other):
                raise Conflict(
                    f"promotion: stage {stage!r} of {name!r} publishes into {wanted!r}, where repository "
                    f"{other.name!r} publishes a stage too; rename the stage"
                )
        link = paths.namespace_link(wanted)
        if link.exists() and not link.is_symlink():
            raise Conflict(
                f"promotion: {link} (stage {stage!r}) exists in the dags folder and is not managed by dagops; "
                "move it away or rename the stage"
            )


AB_TESTING_STAGE = "ab"  # where an A/B experiment publishes its B release (airflow_dagops/experiments/variants.py)


def ensure_not_a_stage_namespace(session: Session, namespace: str) -> None:
    """A new repository may not take the namespace where another repository publishes a stage, nor the one its A/B
    experiments publish B in (`<namespace>--ab`), reserved whether or not an experiment runs now."""
    from sqlalchemy import select

    from airflow_dagops.store.models import Repository  # lazy: `dagops promotion` reads stages without the ORM

    for other in session.scalars(select(Repository.namespace)).all():
        if namespace == stage_namespace(other, AB_TESTING_STAGE):
            raise Conflict(
                f"namespace {namespace!r} is reserved for the A/B experiments of namespace {other!r} "
                "(docs/experiments.md); choose another namespace (use --namespace)"
            )
    for repo in repositories_with_promotion(session):
        stage = stage_namespaces(repo).get(namespace)
        if stage is not None:
            raise Conflict(
                f"namespace {namespace!r} is where repository {repo.name!r} publishes its {stage!r} stage; "
                "choose another namespace (use --namespace)"
            )


def repositories_with_promotion(session: Session) -> list[Repository]:
    from sqlalchemy import select

    from airflow_dagops.store.models import Repository  # lazy: `dagops promotion` reads stages without the ORM

    return [repo for repo in session.scalars(select(Repository)).all() if repo.promotion]
