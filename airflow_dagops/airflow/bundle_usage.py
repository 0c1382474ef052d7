"""Which versions of a DAG bundle Airflow's metadata DB still names: the one question dagops asks Airflow's DB
about bundle versions (airflow_dagops/bundle/cleanup.py forgets the others).

A version is named by a DAG run that ran on it (a finished one too: clearing a run runs its tasks again on its
version) and by a DAG version parsed from it (a new run starts on its DAG's latest DAG version). Both rows stay
until `airflow db clean` removes them, so a version dagops forgets is one Airflow itself has let go of.

Only a process with access to the metadata DB can ask: the dag-processor, the scheduler, the api-server, the CLI.
A task cannot (the Task SDK refuses ORM access); `versions_in_use` then says it does not know.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from sqlalchemy import select, union

log = logging.getLogger(__name__)


def versions_in_use(bundle_name: str, versions: Collection[str]) -> set[str] | None:
    """The subset of `versions` that a DAG run or a DAG version of Airflow's metadata DB names; None when this
    process cannot read that DB (then every version counts as in use)."""
    if not versions:
        return set()
    try:
        from airflow.models.dag_version import DagVersion
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        runs = select(DagRun.bundle_version).where(DagRun.bundle_version.in_(versions))
        dag_versions = select(DagVersion.bundle_version).where(
            DagVersion.bundle_name == bundle_name, DagVersion.bundle_version.in_(versions)
        )
        with create_session() as session:
            named = session.scalars(union(runs, dag_versions)).all()
        return {version for version in named if version is not None}
    except Exception as err:  # no metadata DB here (a task), or it is unreachable: nobody may forget anything
        log.warning("cannot read which %s versions Airflow still uses: %s", bundle_name, err)
        return None
