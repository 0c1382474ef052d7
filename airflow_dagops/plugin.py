"""The Airflow plugin entry point. The web faces (page, REST API) attach here as they are built;
until then the plugin only makes dagops visible in `airflow plugins`."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class DagOpsPlugin(AirflowPlugin):
    name = "dagops"
