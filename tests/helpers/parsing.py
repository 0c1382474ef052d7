"""What Airflow's dag-processor parses from a dagops installation, loaded with Airflow's own DagBag (the cluster
policy runs): the dags folder as the `dags-folder` bundle walks it (its `.airflowignore` and the namespace links
included) and, in bundle mode (the default), the dagops-releases bundle's tracking folder after a refresh, as the
dag-processor's refresh leaves it. A dag_id found twice, in one bundle or across both, fails the test: that is
the duplicate Airflow must never see.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_dagops import paths


@dataclass
class ParsedDag:
    dag: Any  # airflow.sdk DAG
    bundle: str  # dags-folder / dagops-releases
    namespace: str  # the first folder under the bundle's root


def releases_bundle_root() -> Path:
    """The dagops-releases bundle's folder after a refresh, as its dag-processor would parse it."""
    from airflow_dagops.bundle.releases_bundle import DagopsReleasesBundle

    bundle = DagopsReleasesBundle(name=paths.RELEASES_BUNDLE, refresh_interval=5)
    bundle.refresh()
    return bundle.path


def parsed_dags(dags_folder: Path) -> dict[str, ParsedDag]:
    from airflow.dag_processing.dagbag import DagBag

    roots = [("dags-folder", dags_folder)]
    if paths.publish_mode() == "bundle":
        roots.append((paths.RELEASES_BUNDLE, releases_bundle_root()))
    parsed: dict[str, ParsedDag] = {}
    for bundle, root in roots:
        bag = DagBag(dag_folder=str(root), safe_mode=False)
        assert bag.import_errors == {}, bag.import_errors  # a duplicate within one bundle or a walk error
        for dag_id, dag in bag.dags.items():
            assert dag_id not in parsed, f"{dag_id} is parsed twice: by {parsed[dag_id].bundle} and by {bundle}"
            parsed[dag_id] = ParsedDag(dag, bundle, Path(dag.fileloc).relative_to(root).parts[0])
    return parsed


def namespaces_of(dags_folder: Path) -> dict[str, str]:
    """dag_id -> namespace of everything Airflow parses."""
    return {dag_id: found.namespace for dag_id, found in parsed_dags(dags_folder).items()}
