"""Provider metadata: makes `[dagops]` options show in `airflow config list` and the package in
`airflow providers list`."""

from __future__ import annotations

from airflow_dagops import __version__
from airflow_dagops.settings import OPTIONS, SECTION


def get_provider_info() -> dict:
    return {
        "package-name": "airflow-dagops",
        "name": "airflow-dagops",
        "description": "GitOps for Airflow DAGs: validated, versioned, atomic deploys of DAG repositories.",
        "versions": [__version__],
        "plugins": [{"name": "dagops", "plugin-class": "airflow_dagops.plugin.DagOpsPlugin"}],
        "config": {
            SECTION: {
                "description": "airflow-dagops: repositories of DAGs synced, validated and published by dagops.",
                "options": {
                    name: {
                        "description": option.description,
                        "version_added": "0.1.0",
                        "type": option.type,
                        "example": None,
                        "default": option.default,
                    }
                    for name, option in OPTIONS.items()
                },
            }
        },
    }
