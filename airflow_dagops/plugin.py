"""The Airflow plugin entry point: the REST API blueprint and the "DAG Repositories" page.

Airflow 3 serves both from the FAB provider's Flask app mounted at /pluginsv2; the `external_views`
entry puts the page in the Airflow UI's Admin menu, shown inside the UI (docs/api.md).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_dagops.api.blueprint import api_blueprint

PAGE_HREF = "/pluginsv2/dagops/"


def _page_views() -> list[dict]:
    try:
        from airflow_dagops.www.views import DagRepositoriesView
    except ImportError:  # the FAB provider is missing: the REST API still works
        return []
    # No "name": a named appbuilder view would add a second, generic nav entry.
    return [{"view": DagRepositoriesView()}]


class DagOpsPlugin(AirflowPlugin):
    name = "dagops"
    flask_blueprints = [api_blueprint]
    appbuilder_views = _page_views()
    external_views = [
        {"name": "DAG Repositories", "href": PAGE_HREF, "url_route": "dag-repositories", "category": "admin"}
    ]
